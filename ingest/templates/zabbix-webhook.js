/* global HttpRequest, Zabbix, value */
/*
 * Avviso webhook media type for Zabbix 6.0 and later (Alerts > Media types > Create media type,
 * Type: Webhook; paste this file into Script). docs/monitoring-setup.md lists the parameters.
 *
 * Posts the event as JSON to Avviso and throws on any answer but 2xx, which is what makes Zabbix
 * retry (Attempts / Attempt interval on the media type) and show the failure in the action log.
 * Macros Zabbix could not expand (e.g. {EVENT.RECOVERY.ID} on a problem) are left out.
 */
var FIELDS = [
  'event_id',
  'event_value',
  'update_status',
  'ack_status',
  'recovery_id',
  'nseverity',
  'event_name',
  'host',
  'host_name',
  'host_ip',
  'tags',
  'event_ts',
  'event_date',
  'event_time',
  'recovery_ts',
  'recovery_date',
  'recovery_time',
  'trigger_id',
  'url',
];

var params = JSON.parse(value);
if (!params.avviso_url)
  throw 'The avviso_url parameter is missing: set it to https://<avviso>/v1/ingest/zabbix/<integration>';
if (!params.avviso_token || params.avviso_token === '{ALERT.SENDTO}')
  throw 'The avviso_token parameter is empty: set it, or the user media "Send to", to the integration token';

var body = {};
FIELDS.forEach(function (name) {
  var v = params[name];
  if (typeof v === 'string' && v !== '' && !/^\{[A-Z0-9_.$]+\}$/.test(v)) body[name] = v;
});
if (body.tags) {
  try {
    body.tags = JSON.parse(body.tags); // {EVENT.TAGSJSON}
  } catch (e) {
    Zabbix.log(4, '[Avviso] {EVENT.TAGSJSON} is not JSON, tags left out: ' + e);
    delete body.tags;
  }
}
if (!body.url && params.zabbix_url && body.trigger_id && body.event_id) {
  body.url =
    params.zabbix_url.replace(/\/+$/, '') + '/tr_events.php?triggerid=' + body.trigger_id + '&eventid=' + body.event_id;
}

var request = new HttpRequest();
request.addHeader('Content-Type: application/json');
request.addHeader('Authorization: Bearer ' + params.avviso_token);
if (params.http_proxy) request.setProxy(params.http_proxy);

var response = request.post(params.avviso_url, JSON.stringify(body));
var status = request.getStatus();
if (status < 200 || status >= 300) {
  throw 'Avviso answered HTTP ' + status + ': ' + String(response).substring(0, 500);
}
return 'OK';
