/** The console's word after an action: a sentence per action and language, nothing for an unknown one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doneFlash } from '../../api/console/flash';

test('each action of the incident and maintenance pages has its own sentence in Italian and English', () => {
  const pages = {
    incident: ['opened', 'update', 'escalate', 'acknowledge', 'resolve', 'cancel'],
    maintenance: ['scheduled', 'reschedule', 'complete', 'cancel', 'acknowledge'],
  } as const;
  for (const [page, actions] of Object.entries(pages) as [keyof typeof pages, readonly string[]][])
    for (const lang of ['it', 'en'] as const) {
      const sentences = actions.map((a) => doneFlash(lang, page, a));
      for (const [i, s] of sentences.entries()) {
        assert.ok(s && /^[A-Z].*\.$/.test(s), `${page} ${actions[i]} (${lang}): ${s}`);
        assert.notEqual(
          s.split(/[:.]/)[0]!.trim(),
          actions[i],
          `${page} ${actions[i]} (${lang}): not the action's name`,
        );
        assert.doesNotMatch(s, /^(Done|Fatto): /, `${page} ${actions[i]} (${lang}): no longer "Done: <action>"`);
      }
      assert.equal(new Set(sentences).size, sentences.length, `${page} (${lang}): one sentence per action`);
    }
  assert.equal(doneFlash('it', 'incident', 'acknowledge'), 'Escalation presa in carico: i solleciti si fermano.');
  assert.equal(doneFlash('en', 'maintenance', 'complete'), 'Work completed: the completion notice goes out.');
  assert.notEqual(doneFlash('it', 'maintenance', 'cancel'), doneFlash('it', 'incident', 'cancel'));
  for (const unknown of ['nope', 'toString', '__proto__', undefined, 3])
    assert.equal(doneFlash('en', 'incident', unknown), undefined, String(unknown));
});
