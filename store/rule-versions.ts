/**
 * Every rule-set version an incident was opened with, kept with its files, so that a worker can
 * rebuild exactly those rules long after the files changed (an incident keeps its version; a
 * reload applies to new incidents only).
 */
import type { Store } from './db';
import { loadRuleSetFromFiles, type RuleSet, type RulesHolder } from '../rules';

export interface RuleVersionDoc {
  _id: string; // the version (a hash of the files)
  files: { path: string; text: string }[];
  savedAt: Date;
}

/** Saves a version once; saving it again changes nothing. */
export async function saveRuleVersion(store: Store, rules: RuleSet): Promise<void> {
  await store.ruleVersions
    .insertOne({
      _id: rules.version,
      files: rules.files.map((f) => ({ path: f.path, text: f.text })),
      savedAt: new Date(),
    })
    .catch((err: { code?: number }) => {
      if (err.code !== 11000) throw err;
    });
}

/** Finds the rules of a version: in memory when this process loaded them, else from their saved files. */
export function rulesResolver(store: Store, holder: RulesHolder) {
  const rebuilt = new Map<string, Promise<RuleSet>>();
  return async (version?: string): Promise<RuleSet> => {
    if (!version) return holder.current();
    const known = holder.get(version);
    if (known) return known;
    let pending = rebuilt.get(version);
    if (!pending) {
      pending = (async () => {
        const doc = await store.ruleVersions.findOne({ _id: version });
        if (!doc) throw new Error(`rules version ${version} is neither loaded nor saved`);
        return loadRuleSetFromFiles(doc.files);
      })();
      rebuilt.set(version, pending);
      pending.catch(() => rebuilt.delete(version));
    }
    return pending;
  };
}

export type RulesResolver = ReturnType<typeof rulesResolver>;
