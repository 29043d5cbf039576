/**
 * The short code a staff escalation message carries, and the SMS reply that acknowledges it
 * ("OK 123456"): pure, so it is tested alone. The code follows from the incident id, so every
 * message of one incident carries the same code and nothing needs storing to read a reply.
 */
import { createHash } from 'node:crypto';

const CODE_DIGITS = 6;

/** Six digits from the incident id: easy to type on a phone keypad. */
export function acknowledgementCode(incidentId: string): string {
  const n = createHash('sha256').update(`ack:${incidentId}`).digest().readUInt32BE(0);
  return String(n % 10 ** CODE_DIGITS).padStart(CODE_DIGITS, '0');
}

/** Words a reply may start with before the code; a bare code is taken too. */
const ACK_WORDS = ['OK', 'ACK', 'PRESO', 'PRESA', 'CONFERMO'];
const REPLY = new RegExp(`^(?:(?:${ACK_WORDS.join('|')})\\b)?[\\s:.#-]*(\\d{${CODE_DIGITS}})[\\s.!]*$`);

/** The code an acknowledging reply carries ("ok 123456", "PRESO: 123456", "123456"), or undefined. */
export function acknowledgementReply(text: string): string | undefined {
  return REPLY.exec(text.normalize('NFKC').toUpperCase().trim())?.[1];
}

/** Who acknowledged a staff escalation, when, and through what. */
export interface Acknowledgement {
  by: string;
  at: Date;
  via: 'api' | 'console' | 'sms';
  /** The staff contact whose number replied (via sms). */
  contactId?: string;
}
