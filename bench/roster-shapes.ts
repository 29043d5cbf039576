/**
 * `node --import tsx bench/roster-shapes.ts`: what FerretDB 1.24 costs to hand back 20,000
 * subscribers of 20 sites in four shapes, to choose the shape of a per-site roster (issue 18's
 * 2 s audience bar): one document per subscriber (read per site, as today), one roster document
 * per site with the members as subdocuments, with the members as JSON strings, and with all the
 * members as one JSON string. FerretDB decodes every value it hands back, so the fewer BSON
 * values the cheaper. Prints milliseconds per shape, three runs; a FerretDB of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MongoClient, type Db } from 'mongodb';
import { freePort } from '../dev/process';
import { startFerretDb } from '../dev/services';

const SITES = 20;
const SUBSCRIBERS = 20_000;

interface Member {
  _id: string;
  phones: string[];
  email: string;
  language: string;
  segment: string;
  smsAlerts: { active: boolean; since: Date };
  optedOut: boolean;
}

/** One site's roster: its members in one of the shapes compared. */
interface Roster {
  _id: string;
  siteId: string;
  members: unknown;
}

async function fill(db: Db): Promise<void> {
  const now = new Date();
  const subscribers = Array.from({ length: SUBSCRIBERS }, (_, i) => ({
    _id: `C${String(i).padStart(7, '0')}`,
    name: `Nome Cognome ${i}`,
    phones: [`+39333${String(i).padStart(7, '0')}`],
    email: `s${i}@example.it`,
    language: 'it',
    siteId: `ap-${i % SITES}`,
    segment: 'residential',
    smsAlerts: { active: i % 2 === 0, since: now },
    optedOut: false,
    createdAt: now,
    updatedAt: now,
  }));
  await db.collection('subscribers').createIndex({ siteId: 1, _id: 1 });
  for (let i = 0; i < subscribers.length; i += 1000)
    await db.collection<Member & { siteId: string }>('subscribers').insertMany(subscribers.slice(i, i + 1000));
  for (let s = 0; s < SITES; s++) {
    const members: Member[] = subscribers
      .filter((d) => d.siteId === `ap-${s}`)
      .map(({ _id, phones, email, language, segment, smsAlerts, optedOut }) => ({
        _id,
        phones,
        email,
        language,
        segment,
        smsAlerts,
        optedOut,
      }));
    const roster = { _id: `ap-${s}`, siteId: `ap-${s}` };
    await db.collection<Roster>('subdocuments').insertOne({ ...roster, members });
    await db.collection<Roster>('strings').insertOne({ ...roster, members: members.map((m) => JSON.stringify(m)) });
    await db.collection<Roster>('oneString').insertOne({ ...roster, members: JSON.stringify(members) });
  }
}

/** Milliseconds to read every site of `collection` and count what `count` finds in each document. */
async function timed(db: Db, collection: string, count: (doc: Record<string, unknown>) => number): Promise<string> {
  const t = performance.now();
  let n = 0;
  for (let s = 0; s < SITES; s++)
    for (const doc of await db
      .collection(collection)
      .find({ siteId: `ap-${s}` })
      .sort({ _id: 1 })
      .toArray())
      n += count(doc);
  if (n !== SUBSCRIBERS) throw new Error(`${collection}: ${n} subscribers, want ${SUBSCRIBERS}`);
  return `${collection} ${(performance.now() - t).toFixed(0)} ms`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'avviso-roster-shapes-'));
  const port = await freePort();
  const ferret = await startFerretDb({ port, dir: path.join(dir, 'ferretdb'), output: 'ignore' });
  const client = await new MongoClient(`mongodb://127.0.0.1:${port}/`).connect();
  try {
    const db = client.db('shapes');
    await fill(db);
    for (let run = 1; run <= 3; run++) {
      const rows = [
        await timed(db, 'subscribers', () => 1),
        await timed(db, 'subdocuments', (d) => (d.members as Member[]).length),
        await timed(db, 'strings', (d) => (d.members as string[]).map((m) => JSON.parse(m) as Member).length),
        await timed(db, 'oneString', (d) => (JSON.parse(d.members as string) as Member[]).length),
      ];
      console.log(`run ${run}: ${rows.join('; ')}`);
    }
  } finally {
    await client.close();
    await ferret.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
