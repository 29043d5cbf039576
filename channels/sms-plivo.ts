/**
 * The SMS channel: sends one text to many numbers through the real `plivo` SDK, pointed at
 * Plivo or at any server that speaks its Message API (the simulator in dev and tests).
 */
import { Client } from 'plivo';

export interface PlivoSettings {
  authId: string;
  authToken: string;
  baseUrl: string;
  sender: string;
}

/** Plivo takes at most this many destinations in one request. */
export const PLIVO_MAX_DESTINATIONS = 1000;

export interface BulkResult {
  /** Provider message id for each number Plivo accepted. */
  accepted: Map<string, string>;
  /** Numbers Plivo refused as invalid. */
  invalid: string[];
}

export interface SmsSender {
  sendBulk(text: string, phones: string[], statusCallbackUrl?: string): Promise<BulkResult>;
}

export function createPlivoClient(s: PlivoSettings): Client {
  // The SDK's `url` option replaces the whole account base; nothing else moves it off api.plivo.com.
  return new Client(s.authId, s.authToken, { url: `${s.baseUrl}/v1/Account/${s.authId}`, timeout: 30_000 });
}

export function createPlivoSender(s: PlivoSettings, client: Client = createPlivoClient(s)): SmsSender {
  return {
    async sendBulk(text, phones, statusCallbackUrl) {
      if (phones.length === 0) return { accepted: new Map(), invalid: [] };
      if (phones.length > PLIVO_MAX_DESTINATIONS) throw new Error(`at most ${PLIVO_MAX_DESTINATIONS} numbers per request, got ${phones.length}`);
      const unique = [...new Set(phones)];
      // Plivo wants numbers without the leading '+'.
      const dst = unique.map((p) => p.replace(/^\+/, ''));
      const res = await client.messages.create(s.sender, dst, text, statusCallbackUrl ? { url: statusCallbackUrl, method: 'POST' } : {});
      const invalid = new Set((res.invalid_number ?? []).map((n) => `+${String(n).replace(/^\+/, '')}`));
      const valid = unique.filter((p) => !invalid.has(p));
      // Plivo answers with one uuid per valid destination, in the order they were given.
      if (res.messageUuid.length !== valid.length) {
        throw new Error(`Plivo returned ${res.messageUuid.length} message ids for ${valid.length} valid numbers`);
      }
      return { accepted: new Map(valid.map((p, i) => [p, res.messageUuid[i]!])), invalid: [...invalid] };
    },
  };
}
