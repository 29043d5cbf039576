/** An SMS to our number as Plivo delivers it: signed with signature V2, posted to the API's inbound route. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { plivoSignatureV2 } from '../../api/plivo/signature';
import { SIM_AUTH_TOKEN, type TestStack } from './stack';

export async function inboundSms(stack: TestStack, from: string, text: string): Promise<{ action?: string }> {
  const url = `${stack.apiUrl}/v1/plivo/inbound`;
  const nonce = String(Math.floor(Math.random() * 1e12));
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-plivo-signature-v2': plivoSignatureV2(url, nonce, SIM_AUTH_TOKEN),
      'x-plivo-signature-v2-nonce': nonce,
    },
    body: new URLSearchParams({
      From: from.replace('+', ''),
      To: '390000000000',
      Text: text,
      Type: 'sms',
      MessageUUID: randomUUID(),
    }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { action?: string };
}
