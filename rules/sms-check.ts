/**
 * `rules check`'s SMS warnings: each template is rendered with the longest plausible values
 * (the longest area name, dates whose day and month names are longest in each language, a
 * long duration) and measured. A text that can exceed its set's maximum parts, or that a
 * character forces into UCS-2 (70 characters a part instead of 160), is reported at its line.
 */
import { DateTime } from 'luxon';
import type { ProblemList } from './errors';
import type { CompiledRules } from './model';
import { canTransliterate, nonGsmCharacters } from './sms';
import { renderTemplate, type CompiledTemplate, type MessageVariables, type RenderedMessage } from './templates';
import { parseDuration } from './time';

/** Seven two-digit days (every weekday) of every month, at 23:59: among them are the longest names of each language. */
function candidateDates(timeZone: string): Date[] {
  const dates: Date[] = [];
  for (let month = 1; month <= 12; month++) {
    for (let day = 22; day <= 28; day++)
      dates.push(DateTime.fromObject({ year: 2025, month, day, hour: 23, minute: 59 }, { zone: timeZone }).toJSDate());
  }
  return dates;
}

export function longestVariables(compiled: CompiledRules, date: Date): MessageVariables {
  const longest = compiled.settings.sms.longest;
  const text = (name: string, fallback = '') => (longest[name] === undefined ? fallback : String(longest[name]));
  const durationText = String(longest.duration ?? '1d23h59m');
  return {
    area: text('area'),
    areas: longest.areas !== undefined ? String(longest.areas) : [text('area')],
    title: text('title'),
    severity: text('severity', 'critical'),
    sender: text('sender', compiled.settings.senderId),
    start: date,
    eta: date,
    end: date,
    previousStart: date,
    previousEnd: date,
    duration: parseDuration(durationText) ?? 172740,
    ackCode: '000000',
  };
}

/** The render of `template` that takes the most SMS parts (then the most characters) over the plausible values. */
export function worstCaseRender(compiled: CompiledRules, template: CompiledTemplate): RenderedMessage {
  const ctx = {
    language: template.language,
    timeZone: compiled.settings.timeZone,
    transliterate: compiled.settings.sms.transliterate,
  };
  let worst: RenderedMessage | undefined;
  for (const date of candidateDates(compiled.settings.timeZone)) {
    const r = renderTemplate(compiled.liquid, template, longestVariables(compiled, date), ctx);
    if (!worst || r.parts > worst.parts || (r.parts === worst.parts && r.length > worst.length)) worst = r;
  }
  return worst!;
}

export function checkMessageLengths(compiled: CompiledRules, problems: ProblemList): void {
  const transliterate = compiled.settings.sms.transliterate;
  for (const set of compiled.templateSets.values()) {
    for (const byLanguage of set.texts.values()) {
      for (const template of byLanguage.values()) {
        if (template.set !== set.name) continue; // inherited through `extends`: checked where it is written
        const forcing = nonGsmCharacters(template.source);
        const fixable = forcing.filter(canTransliterate);
        if (forcing.length && !transliterate) {
          problems.warning(
            template.at,
            `${label(template)} is sent as UCS-2 (70 characters a part, not 160) because of ${forcing.map((c) => JSON.stringify(c)).join(' ')}${fixable.length ? '; replace them, or set defaults.sms.transliterate: true' : ''}`,
          );
        } else if (transliterate && forcing.length > fixable.length) {
          problems.warning(
            template.at,
            `${label(template)} is sent as UCS-2 because ${forcing
              .filter((c) => !canTransliterate(c))
              .map((c) => JSON.stringify(c))
              .join(' ')} has no GSM-7 equivalent`,
          );
        }
        const worst = worstCaseRender(compiled, template);
        if (worst.parts > template.maxParts) {
          problems.warning(
            template.at,
            `${label(template)} can take ${worst.parts} SMS parts (at most ${template.maxParts} allowed) with the longest plausible values: ${worst.length} ${worst.encoding === 'GSM' ? 'GSM-7' : 'UCS-2'} characters, e.g. ${JSON.stringify(worst.text)}`,
          );
        }
      }
    }
  }
}

function label(t: CompiledTemplate): string {
  return `template ${t.set}.${t.kind} (${t.language})`;
}
