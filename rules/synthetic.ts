/**
 * A made-up but plausible audience, for `rules simulate` without a database, the benchmark and
 * tests: deterministic for a given seed, so runs can be compared.
 */
import type { SubscriberFacts } from './types';
import { mulberry32 } from '../domain/prng';

/** Small, fast and good enough to spread synthetic subscribers. */
const random = mulberry32;

export interface PopulationOptions {
  siteIds: string[];
  /** The area of each site (same order); `Area <n>` when missing. */
  areas?: string[];
  seed?: number;
  /** Share paying for the SMS option. Default 1/3. */
  paidShare?: number;
  /** Share reading English. Default 1/5. */
  englishShare?: number;
  /** Share of business customers. Default 1/10. */
  businessShare?: number;
  /** Share with quiet hours of their own. Default 1/20. */
  quietHoursShare?: number;
}

export function syntheticSubscribers(count: number, options: PopulationOptions): SubscriberFacts[] {
  const rnd = random(options.seed ?? 42);
  const sites = options.siteIds.length ? options.siteIds : ['S1'];
  const subscribers: SubscriberFacts[] = [];
  for (let i = 0; i < count; i++) {
    const site = Math.floor(rnd() * sites.length);
    const business = rnd() < (options.businessShare ?? 0.1);
    subscribers.push({
      id: `SYN${String(i).padStart(7, '0')}`,
      paidSms: rnd() < (options.paidShare ?? 1 / 3),
      language: rnd() < (options.englishShare ?? 0.2) ? 'en' : 'it',
      segment: business ? 'business' : 'residential',
      siteId: sites[site]!,
      area: options.areas?.[site] ?? `Area ${site + 1}`,
      channels: rnd() < 0.3 ? ['sms', 'email'] : ['sms'],
      ...(rnd() < (options.quietHoursShare ?? 0.05) ? { quietHours: '22:00-08:00' } : {}),
    });
  }
  return subscribers;
}
