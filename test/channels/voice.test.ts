/**
 * Voice notices: the answer/hangup routes on a bare Fastify (driven with inject), then the whole
 * loop with the Plivo simulator in-process: the channel fires calls at its Call API, the simulator
 * fetches our answer URL (signed), "speaks" the XML and reports the hangup to us.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { ChannelError, type OutboundMessage } from '../../channels/channel';
import { PartialSendError } from '../../channels/per-recipient';
import { PlivoVoiceChannel, voiceAnswerUrl, type PlivoVoiceSettings } from '../../channels/voice-plivo';
import { speakXml, voiceRoutes, type VoiceHangup, type VoiceSpeech } from '../../api/routes/voice';
import { plivoSignatureV2 } from '../../api/plivo/signature';
import { freePort } from '../../dev/process';
import { startSimulator, type RunningSimulator } from '../../sim/plivo-simulator';
import { eventually } from '../support/env';

const AUTH_ID = 'MATESTSIMULATOR000001';
const AUTH_TOKEN = 'test-simulator-token';
const CALLER_ID = '+390212345678';
const PHONE_A = '+393331234567';
const PHONE_B = '+393471234567';

const speeches = new Map<string, VoiceSpeech>();
const hangups: { deliveryId: string; hangup: VoiceHangup }[] = [];
let api: FastifyInstance;
let apiUrl: string;

before(async () => {
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  api = Fastify();
  await api.register(voiceRoutes, {
    publicUrl: apiUrl,
    plivoAuthToken: AUTH_TOKEN,
    lookupSpeech: async (id) => speeches.get(id) ?? null,
    recordHangup: async (deliveryId, hangup) => void hangups.push({ deliveryId, hangup }),
  });
  await api.listen({ host: '127.0.0.1', port });
});
after(() => api.close());
beforeEach(() => {
  speeches.clear();
  hangups.length = 0;
});

/** A form POST signed as Plivo signs it, over the public URL. */
function signedPost(path: string, form: Record<string, string>, token = AUTH_TOKEN) {
  const nonce = '12345678901234567890';
  return api.inject({
    method: 'POST',
    url: path,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-plivo-signature-v2': plivoSignatureV2(`${apiUrl}${path}`, nonce, token),
      'x-plivo-signature-v2-nonce': nonce,
    },
    payload: new URLSearchParams(form).toString(),
  });
}

const DELIVERY = 'inc_1|outage|sub_9|+393331234567';
const answerPath = (id: string) => new URL(voiceAnswerUrl(apiUrl, id)).pathname;

describe('the answer and hangup routes', () => {
  test('an answered call is told to speak the text twice, in Italian, escaped', async () => {
    speeches.set(DELIVERY, { text: 'Guasto a Lodi & Crema: <servizio> "interrotto"', language: 'it' });
    const res = await signedPost(answerPath(DELIVERY), {
      CallUUID: 'c-1',
      From: '390212345678',
      To: '393331234567',
      CallStatus: 'in-progress',
      Direction: 'outbound',
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^application\/xml/);
    assert.equal(
      res.body,
      '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Speak language="it-IT" voice="WOMAN" loop="2">Guasto a Lodi &amp; Crema: &lt;servizio&gt; &quot;interrotto&quot;</Speak></Response>',
    );
  });

  test('English is spoken with the British voice', () => {
    assert.match(
      speakXml({ text: 'Service is down.', language: 'en' }),
      /<Speak language="en-GB" voice="WOMAN" loop="2">Service is down\.<\/Speak>/,
    );
  });

  test('a delivery with nothing to say is hung up', async () => {
    const res = await signedPost(answerPath('unknown|id'), { CallUUID: 'c-2' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /<Response><Hangup\/><\/Response>/);
  });

  test('unsigned or wrongly signed calls are refused', async () => {
    speeches.set(DELIVERY, { text: 'segreto', language: 'it' });
    const unsigned = await api.inject({
      method: 'POST',
      url: answerPath(DELIVERY),
      payload: 'CallUUID=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(unsigned.statusCode, 403);
    assert.doesNotMatch(unsigned.body, /segreto/);
    const wrong = await signedPost(answerPath(DELIVERY), { CallUUID: 'x' }, 'another-token');
    assert.equal(wrong.statusCode, 403);
  });

  test('the hangup is passed on with its status, cause and duration', async () => {
    const res = await signedPost(`/v1/voice/hangup/${encodeURIComponent(DELIVERY)}`, {
      CallUUID: 'c-3',
      CallStatus: 'no-answer',
      HangupCauseName: 'No Answer',
      HangupCause: 'NO_ANSWER',
      Duration: '0',
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(hangups, [
      {
        deliveryId: DELIVERY,
        hangup: { callUuid: 'c-3', callStatus: 'no-answer', hangupCause: 'No Answer', durationSec: 0 },
      },
    ]);
  });
});

describe('calls through the Plivo simulator', () => {
  const sims: RunningSimulator[] = [];
  async function simulator(faults?: Parameters<typeof startSimulator>[0]['faults']): Promise<RunningSimulator> {
    const sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 10,
      faults,
    });
    sims.push(sim);
    return sim;
  }
  after(() => Promise.all(sims.map((s) => s.close())));

  function channel(sim: RunningSimulator, extra: Partial<PlivoVoiceSettings> = {}): PlivoVoiceChannel {
    return new PlivoVoiceChannel({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      baseUrl: sim.url,
      callerId: CALLER_ID,
      publicUrl: apiUrl,
      ...extra,
    });
  }

  function message(to: string, n: number, language: 'it' | 'en' = 'it'): OutboundMessage {
    const text =
      language === 'it'
        ? `Avviso numero ${n}: servizio internet interrotto a Lodi.`
        : `Notice ${n}: internet service is down in Lodi.`;
    const m = { deliveryId: `inc_1|outage|sub_${n}|${to}`, to, text, language };
    speeches.set(m.deliveryId, { text, language });
    return m;
  }

  interface SimCallEntry {
    requestUuid: string;
    status: string;
    spokenText: string;
    speak: { language?: string; voice?: string; loop?: number }[];
  }
  async function callsTo(sim: RunningSimulator, phone: string): Promise<SimCallEntry[]> {
    const res = await fetch(`${sim.url}/inbox.json?to=${encodeURIComponent(phone)}`);
    return ((await res.json()) as { calls: Record<string, SimCallEntry[]> }).calls[phone] ?? [];
  }

  test('each recipient is called, hears the message in their language, and the hangup comes back', async () => {
    const sim = await simulator();
    const batch = [message(PHONE_A, 1), message(PHONE_B, 2, 'en'), message('12', 3)];
    const outcomes = await channel(sim).send(batch);

    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['accepted', 'accepted', 'invalid'],
    );
    assert.match((outcomes[2] as { error: string }).error, /not a valid phone number/);

    const [a] = await eventually('the call to A to complete', async () => {
      const calls = await callsTo(sim, PHONE_A);
      return calls[0]?.status === 'completed' ? calls : undefined;
    });
    assert.equal(
      a!.requestUuid,
      (outcomes[0] as { providerMessageId: string }).providerMessageId,
      'the request uuid is the provider id',
    );
    assert.equal(a!.spokenText, batch[0]!.text);
    assert.deepEqual(
      a!.speak.map((s) => [s.language, s.voice, s.loop]),
      [['it-IT', 'WOMAN', 2]],
    );
    const [b] = await eventually('the call to B to complete', async () => {
      const calls = await callsTo(sim, PHONE_B);
      return calls[0]?.status === 'completed' ? calls : undefined;
    });
    assert.equal(b!.spokenText, batch[1]!.text);
    assert.equal(b!.speak[0]!.language, 'en-GB');

    await eventually('both hangups', async () => (hangups.length >= 2 ? true : undefined));
    assert.deepEqual(hangups.map((h) => [h.deliveryId, h.hangup.callStatus]).sort(), [
      [batch[0]!.deliveryId, 'completed'],
      [batch[1]!.deliveryId, 'completed'],
    ]);
  });

  test('an unanswered call is reported through the hangup URL', async () => {
    const sim = await simulator({ seed: 1, callFailRate: 1 });
    await channel(sim).send([message(PHONE_A, 1)]);
    const [h] = await eventually('the hangup', async () => (hangups.length ? hangups : undefined));
    assert.ok(['no-answer', 'busy'].includes(h!.hangup.callStatus!));
  });

  test("429 is retryable, with Plivo's Retry-After", async () => {
    const sim = await simulator({ rateLimit: { burstEvery: 1, burstLength: 1, retryAfterSeconds: 3 } });
    await assert.rejects(channel(sim).send([message(PHONE_A, 1), message(PHONE_B, 2)]), (err: unknown) => {
      assert.ok(err instanceof ChannelError && !(err instanceof PartialSendError));
      assert.equal(err.retryable, true);
      assert.equal(err.status, 429);
      assert.equal(err.retryAfterMs, 3000);
      return true;
    });
  });

  test('5xx and an unreachable API are retryable; wrong credentials are retried slowly', async () => {
    const failing = await simulator({ seed: 1, errorRate: { '503': 1 } });
    await assert.rejects(
      channel(failing).send([message(PHONE_A, 1)]),
      (err: ChannelError) => err.retryable && err.status === 503,
    );

    await assert.rejects(
      channel(failing, { baseUrl: `http://127.0.0.1:${await freePort()}` }).send([message(PHONE_A, 1)]),
      (err: ChannelError) => {
        assert.ok(err.retryable && /unreachable: ECONNREFUSED/.test(err.message));
        assert.equal(err.status, undefined, 'no status: the request may or may not have reached Plivo');
        return true;
      },
    );

    const sim = await simulator();
    await assert.rejects(
      channel(sim, { authToken: 'wrong-token' }).send([message(PHONE_A, 1)]),
      (err: ChannelError) => {
        assert.equal(err.retryable, true);
        assert.equal(err.retryAfterMs, 60_000);
        assert.equal(err.status, 401);
        assert.match(err.message, /check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN/);
        assert.doesNotMatch(err.message, /wrong-token/);
        return true;
      },
    );
  });

  test('a 400 about the recipient makes it invalid; a 400 naming our own parameters stops the channel', async () => {
    // The simulator checks numbers as we do, so a refusal by Plivo is simulated with its error fault.
    const refusing = await simulator({ seed: 1, errorRate: { '400': 1 } });
    const [refused] = await channel(refusing).send([message(PHONE_A, 1)]);
    assert.equal(refused!.outcome, 'invalid');
    assert.match((refused as { error: string }).error, /^Plivo refused the call to \+39\*+567 \(400\)/);

    const sim = await simulator();
    await assert.rejects(
      channel(sim, { publicUrl: 'ftp://avviso.example.net' }).send([message(PHONE_A, 1), message(PHONE_B, 2)]),
      (err: unknown) => {
        assert.ok(err instanceof ChannelError && !(err instanceof PartialSendError));
        assert.equal(err.retryable, false);
        assert.match(err.message, /answer_url is not a valid http\(s\) URL/);
        return true;
      },
    );
    assert.deepEqual(await callsTo(sim, PHONE_B), [], 'no call is fired after the first refusal');
  });

  test('acceptedSince finds a call Plivo took, whether still queued, live or ended, and nothing placed before', async () => {
    // 300 ms a step: queued, then ringing, then answered, then hung up.
    const sim = await simulator();
    const slow = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 300,
    });
    sims.push(slow);
    const voice = channel(slow);
    const [earlier] = await voice.send([message(PHONE_A, 1)]);
    await eventually('the earlier call to end', async () =>
      (await callsTo(slow, PHONE_A))[0]?.status === 'completed' ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1100)); // Plivo's times are to the second
    const since = new Date();
    const [later] = await voice.send([message(PHONE_A, 2)]);
    const id = (later as { providerMessageId: string }).providerMessageId;
    assert.notEqual(id, (earlier as { providerMessageId: string }).providerMessageId);

    const phones = new Set([PHONE_A, PHONE_B]);
    assert.deepEqual(await voice.acceptedSince(since, phones), new Map([[PHONE_A, [id]]]), 'queued');
    await eventually('the call to ring', async () =>
      (await callsTo(slow, PHONE_A))[1]?.status === 'ringing' ? true : undefined,
    );
    assert.deepEqual(await voice.acceptedSince(since, phones), new Map([[PHONE_A, [id]]]), 'live');
    assert.deepEqual(
      await voice.acceptedSince(since, new Set([PHONE_A])),
      new Map([[PHONE_A, [id]]]),
      'live, asked for one number',
    );
    await eventually(
      'the call to end',
      async () => ((await callsTo(slow, PHONE_A))[1]?.status === 'completed' ? true : undefined),
      10_000,
    );
    assert.deepEqual(await voice.acceptedSince(since, phones), new Map([[PHONE_A, [id]]]), 'ended');
    assert.deepEqual(
      await voice.acceptedSince(since, new Set([PHONE_B])),
      new Map(),
      'nothing for a number not called',
    );
    const before = new Date(since.getTime() - 60_000);
    assert.deepEqual(
      new Set((await voice.acceptedSince(before, new Set([PHONE_A]))).get(PHONE_A)),
      new Set([id, (earlier as { providerMessageId: string }).providerMessageId]),
      'both, from further back',
    );

    await assert.rejects(
      channel(sim, { authToken: 'wrong-token' }).acceptedSince(since, phones),
      (err: ChannelError) => err.retryable && err.status === 401,
    );
  });

  test('a failure part-way stops firing calls and names the ones already ringing', async () => {
    // Every third request gets a 429: with one call at a time, two are fired and the third is refused.
    const sim = await simulator({ rateLimit: { burstEvery: 3, burstLength: 1, retryAfterSeconds: 2 } });
    const batch = [1, 2, 3, 4, 5].map((n) => message(`+3933312345${60 + n}`, n));
    await assert.rejects(channel(sim, { concurrency: 1 }).send(batch), (err: unknown) => {
      assert.ok(err instanceof PartialSendError);
      assert.equal(err.retryable, true);
      assert.equal(err.retryAfterMs, 2000);
      assert.deepEqual(
        err.outcomes.map((o) => [o.deliveryId, o.outcome]),
        [
          [batch[0]!.deliveryId, 'accepted'],
          [batch[1]!.deliveryId, 'accepted'],
        ],
      );
      assert.deepEqual(
        err.unsent,
        batch.slice(2).map((m) => m.deliveryId),
      );
      return true;
    });
  });
});
