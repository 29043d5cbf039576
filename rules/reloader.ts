/**
 * Holds the rules the running system uses and swaps them when the files change, like
 * Alertmanager: a new version is checked in full before it replaces the current one; an
 * invalid file leaves the current rules in place and the reason in the log. Earlier versions
 * stay available by version, so an incident keeps deciding with the rules it started with.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { formatProblem, RuleErrors, type RuleProblem } from './errors';
import { loadRuleSet, resolveRulesEntry, type RuleSet } from './ruleset';

/** The subset of a pino logger the holder writes to. */
export interface RulesLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RulesHolderOptions {
  /** A rule file, or a folder with avviso.yaml; the shipped rules when unset (AVVISO_RULES). */
  path?: string;
  /** Reload when a file in the rules' folders changes. */
  watch?: boolean;
  /** Editors write a file in several steps: wait this long after the last change. Default 250 ms. */
  debounceMs?: number;
  logger?: RulesLogger;
  /** How many versions to keep for pinned incidents (the current one is always kept). Default 50. */
  keepVersions?: number;
}

export type ReloadOutcome =
  | { status: 'updated'; version: string; previousVersion: string; warnings: RuleProblem[] }
  | { status: 'unchanged'; version: string }
  | { status: 'invalid'; version: string; errors: RuleProblem[]; warnings: RuleProblem[] };

const silent: RulesLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class RulesHolder {
  private active: RuleSet;
  private readonly versions = new Map<string, RuleSet>();
  private watchers: FSWatcher[] = [];
  private watchedDirs = '';
  private timer?: NodeJS.Timeout;
  private reloading: Promise<ReloadOutcome> | undefined;
  private readonly listeners = new Set<(outcome: ReloadOutcome) => void>();
  lastReload?: { at: Date; outcome: ReloadOutcome };

  private constructor(
    readonly entry: string,
    first: RuleSet,
    private readonly options: RulesHolderOptions,
    private readonly logger: RulesLogger,
  ) {
    this.active = first;
    this.versions.set(first.version, first);
  }

  /** Loads the rules (throws RuleErrors when they are invalid: a process must not start without rules) and starts watching if asked. */
  static async open(options: RulesHolderOptions = {}): Promise<RulesHolder> {
    const entry = await resolveRulesEntry(options.path);
    const logger = options.logger ?? silent;
    const first = await loadRuleSet(entry);
    const holder = new RulesHolder(entry, first, options, logger);
    holder.logLoaded(first, 'rules loaded');
    if (options.watch) holder.watchFiles();
    return holder;
  }

  /** The rules for new incidents. */
  current(): RuleSet {
    return this.active;
  }

  /** The rules of a given version, if this process has loaded them; for incidents pinned to it. */
  get(version: string): RuleSet | undefined {
    return this.versions.get(version);
  }

  knownVersions(): string[] {
    return [...this.versions.keys()];
  }

  onReload(listener: (outcome: ReloadOutcome) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the files again; replaces the current rules only if they are valid. Concurrent calls share one reload. */
  reload(): Promise<ReloadOutcome> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private async doReload(): Promise<ReloadOutcome> {
    const previous = this.active;
    let outcome: ReloadOutcome;
    try {
      const next = await loadRuleSet(this.entry);
      if (next.version === previous.version) {
        outcome = { status: 'unchanged', version: previous.version };
      } else {
        this.active = this.versions.get(next.version) ?? next;
        this.versions.delete(next.version);
        this.versions.set(next.version, this.active); // most recent last, so trimming drops the oldest
        this.trim();
        outcome = {
          status: 'updated',
          version: next.version,
          previousVersion: previous.version,
          warnings: next.warnings,
        };
        this.logLoaded(this.active, 'rules reloaded', { previousVersion: previous.version });
      }
    } catch (err) {
      const errors =
        err instanceof RuleErrors
          ? err.errors
          : [{ file: this.entry, line: 1, column: 1, severity: 'error' as const, message: (err as Error).message }];
      const warnings = err instanceof RuleErrors ? err.warnings : [];
      outcome = { status: 'invalid', version: previous.version, errors, warnings };
      this.logger.error(
        { version: previous.version, errors: errors.map((e) => formatProblem(e, path.dirname(this.entry))) },
        `rules not reloaded: the changed files have ${errors.length} error${errors.length === 1 ? '' : 's'}; still using version ${previous.version}`,
      );
    }
    this.lastReload = { at: new Date(), outcome };
    if (this.options.watch) this.watchFiles();
    for (const l of this.listeners) l(outcome);
    return outcome;
  }

  private logLoaded(rules: RuleSet, msg: string, extra: object = {}): void {
    this.logger.info(
      { version: rules.version, files: rules.files.map((f) => f.name), ...extra },
      `${msg}: version ${rules.version}`,
    );
    for (const w of rules.warnings)
      this.logger.warn({ version: rules.version }, formatProblem(w, path.dirname(this.entry)));
  }

  private trim(): void {
    const keep = this.options.keepVersions ?? 50;
    for (const version of this.versions.keys()) {
      if (this.versions.size <= keep) break;
      if (version !== this.active.version) this.versions.delete(version);
    }
  }

  /**
   * Watches the folders of the files (not the files: editors replace a file by renaming a new
   * one over it, which a watch on the old file would miss), plus the entry's folder.
   */
  private watchFiles(): void {
    const dirs = [...new Set([path.dirname(this.entry), ...this.active.files.map((f) => path.dirname(f.path))])].sort();
    if (dirs.join('\n') === this.watchedDirs) return;
    for (const w of this.watchers) w.close();
    this.watchedDirs = dirs.join('\n');
    this.watchers = dirs.map((dir) =>
      watch(dir, (_event, name) => {
        if (name && !/\.ya?ml$/i.test(String(name))) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? 250);
        this.timer.unref();
      }),
    );
    // Watching must not keep a process (a CLI, a test) alive on its own.
    for (const w of this.watchers) w.unref();
    for (const w of this.watchers)
      w.on('error', (err) =>
        this.logger.warn({ err }, 'watching the rule files failed; reload by hand (POST /v1/rules/reload or SIGHUP)'),
      );
  }
}
