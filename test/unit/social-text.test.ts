/** The text of a social post: within each network's limit, cut at a word, the link last, no phone number. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINK_WEIGHT, MASTODON_LIMIT, X_LIMIT, socialText, weightOf } from '../../channels/social/text';

const LINK = 'https://avviso.example.net/status?lang=it#inc-inc_0123456789abcdef';
/** How the networks count a post: the link as 23, the rest by their rule. */
const weight = (post: string, limit = X_LIMIT) =>
  weightOf(post.slice(0, post.lastIndexOf('\n') + 1), limit) + LINK_WEIGHT;

test('a short text is posted whole, then the link on its own line', () => {
  assert.equal(
    socialText('Servizio interrotto a Lodi.  Stiamo   lavorando.', LINK, X_LIMIT, 'it'),
    `Servizio interrotto a Lodi. Stiamo lavorando.\n${LINK}`,
  );
});

test('a long text is cut after the last whole word that fits, with an ellipsis, within 280 on X and 500 on Mastodon', () => {
  const words = Array.from({ length: 120 }, (_, i) => `parola${i}`).join(' ');
  for (const limit of [X_LIMIT, MASTODON_LIMIT]) {
    const post = socialText(words, LINK, limit, 'it');
    const [body, link] = post.split('\n');
    assert.equal(link, LINK);
    assert.ok(weight(post, limit) <= limit.max, `${weight(post, limit)} <= ${limit.max}`);
    assert.ok(weight(post, limit) > limit.max - 12, 'the room is used');
    assert.match(body!, /parola\d+…$/, 'ends on a whole word');
    assert.ok(words.startsWith(body!.slice(0, -1)));
  }
});

test('X counts CJK and emoji twice: a text of them is cut at half the characters', () => {
  const post = socialText('停'.repeat(300), LINK, X_LIMIT, 'en');
  assert.ok(weight(post) <= 280);
  assert.equal(
    [...post.split('\n')[0]!].length,
    Math.floor((280 - 24 - 2) / 2) + 1,
    'the characters that fit, and the ellipsis',
  );
});

test('a phone number typed into the text is not posted', () => {
  assert.equal(
    socialText('Per info chiamate il +39 0371 123456 oppure 0039 02 1234567.', LINK, MASTODON_LIMIT, 'it').split(
      '\n',
    )[0],
    'Per info chiamate il [numero nascosto] oppure [numero nascosto].',
  );
  assert.match(socialText('Call +39 0371 123456', LINK, X_LIMIT, 'en'), /Call \[number hidden\]/);
});
