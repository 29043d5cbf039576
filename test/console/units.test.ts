/** The console's small pure parts: escaping, Italian local times from forms, links kept inside the console. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { html, trusted } from '../../api/console/html';
import { romeLocalTime, toRomeLocalInput } from '../../api/console/components';
import { consolePath } from '../../api/console/view';

test('html escapes every value, keeps html made by html, and drops null, undefined and false', () => {
  const name = `<img src=x onerror="alert('1')">&`;
  assert.equal(
    html`<b title="${name}">${name}</b>`.value,
    '<b title="&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;">&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;</b>',
  );
  assert.equal(
    html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.value,
    '<ul><li>a&lt;</li><li>b</li></ul>',
  );
  assert.equal(html`${null}${undefined}${false}${0}${trusted('<br>')}`.value, '0<br>');
});

test('a datetime-local value is Italian time, winter and summer', () => {
  assert.equal(romeLocalTime('2026-12-04T22:00')!.toISOString(), '2026-12-04T21:00:00.000Z');
  assert.equal(romeLocalTime('2026-07-04T22:00')!.toISOString(), '2026-07-04T20:00:00.000Z');
  assert.equal(
    romeLocalTime('2026-12-04T22:00:00Z')!.toISOString(),
    '2026-12-04T22:00:00.000Z',
    'a full ISO time as given',
  );
  assert.equal(romeLocalTime('tomorrow'), undefined);
  assert.equal(romeLocalTime(''), undefined);
  assert.equal(toRomeLocalInput(new Date('2026-07-04T20:00:00Z')), '2026-07-04T22:00');
});

test('links back stay inside the console', () => {
  assert.equal(consolePath('/console/incidents/inc_1?q=2'), '/console/incidents/inc_1?q=2');
  assert.equal(consolePath('http://127.0.0.1:3000/console/now'), '/console/now');
  assert.equal(consolePath('https://evil.example/console/now'), '/console/now', 'only the path is kept');
  assert.equal(consolePath('//evil.example/x'), undefined);
  assert.equal(consolePath('javascript:alert(1)//console/'), undefined);
  assert.equal(consolePath('/v1/keys'), undefined);
});
