/**
 * Reads rule files: YAML parsed with positions (so that every later check can say which
 * line is wrong), and `include:` followed to other files or folders, relative to the file
 * that names them. Nothing here knows what the files mean; see schema.ts and compile.ts.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node,
  type Scalar,
} from 'yaml';
import { ProblemList, type SourcePosition } from './errors';

export type PathSegment = string | number;

/** Where the rule files come from: the disk, or text handed over by the API with the disk behind it. */
export interface SourceReader {
  readFile(absPath: string): Promise<string>;
  /** The YAML files of a folder, or undefined when `absPath` is not a folder. */
  listYaml(absPath: string): Promise<string[] | undefined>;
}

export const diskReader: SourceReader = {
  readFile: (p) => readFile(p, 'utf8'),
  async listYaml(p) {
    const info = await stat(p).catch(() => undefined);
    if (!info?.isDirectory()) return undefined;
    return (await readdir(p))
      .filter((n) => /\.ya?ml$/i.test(n))
      .sort()
      .map((n) => path.join(p, n));
  },
};

/** A reader that sees `overlay` (path to text) first and the disk behind it. */
export function overlayReader(overlay: Record<string, string>, behind: SourceReader = diskReader): SourceReader {
  return {
    readFile: async (p) => overlay[p] ?? behind.readFile(p),
    listYaml: (p) => behind.listYaml(p),
  };
}

/** One parsed file. `at(path)` turns a path in its data into a line and column. */
export class SourceFile {
  readonly doc: Document.Parsed;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: true, uniqueKeys: true, merge: true });
  }

  /** The plain data of the file (`{}` for an empty file). */
  data(): unknown {
    return this.doc.contents === null ? {} : this.doc.toJS({ maxAliasCount: 1000 });
  }

  /** The position of the value at `dataPath`, or of its key with `part: 'key'`; the nearest existing parent when it is missing. */
  at(dataPath: readonly PathSegment[], part: 'key' | 'value' = 'value'): SourcePosition {
    let node: unknown = this.doc.contents;
    let keyNode: unknown;
    for (const segment of dataPath) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyMatches(p.key, segment));
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
        keyNode = undefined;
        node = node.items[segment];
      } else {
        break;
      }
    }
    const target = part === 'key' && keyNode ? keyNode : node;
    return this.position(rangeStart(target));
  }

  /** The scalar node at `dataPath`, for callers that map offsets inside a text (templates). */
  scalarAt(dataPath: readonly PathSegment[]): Scalar.Parsed | undefined {
    const node = this.doc.getIn(dataPath, true);
    return isScalar(node) ? (node as Scalar.Parsed) : undefined;
  }

  position(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }
}

function keyMatches(key: unknown, segment: PathSegment): boolean {
  return isScalar(key) ? String(key.value) === String(segment) : key === segment;
}

function rangeStart(node: unknown): number {
  const range = (node as Node | undefined)?.range;
  return range ? range[0] : 0;
}

export interface LoadedSources {
  /** The entry file first, then included files in the order they were first included. */
  files: SourceFile[];
  problems: ProblemList;
  /** Content hash of every file read: equal texts give equal versions, whatever the clock says. */
  version: string;
  /** The folder that relative names (in `version` and in messages) are relative to. */
  baseDir: string;
}

/** Reads `entry` and everything it includes. Problems (YAML syntax, missing or circular includes) are collected, not thrown. */
export async function loadSources(entry: string, reader: SourceReader = diskReader): Promise<LoadedSources> {
  const problems = new ProblemList();
  const files: SourceFile[] = [];
  const loaded = new Set<string>();
  const baseDir = path.dirname(entry);

  const visit = async (file: string, chain: string[], from?: SourcePosition): Promise<void> => {
    if (chain.includes(file)) {
      problems.error(
        from!,
        `include cycle: ${[...chain.slice(chain.indexOf(file)), file].map((f) => path.relative(baseDir, f)).join(' -> ')}`,
      );
      return;
    }
    if (loaded.has(file)) return; // included twice (a diamond): load once, or its names would clash with themselves
    let text: string;
    try {
      text = await reader.readFile(file);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      if (from) problems.error(from, `cannot include "${path.relative(baseDir, file)}": ${why}`);
      else problems.error({ file, line: 1, column: 1 }, `cannot read the rules: ${why}`);
      return;
    }
    loaded.add(file);
    const source = new SourceFile(file, text);
    files.push(source);
    for (const err of source.doc.errors) {
      const pos = err.linePos?.[0];
      problems.error({ file, line: pos?.line ?? 1, column: pos?.col ?? 1 }, `YAML: ${firstLine(err.message)}`);
    }
    if (source.doc.errors.length > 0) return;
    for (const { name, at } of includeNames(source)) {
      const target = path.resolve(path.dirname(file), name);
      const inFolder = await reader.listYaml(target);
      for (const f of inFolder ?? [target]) await visit(f, [...chain, file], at);
    }
  };

  await visit(path.resolve(entry), []);
  return { files, problems, version: contentVersion(files, baseDir), baseDir };
}

/** The strings of the file's top-level `include:` (a name or a list of names); schema.ts reports other shapes. */
function includeNames(source: SourceFile): { name: string; at: SourcePosition }[] {
  const data = source.data() as Record<string, unknown> | null;
  const include = data && typeof data === 'object' ? data.include : undefined;
  if (typeof include === 'string') return [{ name: include, at: source.at(['include']) }];
  if (Array.isArray(include)) {
    return include.flatMap((name, i) => (typeof name === 'string' ? [{ name, at: source.at(['include', i]) }] : []));
  }
  return [];
}

function contentVersion(files: SourceFile[], baseDir: string): string {
  const hash = createHash('sha256');
  const entries = files
    .map((f) => [path.relative(baseDir, f.file).split(path.sep).join('/'), f.text] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  for (const [name, text] of entries) hash.update(name).update('\0').update(text).update('\0');
  return hash.digest('hex').slice(0, 12);
}

function firstLine(message: string): string {
  // prettyErrors appends a code excerpt after the first line; the position is reported separately.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
