/**
 * Texts are measured as SMS: encoding and parts for every render, warnings at check time for
 * templates that can run long or fall into UCS-2, and transliteration that keeps them GSM-7.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRules, segmentSms, transliterateToGsm } from '../../rules';
import { load, TEMPLATES_FILE, writeRules } from './helpers';

const QUOTED = `templates:
  quoted:
    extends: standard
    outage:
      it: "L’assistenza dice: “tornerà presto” – grazie…"
      en: "Support says: “back soon” – thanks…"
`;

describe('segmentation and transliteration', () => {
  test('one character outside GSM-7 turns the whole text into UCS-2, which halves a part', () => {
    assert.deepEqual(segmentSms("Guasto a Colle di Val d'Elsa: è in corso."), {
      encoding: 'GSM',
      units: 1,
      length: 41,
    });
    const curly = segmentSms(`${'a'.repeat(80)}’`);
    assert.equal(curly.encoding, 'UCS-2');
    assert.equal(curly.units, 2);
  });

  test('typographic characters become their GSM-7 look-alikes; what has none is kept', () => {
    assert.deepEqual(transliterateToGsm('“È l’ora” – ok…'), {
      text: '"E\' l\'ora" - ok...',
      replaced: ['“', 'È', '’', '”', '–', '…'],
    });
    assert.deepEqual(transliterateToGsm('ciao 🙂'), { text: 'ciao 🙂', replaced: [] });
  });
});

describe('in a rule set', () => {
  test('with transliterate on, a text with curly quotes stays GSM-7 and in one part', async () => {
    const rules = await load(`defaults: { sms: { transliterate: true } }\n${QUOTED}`);
    const r = rules.render({ set: 'quoted', kind: 'outage' }, 'it', {});
    assert.equal(r.text, 'L\'assistenza dice: "tornerà presto" - grazie...');
    assert.deepEqual([r.encoding, r.parts, r.overLimit], ['GSM', 1, false]);
    assert.deepEqual(r.transliterated, ['’', '“', '”', '–', '…']);
  });

  test('with transliterate off, the same text is UCS-2, and check says which characters and where', async () => {
    const rules = await load(QUOTED);
    assert.equal(rules.render({ set: 'quoted', kind: 'outage' }, 'it', {}).encoding, 'UCS-2');
    const report = await checkRules(
      writeRules({ 'avviso.yaml': `include: templates.yaml\n${QUOTED}`, 'templates.yaml': TEMPLATES_FILE }),
    );
    assert.equal(report.ok, true);
    const it = report.warnings.find((w) => w.message.includes('quoted.outage (it)'))!;
    assert.equal(it.line, 6);
    assert.match(
      it.message,
      /sent as UCS-2 \(70 characters a part, not 160\) because of "’" "“" "”" "–" "…"; replace them, or set defaults.sms.transliterate: true/,
    );
  });

  test('check warns when a template can exceed its parts with the longest plausible values', async () => {
    const main = `include: templates.yaml
defaults:
  sms:
    longest: { area: "Barberino Tavarnelle e San Casciano in Val di Pesa" }
templates:
  long:
    extends: standard
    maxParts: 1
    outage:
      it: "Guasto a {{ area }} dalle {{ start | datetime }}, ripristino previsto per {{ eta | datetime }}. Ci scusiamo per il disagio, vi terremo aggiornati."
      en: "Outage in {{ area }}."
`;
    const report = await checkRules(writeRules({ 'avviso.yaml': main, 'templates.yaml': TEMPLATES_FILE }));
    assert.equal(report.ok, true, 'a warning, not an error');
    assert.equal(report.warnings.length, 1);
    const w = report.warnings[0]!;
    assert.equal(w.line, 10);
    assert.match(
      w.message,
      /template long.outage \(it\) can take 2 SMS parts \(at most 1 allowed\) with the longest plausible values: 1\d\d GSM-7 characters/,
    );
    assert.match(w.message, /Barberino Tavarnelle e San Casciano in Val di Pesa/);
  });

  test('a render longer than allowed is sent whole and flagged', async () => {
    const rules = await load('');
    const r = rules.render('outage', 'it', { area: 'x'.repeat(200) });
    assert.equal(r.parts, 2);
    assert.equal(r.overLimit, true);
  });
});
