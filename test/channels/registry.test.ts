/** The channel registry: only configured channels are built, and the SMS channel is plugged in. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Collection } from 'mongodb';
import type { Channel } from '../../channels/channel';
import { closeChannels, createChannels } from '../../channels/index';
import type { StatusEntry, StatusPost } from '../../channels/status-feed';

const sms: Channel = { name: 'sms', maxBatch: 1000, send: async () => [] };

test('nothing configured, nothing built', () => {
  assert.deepEqual([...createChannels({}).keys()], []);
});

test('each configured channel is built under its name, SMS as given', async () => {
  const channels = createChannels(
    {
      voice: {
        authId: 'MAXXXXXXXXXXXXXXXXXX',
        authToken: 'token-123',
        baseUrl: 'http://127.0.0.1:9',
        callerId: '+390212345678',
        publicUrl: 'http://127.0.0.1:3000',
      },
      email: { host: '127.0.0.1', port: 2525, secure: false, from: 'avvisi@isp.example' },
      webhook: {},
    },
    // Collections are only stored by the constructor: stand-ins are enough here.
    { sms, statusFeed: { posts: {} as Collection<StatusPost>, entries: {} as Collection<StatusEntry> } },
  );
  assert.deepEqual([...channels.keys()].sort(), ['email', 'sms', 'status', 'voice', 'webhook']);
  assert.equal(channels.get('sms'), sms);
  for (const [name, channel] of channels) assert.equal(channel.name, name);
  await closeChannels(channels); // the SMTP pool has nothing open yet; closing must still work
});
