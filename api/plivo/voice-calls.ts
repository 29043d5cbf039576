/**
 * What the voice routes need from the store: the words of a call (stored on its delivery record
 * before the call was fired) and what to record when it ends. An answered call counts as
 * delivered; busy, no answer or a failure as undelivered, which the delivery watchdog retries and
 * then falls back from, as for an undelivered SMS.
 */
import type { Store } from '../../store/db';
import type { VoiceHangup, VoiceRouteOptions } from '../routes/voice';
import { transition } from '../../store/deliveries';

export function voiceCallHandlers(store: Store): Pick<VoiceRouteOptions, 'lookupSpeech' | 'recordHangup'> {
  return {
    async lookupSpeech(deliveryId) {
      const d = await store.deliveries.findOne(
        { _id: deliveryId, channel: 'voice' },
        { projection: { text: 1, language: 1, state: 1 } },
      );
      if (!d?.text || d.state === 'expired') return null;
      return { text: d.text, language: d.language };
    },
    async recordHangup(deliveryId: string, hangup: VoiceHangup) {
      const answered = hangup.callStatus === 'completed' && (hangup.durationSec ?? 1) > 0;
      const note = `call ${hangup.callStatus ?? 'ended'}${hangup.hangupCause ? ` (${hangup.hangupCause})` : ''}`;
      await transition(
        store,
        { _id: deliveryId, channel: 'voice', state: { $in: ['sending', 'accepted', 'sent'] } },
        answered ? 'delivered' : 'undelivered',
        new Date(),
        note,
        answered ? {} : { error: note },
      );
    },
  };
}
