/**
 * RFC 3339 times (Alertmanager, Grafana, Healthchecks, CloudEvents) read by the hand-written fast
 * path give the same instant luxon gives, and what is no time at all is still refused naming the field.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import { rfc3339 } from '../../ingest/normalizers/time';
import { IngestError } from '../../ingest/errors';

describe('rfc3339', () => {
  test('the same instant as luxon, for UTC, offsets and fractions of every length', () => {
    for (const text of [
      '2026-05-04T13:02:11.4Z',
      '2026-05-04T13:02:11Z',
      '2026-05-04T13:02:11.123456789+02:00',
      '2026-05-04T00:02:11-05:30',
      '2024-02-29T23:59:59.999Z',
      '2026-12-31T23:59:59.9999Z',
      '2026-05-04T13:02:11.0005+00:00',
      '2026-01-01T00:30:00.12+01:00',
      '1999-12-31T23:59:59.5-00:00',
      '2026-05-04T13:02:11+0200',
    ])
      assert.equal(
        rfc3339(text, 'body.t')?.toISOString(),
        DateTime.fromISO(text, { setZone: true }).toJSDate().toISOString(),
        text,
      );
  });

  test("Go's zero time is no time yet", () => {
    assert.equal(rfc3339('0001-01-01T00:00:00Z', 'body.endsAt'), undefined);
  });

  test('dates and times that do not exist are refused, naming the field', () => {
    for (const text of ['2026-02-30T00:00:00Z', '2026-05-04T25:00:00Z', '2026-13-01T00:00:00Z', '2026-05-04T13:61:00Z'])
      assert.throws(
        () => rfc3339(text, 'body.alerts[0].startsAt'),
        (err: unknown) => err instanceof IngestError && err.field === 'body.alerts[0].startsAt',
        text,
      );
  });
});
