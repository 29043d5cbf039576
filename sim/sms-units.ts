/**
 * The simulator counts SMS parts exactly as the rest of Avviso does: the logic lives in
 * rules/sms.ts (pure, shared by the rules, the senders and the simulator).
 */
export { segmentSms, textTooLong, isGsm7, MAX_GSM_CHARS, MAX_UCS2_CHARS } from '../rules/sms';
export type { SmsEncoding, SmsSegmentation } from '../rules/sms';
