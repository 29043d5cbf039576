/** `avviso incidents ack ID` and `avviso maintenances ack ID`: take a staff escalation, over the HTTP API. */
import { shortTime } from './api-client';
import { idArg, printJson, type Handler } from './remote-command';

interface Acknowledged {
  phase?: string;
  acknowledged: { by: string; at: string };
  alreadyAcknowledged: boolean;
}

export function acknowledgeHandler(resource: 'incidents' | 'maintenances', prefix: 'inc' | 'mnt'): Handler {
  return async (api, args, io) => {
    const id = idArg(args, prefix, `avviso ${resource} ack ${prefix}_0123456789abcdef`);
    const r = await api.request<Acknowledged>('POST', `/v1/${resource}/${id}/acknowledge`, {});
    if (args.values.json) return (printJson(io, r), 0);
    const who = `${r.acknowledged.by} at ${shortTime(r.acknowledged.at)} UTC`;
    io.out(
      r.alreadyAcknowledged
        ? `${id}: already acknowledged by ${who}`
        : `${id}: acknowledged by ${who}: the escalation stops (phase ${r.phase ?? '-'})`,
    );
    return 0;
  };
}

/** The line `show` prints for an acknowledged escalation. */
export function acknowledgedLine(a: { by: string; at: string; via: string }): string {
  return `acknowledged by ${a.by} at ${shortTime(a.at)} UTC (${a.via})`;
}
