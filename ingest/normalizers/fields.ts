/**
 * Reading a payload whose shape is only promised, not checked: every accessor knows the path of
 * the value it reads, so a wrong or missing field fails with that path (`body.alerts[0].status
 * must be one of ...`). Templated tools (Zabbix, LibreNMS...) send numbers as strings or strings
 * as numbers depending on how the template was written, so scalars are read as strings.
 */
import { malformed } from '../errors';

type Json = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Fields {
  private constructor(
    readonly value: Json,
    readonly path: string,
  ) {}

  /** The payload itself, which must be an object. */
  static of(value: unknown, path = 'body'): Fields {
    if (!isObject(value)) throw malformed(path, `must be a JSON object, got ${describe(value)}`);
    return new Fields(value, path);
  }

  pathOf(key: string): string {
    return `${this.path}.${key}`;
  }

  has(key: string): boolean {
    const v = this.value[key];
    return v !== undefined && v !== null && v !== '';
  }

  raw(key: string): unknown {
    return this.value[key];
  }

  /** A non-empty scalar, as a string. */
  string(key: string): string {
    const v = this.optionalString(key);
    if (v === undefined) throw malformed(this.pathOf(key), 'is required');
    return v;
  }

  /** A scalar as a string; missing, null and "" all read as undefined. */
  optionalString(key: string): string | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v.trim() === '' ? undefined : v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw malformed(this.pathOf(key), `must be a string, got ${describe(v)}`);
  }

  /** A required value among `values`; with `ignoreCase`, `recovery` reads as `RECOVERY`. */
  oneOf<T extends string>(key: string, values: readonly T[], opts: { ignoreCase?: boolean } = {}): T {
    const v = this.string(key).trim();
    const found = values.find((x) => x === v || (opts.ignoreCase === true && x.toLowerCase() === v.toLowerCase()));
    if (found === undefined)
      throw malformed(
        this.pathOf(key),
        `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`,
      );
    return found;
  }

  object(key: string): Fields {
    const v = this.value[key];
    if (v === undefined || v === null) throw malformed(this.pathOf(key), 'is required');
    return Fields.of(v, this.pathOf(key));
  }

  optionalObject(key: string): Fields | undefined {
    const v = this.value[key];
    return v === undefined || v === null ? undefined : Fields.of(v, this.pathOf(key));
  }

  /** A non-empty array of objects. */
  objects(key: string): Fields[] {
    const v = this.value[key];
    if (v === undefined || v === null) throw malformed(this.pathOf(key), 'is required');
    if (!Array.isArray(v)) throw malformed(this.pathOf(key), `must be an array, got ${describe(v)}`);
    if (v.length === 0) throw malformed(this.pathOf(key), 'must hold at least one element');
    return v.map((item, i) => Fields.of(item, `${this.pathOf(key)}[${i}]`));
  }

  /** An object of scalars (labels, annotations) as strings; missing reads as {}. */
  stringMap(key: string): Record<string, string> {
    const v = this.value[key];
    if (v === undefined || v === null) return {};
    const map = Fields.of(v, this.pathOf(key));
    const out: Record<string, string> = {};
    for (const k of Object.keys(map.value)) {
      const s = map.optionalString(k);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
}
