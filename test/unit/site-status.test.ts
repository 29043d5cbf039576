/** STATO/INFO answers with where the subscriber's site really stands: pure logic, tested alone. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replyText, siteStatus } from '../../domain/inbound';
import type { Incident } from '../../domain/types';

const now = new Date('2026-12-04T10:00:00Z');
const at = (h: number) => new Date(now.getTime() + h * 3600_000);
type Covering = Pick<Incident, 'kind' | 'phase' | 'areas' | 'estimatedEnd' | 'window'>;
const outage = (phase: Incident['phase'], areas = ['Lodi'], estimatedEnd?: Date): Covering => ({
  kind: 'outage',
  phase,
  areas,
  ...(estimatedEnd ? { estimatedEnd } : {}),
});
const works = (phase: Incident['phase'], startsAt: Date, endsAt: Date, areas = ['Lodi']): Covering => ({
  kind: 'maintenance',
  phase,
  areas,
  window: { startsAt, endsAt },
});

test('nothing covering the site: all normal, and the reply says so', () => {
  assert.deepEqual(siteStatus([], now), { state: 'normal' });
  assert.match(replyText('info', 'it', siteStatus([], now)), /Nessun guasto né manutenzione/);
  assert.match(replyText('info', 'en', siteStatus([], now)), /service is running normally/);
});

test('an open outage wins over maintenance, with the latest estimate only when every outage has one', () => {
  const s = siteStatus(
    [works('in_progress', at(-1), at(2)), outage('notified', ['Lodi'], at(3)), outage('escalated', ['Crema'], at(1))],
    now,
  );
  assert.deepEqual(s, { state: 'outage', areas: ['Crema', 'Lodi'], estimatedEnd: at(3) });
  assert.match(
    replyText('info', 'it', s),
    /^Guasto in corso: Crema, Lodi\. Ripristino previsto: .+\. Ti avviseremo al ripristino\.$/,
  );
  assert.equal(
    (siteStatus([outage('notified', ['Lodi'], at(3)), outage('detected')], now) as { estimatedEnd?: Date })
      .estimatedEnd,
    undefined,
  );
});

test('resolving, resolved and cancelled outages are over for the subscriber', () => {
  assert.deepEqual(siteStatus([outage('resolving'), outage('resolved'), outage('cancelled')], now), {
    state: 'normal',
  });
});

test('a maintenance under way (or overrunning) says when it should end', () => {
  const s = siteStatus([works('overrun', at(-3), at(-1)), works('scheduled', at(24), at(26))], now);
  assert.equal(s.state, 'maintenance');
  assert.match(replyText('info', 'it', s), /^Manutenzione in corso: Lodi, fine prevista /);
});

test('a scheduled maintenance: the next one, with its window; finished or cancelled ones are not mentioned', () => {
  const s = siteStatus(
    [
      works('scheduled', at(48), at(50), ['Crema']),
      works('scheduled', at(24), at(26)),
      works('completed', at(-5), at(-4)),
      works('cancelled', at(2), at(3)),
    ],
    now,
  );
  assert.deepEqual(s, { state: 'scheduled', areas: ['Lodi'], startsAt: at(24), endsAt: at(26) });
  assert.match(replyText('info', 'en', s), /^No outage now\. Maintenance scheduled: Lodi, from .+ to .+\.$/);
});
