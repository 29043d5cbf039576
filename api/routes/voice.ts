/**
 * The URLs Plivo calls during a voice notice (channels/voice-plivo.ts fires the call):
 * - `POST /v1/voice/answer/:deliveryId`: the phone was answered; we answer Plivo XML that reads the
 *   message twice in the recipient's language.
 * - `POST /v1/voice/hangup/:deliveryId`: the call ended (answered or not), passed on to the caller's
 *   `recordHangup` so the delivery can be marked.
 * Both are signed by Plivo (signature V2) and refused otherwise. The plugin knows nothing of the
 * store: it is given functions that do.
 */
import type { FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import { ApiError } from '../errors';
import { isValidPlivoSignatureV2 } from '../plivo/signature';
import { VOICE_ANSWER_PATH, VOICE_HANGUP_PATH } from '../../channels/voice-plivo';
import type { Language } from '../../domain/types';

export interface VoiceSpeech {
  text: string;
  language: Language;
}

export interface VoiceHangup {
  callUuid?: string;
  /** Plivo's CallStatus: completed, busy, failed, timeout, no-answer, cancel. */
  callStatus?: string;
  hangupCause?: string;
  /** Seconds the call lasted once answered. */
  durationSec?: number;
}

export interface VoiceRouteOptions {
  /** The address Plivo calls back: signatures are computed over it. */
  publicUrl: string;
  plivoAuthToken: string;
  /** What to say for a delivery, or null when there is nothing (unknown or cancelled): the call is hung up. */
  lookupSpeech(deliveryId: string): Promise<VoiceSpeech | null> | VoiceSpeech | null;
  /** How a call ended; without it, hangups are acknowledged and dropped. */
  recordHangup?(deliveryId: string, hangup: VoiceHangup): Promise<void> | void;
}

/** Plivo's text-to-speech voices for our languages. */
const PLIVO_LANGUAGE: Record<Language, string> = { it: 'it-IT', en: 'en-GB' };

/** Read twice: the first words are often lost while the phone travels to the ear. */
const SPEAK_LOOPS = 2;

export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

export function speakXml(speech: VoiceSpeech): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Speak language="${PLIVO_LANGUAGE[speech.language]}" voice="WOMAN" loop="${SPEAK_LOOPS}">${escapeXml(speech.text)}</Speak></Response>`;
}

const HANGUP_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Hangup/></Response>';

interface CallParams {
  CallUUID?: string;
  From?: string;
  To?: string;
  CallStatus?: string;
  Direction?: string;
  HangupCause?: string;
  HangupCauseName?: string;
  Duration?: string;
}

const deliveryParam = {
  type: 'object',
  required: ['deliveryId'],
  properties: {
    deliveryId: {
      type: 'string',
      minLength: 1,
      maxLength: 300,
      description: 'The delivery this call fulfils (URL-encoded)',
    },
  },
} as const;

/** Plivo posts more fields than these, and may add some: unknown ones are accepted. */
const callParams = {
  type: 'object',
  properties: {
    CallUUID: { type: 'string' },
    From: { type: 'string' },
    To: { type: 'string' },
    CallStatus: { type: 'string' },
    Direction: { type: 'string' },
    HangupCause: { type: 'string' },
    HangupCauseName: { type: 'string' },
    Duration: { type: 'string' },
  },
} as const;

export const voiceRoutes: FastifyPluginAsync<VoiceRouteOptions> = async (app, opts) => {
  // Plivo posts form-encoded bodies; the app may have registered the parser already.
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody);

  // Checked before the body is parsed: an unsigned caller gets nothing out of us.
  app.addHook('onRequest', async (req) => {
    const ok = isValidPlivoSignatureV2(
      `${opts.publicUrl}${req.url}`,
      req.headers['x-plivo-signature-v2-nonce'] as string | undefined,
      req.headers['x-plivo-signature-v2'] as string | undefined,
      opts.plivoAuthToken,
    );
    if (!ok)
      throw new ApiError(
        403,
        'bad_signature',
        'Missing or wrong X-Plivo-Signature-V2 for this URL; check PLIVO_AUTH_TOKEN and AVVISO_PUBLIC_URL.',
      );
  });

  app.post<{ Params: { deliveryId: string }; Body: CallParams }>(
    `${VOICE_ANSWER_PATH}/:deliveryId`,
    {
      schema: {
        tags: ['plivo'],
        summary: 'Plivo asks what to say on an answered notice call (signed, form-encoded); answers Plivo XML',
        params: deliveryParam,
        body: callParams,
        response: {
          200: {
            description: 'Plivo XML: <Speak> the notice, or <Hangup/> when there is nothing to say',
            content: { 'application/xml': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (req, reply) => {
      const speech = await opts.lookupSpeech(req.params.deliveryId);
      if (!speech)
        req.log.warn({ callUuid: req.body?.CallUUID }, 'answered call for a delivery with nothing to say: hanging up');
      return reply.type('application/xml; charset=utf-8').send(speech ? speakXml(speech) : HANGUP_XML);
    },
  );

  app.post<{ Params: { deliveryId: string }; Body: CallParams }>(
    `${VOICE_HANGUP_PATH}/:deliveryId`,
    {
      schema: {
        tags: ['plivo'],
        summary: 'Plivo reports how a notice call ended (signed, form-encoded)',
        params: deliveryParam,
        body: callParams,
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
      },
    },
    async (req) => {
      const b = req.body ?? {};
      const duration = Number(b.Duration);
      await opts.recordHangup?.(req.params.deliveryId, {
        callUuid: b.CallUUID,
        callStatus: b.CallStatus,
        hangupCause: b.HangupCauseName ?? b.HangupCause,
        durationSec: Number.isFinite(duration) && b.Duration !== undefined && b.Duration !== '' ? duration : undefined,
      });
      return { ok: true };
    },
  );
};
