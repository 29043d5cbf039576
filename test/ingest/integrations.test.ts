/**
 * The integrations file (every problem at once, with file:line:column), site mappings, tokens
 * and Grafana signatures, and `decide`: what an alert does to incidents, episode by episode.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_INTEGRATIONS_FILE,
  IntegrationConfigError,
  loadIntegrations,
  parseIntegrations,
} from '../../ingest/integrations';
import { ALERT_SOURCES, type AlertEvent } from '../../ingest/alert-event';
import { siteIdsFor } from '../../ingest/sites';
import { grafanaSignature, presentedToken, secretsEqual, signatureProblem } from '../../ingest/auth';
import { decide, type DecisionFacts } from '../../ingest/process';
import type { AlertEpisodeDoc } from '../../ingest/store';

describe('integrations file', () => {
  test('the development default defines one integration per tool, with literal tokens noted', async () => {
    const set = await loadIntegrations(DEFAULT_INTEGRATIONS_FILE, {}, { development: true });
    assert.deepEqual(set.integrations.map((i) => i.source).sort(), [...ALERT_SOURCES].sort());
    for (const i of set.integrations) assert.equal(i.token, `dev-token-${i.source}`);
    assert.equal(set.find('zabbix', 'noc')?.timeZone, 'Europe/Rome');
    assert.equal(set.find('zabbix', 'nope'), undefined);
    assert.equal(set.warnings.length, 1);
    assert.match(set.warnings[0]!, /literal secrets .*token_env/);
  });

  test('outside development the example tokens are refused, each at its line, naming the variable to set', async () => {
    await assert.rejects(loadIntegrations(DEFAULT_INTEGRATIONS_FILE, {}), (err: unknown) => {
      assert.ok(err instanceof IntegrationConfigError);
      assert.equal(err.problems.length, ALERT_SOURCES.length, 'one problem per example token');
      assert.match(
        err.problems.join('\n'),
        /integrations\.yaml:\d+:\d+: token of alertmanager\/noc is an example token of rules\/integrations\.yaml, public in the repository: write `token_env: AVVISO_TOKEN_ALERTMANAGER_NOC` instead and set AVVISO_TOKEN_ALERTMANAGER_NOC/,
      );
      return true;
    });
    // A placeholder or an example token moved into the environment is refused as well.
    const text =
      'integrations:\n  - { name: noc, source: alertmanager, token_env: AVVISO_TOKEN_NOC, site: { label: device } }\n';
    for (const value of ['change-me-alertmanager-token', 'dev-token-alertmanager']) {
      assert.throws(
        () => parseIntegrations(text, 'mine.yaml', { AVVISO_TOKEN_NOC: value }),
        /^ {2}mine\.yaml:2:\d+: token_env: AVVISO_TOKEN_NOC is .*: set AVVISO_TOKEN_NOC to a random secret/m,
      );
      assert.equal(
        parseIntegrations(text, 'mine.yaml', { AVVISO_TOKEN_NOC: value }, { development: true }).integrations[0]!.token,
        value,
      );
    }
    // An operator's own literal token is theirs to keep (with the warning).
    const own = parseIntegrations(
      'integrations:\n  - { name: noc, source: alertmanager, token: 8f3c1e0a9b7d, site: { label: device } }\n',
      'mine.yaml',
      {},
    );
    assert.equal(own.integrations[0]!.token, '8f3c1e0a9b7d');
    assert.equal(own.warnings.length, 1);
  });

  test('secrets come from the environment; Grafana signature settings are read', () => {
    const set = parseIntegrations(
      [
        'integrations:',
        '  - name: prod',
        '    source: grafana',
        '    token_env: AVVISO_TOKEN_GRAFANA',
        '    hmac_secret_env: AVVISO_GRAFANA_HMAC',
        '    timestamp_header: X-Grafana-Alerting-Signature-Timestamp',
        '    site: [{ label: device }, { static: [tower-lodi-01, tower-lodi-02] }]',
      ].join('\n'),
      'prod.yaml',
      { AVVISO_TOKEN_GRAFANA: 'a-long-enough-token', AVVISO_GRAFANA_HMAC: 'hmac-secret-123' },
    );
    const g = set.find('grafana', 'prod')!;
    assert.equal(g.token, 'a-long-enough-token');
    assert.deepEqual(g.signature, {
      secret: 'hmac-secret-123',
      signatureHeader: 'x-grafana-alerting-signature',
      timestampHeader: 'x-grafana-alerting-signature-timestamp',
      maxSkewSeconds: 300,
    });
    assert.deepEqual(g.site, [{ label: 'device' }, { static: ['tower-lodi-01', 'tower-lodi-02'] }]);
    assert.equal(g.minSeverity, 'minor');
    assert.deepEqual(set.warnings, []);
  });

  test('every problem is reported at once, at its line and column', () => {
    const text = [
      'defaults:',
      '  min_severity: loud',
      'integrations:',
      '  - name: noc',
      '    source: alertmanagr',
      '    token: dev-token-x',
      '    site: { label: device }',
      '  - name: noc',
      '    source: prtg',
      '    token_env: AVVISO_TOKEN_PRTG',
      '    site: { lookup: { by: mac, table: { a: b } } }',
      '  - name: noc',
      '    source: prtg',
      '    token: dev-token-prtg',
      '    tz: Europe/Rome',
      '    hmac_secret: something-long',
      '    site: { field: colour }',
    ].join('\n');
    try {
      parseIntegrations(text, 'integrations.yaml', {});
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof IntegrationConfigError);
      const found = err.problems.join('\n');
      assert.match(found, /^integrations\.yaml:2:17: min_severity must be one of/m);
      assert.match(found, /^integrations\.yaml:5:13: source must be one of alertmanager/m);
      assert.match(
        found,
        /^integrations\.yaml:10:16: token_env: the environment variable AVVISO_TOKEN_PRTG is not set/m,
      );
      assert.match(found, /^integrations\.yaml:9:13: time_zone is required for prtg/m, 'PRTG sends local times');
      assert.match(found, /^integrations\.yaml:11:27: lookup\.by must be ip or hostname/m);
      assert.match(found, /^integrations\.yaml:12:11: prtg\/noc is already defined at integrations\.yaml:8:11/m);
      assert.match(found, /^integrations\.yaml:15:5: unknown key "tz"/m);
      assert.match(found, /^integrations\.yaml:16:5: HMAC signatures are Grafana's/m);
      assert.match(found, /^integrations\.yaml:17:20: field must be one of device, host/m);
    }
    assert.throws(() => parseIntegrations('integrations:\n  - name: [\n', 'bad.yaml', {}), /bad\.yaml:\d+:\d+: YAML:/);
  });
});

describe('site mapping', () => {
  const target = {
    device: 'Lodi-Core.noc.example',
    ip: '10.20.0.1',
    labels: { device: 'tower-lodi-02', alertname: 'TowerDown' },
  };
  test('mappings are tried in order until one names a site', () => {
    assert.deepEqual(siteIdsFor(target, [{ label: 'site' }, { label: 'device' }]), { siteIds: ['tower-lodi-02'] });
    assert.deepEqual(
      siteIdsFor(target, [{ lookup: { by: 'hostname', table: { 'lodi-core.noc.example': ['tower-lodi-01'] } } }]),
      { siteIds: ['tower-lodi-01'] },
      'host names compare without case',
    );
    assert.deepEqual(
      siteIdsFor(target, [{ lookup: { by: 'ip', table: { '10.20.0.1': ['tower-lodi-01', 'ap-lodi-01-a'] } } }]),
      { siteIds: ['tower-lodi-01', 'ap-lodi-01-a'] },
    );
    assert.deepEqual(siteIdsFor(target, [{ static: ['tower-crema-01'] }]), { siteIds: ['tower-crema-01'] });
    assert.deepEqual(siteIdsFor(target, [{ field: 'device' }]), { siteIds: ['Lodi-Core.noc.example'] });
  });
  test('when none does, the problem says what was looked for', () => {
    const r = siteIdsFor(target, [{ label: 'site' }, { lookup: { by: 'ip', table: { '10.9.9.9': ['x'] } } }]);
    assert.ok('problem' in r);
    assert.match(
      r.problem,
      /no label "site" \(it has device, alertname\); ip "10\.20\.0\.1" is not in the integration's lookup table/,
    );
  });
});

describe('tokens and signatures', () => {
  test('a token is taken from Bearer, Basic, X-Avviso-Token or the query, and compared whatever its length', () => {
    assert.deepEqual(presentedToken({ authorization: 'Bearer abc' }, {}), { token: 'abc', via: 'bearer' });
    assert.deepEqual(
      presentedToken({ authorization: `Basic ${Buffer.from('alertmanager:s3cr:et').toString('base64')}` }, {}),
      { token: 's3cr:et', via: 'basic' },
    );
    assert.deepEqual(presentedToken({ 'x-avviso-token': 'abc' }, {}), { token: 'abc', via: 'header' });
    assert.deepEqual(presentedToken({}, { token: 'abc' }), { token: 'abc', via: 'query' });
    assert.equal(presentedToken({}, {}), undefined);
    assert.equal(secretsEqual('abc', 'abc'), true);
    assert.equal(secretsEqual('abc', 'abcd'), false);
  });

  test('Grafana signatures: over the body, or over "<timestamp>:<body>", and not too old', () => {
    const body = Buffer.from('{"alerts":[]}');
    const now = new Date('2026-05-04T13:00:00Z');
    const plain = { secret: 'hmac-secret', signatureHeader: 'x-grafana-alerting-signature', maxSkewSeconds: 300 };
    assert.equal(
      signatureProblem(plain, body, { 'x-grafana-alerting-signature': grafanaSignature('hmac-secret', body) }, now),
      undefined,
    );
    assert.match(
      signatureProblem(plain, body, { 'x-grafana-alerting-signature': grafanaSignature('other', body) }, now)!,
      /does not match/,
    );
    assert.match(signatureProblem(plain, body, {}, now)!, /missing/);
    const stamped = { ...plain, timestampHeader: 'x-ts' };
    const ts = String(now.getTime() / 1000);
    assert.equal(
      signatureProblem(
        stamped,
        body,
        { 'x-ts': ts, 'x-grafana-alerting-signature': grafanaSignature('hmac-secret', body, ts) },
        now,
      ),
      undefined,
    );
    const old = String(now.getTime() / 1000 - 3600);
    assert.match(
      signatureProblem(
        stamped,
        body,
        { 'x-ts': old, 'x-grafana-alerting-signature': grafanaSignature('hmac-secret', body, old) },
        now,
      )!,
      /3600 s away/,
    );
  });
});

describe('decide', () => {
  const event = (o: Partial<AlertEvent> = {}): AlertEvent => ({
    source: 'alertmanager',
    integration: 'noc',
    dedupKey: 'alertmanager:noc:fp',
    eventId: 'evt_1',
    kind: 'state',
    status: 'firing',
    target: { labels: {} },
    severity: 'critical',
    summary: 's',
    startsAt: new Date('2026-05-04T13:00:00Z'),
    receivedAt: new Date('2026-05-04T13:00:05Z'),
    ...o,
  });
  const episode = (n: number, state: 'open' | 'resolved'): AlertEpisodeDoc => ({
    _id: `alertmanager:noc:fp#${n}`,
    dedupKey: 'alertmanager:noc:fp',
    episode: n,
    incidentId: `inc_${n}`,
    state,
    siteIds: ['tower-lodi-01'],
    openedAt: new Date(0),
  });
  const facts = (o: Partial<DecisionFacts> = {}): DecisionFacts => ({
    sites: { siteIds: ['tower-lodi-01'] },
    minSeverity: 'minor',
    ...o,
  });

  test('the first firing opens episode 1; firing again while open reaches the same incident', () => {
    assert.deepEqual(decide(event(), facts()), {
      action: 'open',
      incidentKey: 'alertmanager:noc:fp#1',
      episode: 1,
      siteIds: ['tower-lodi-01'],
    });
    assert.deepEqual(decide(event(), facts({ episode: episode(1, 'open') })), {
      action: 'open',
      incidentKey: 'alertmanager:noc:fp#1',
      episode: 1,
      siteIds: ['tower-lodi-01'],
    });
  });

  test('resolved closes the open episode; the next firing is a new episode, hence a new incident', () => {
    assert.deepEqual(decide(event({ status: 'resolved' }), facts({ episode: episode(1, 'open') })), {
      action: 'resolve',
      incidentKey: 'alertmanager:noc:fp#1',
      incidentId: 'inc_1',
    });
    assert.equal(decide(event({ status: 'resolved' }), facts({ episode: episode(1, 'resolved') })).action, 'record');
    assert.equal(decide(event({ status: 'resolved' }), facts()).action, 'record');
    assert.deepEqual(decide(event(), facts({ episode: episode(1, 'resolved') })), {
      action: 'open',
      incidentKey: 'alertmanager:noc:fp#2',
      episode: 2,
      siteIds: ['tower-lodi-01'],
    });
  });

  test('resolved by hand: the same problem is not reopened, a problem that began later is', () => {
    const closedAt = new Date('2026-05-04T14:00:00Z');
    assert.equal(decide(event(), facts({ episode: episode(1, 'open'), incidentClosedAt: closedAt })).action, 'record');
    assert.deepEqual(
      decide(
        event({ startsAt: new Date('2026-05-04T15:00:00Z') }),
        facts({ episode: episode(1, 'open'), incidentClosedAt: closedAt }),
      ),
      { action: 'open', incidentKey: 'alertmanager:noc:fp#2', episode: 2, siteIds: ['tower-lodi-01'] },
    );
  });

  test('acks, updates, info and low severities are recorded; an unplaceable firing alert is rejected', () => {
    for (const kind of ['ack', 'update', 'info'] as const)
      assert.equal(decide(event({ kind }), facts()).action, 'record');
    assert.equal(decide(event({ severity: 'warning' }), facts()).action, 'record');
    assert.equal(decide(event({ severity: 'warning' }), facts({ minSeverity: 'warning' })).action, 'open');
    assert.equal(decide(event({ severity: 'unknown' }), facts()).action, 'open', 'no severity counts as major');
    assert.deepEqual(decide(event(), facts({ sites: { problem: 'no label "device"' } })), {
      action: 'reject',
      reason: 'no label "device"',
    });
    assert.equal(
      decide(event({ status: 'resolved' }), facts({ sites: { problem: 'x' }, episode: episode(1, 'open') })).action,
      'resolve',
      'a resolution needs no site',
    );
  });
});
