/**
 * A filter and a projection applied in Node to documents already read (a site's roster, see
 * store/site-roster.ts), with the database's meaning. Only the shapes whose meaning is simple are
 * compiled: equalities, `$eq`/`$ne`, the four range comparisons and `$not` of those, on fields (dotted
 * paths through subdocuments), and inclusion projections of top-level fields. Anything else compiles
 * to null, and the caller asks the database instead.
 */
import type { Document } from 'mongodb';

type Test = (value: unknown) => boolean;

const COMPARISONS: Record<string, (a: number, b: number) => boolean> = {
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
};

/** A value Node compares as the database does: a string, a finite number, a boolean, a Date, or null. */
function isScalar(v: unknown): v is string | number | boolean | Date | null {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || Number.isFinite(v) || v instanceof Date;
}

function equals(a: unknown, b: string | number | boolean | Date | null): boolean {
  if (b === null) return a === null || a === undefined;
  if (b instanceof Date) return a instanceof Date && a.getTime() === b.getTime();
  return a === b;
}

/** Equality as the database means it: a field holding an array matches when one element is equal. */
function equalTest(b: string | number | boolean | Date | null): Test {
  return (a) => (Array.isArray(a) ? a.some((e) => equals(e, b)) : equals(a, b));
}

/** Ordering within one type only (the database never orders a string against a number). */
function orderTest(op: string, b: string | number | Date): Test {
  const cmp = COMPARISONS[op]!;
  const key = (v: unknown): number | string | undefined =>
    b instanceof Date
      ? v instanceof Date
        ? v.getTime()
        : undefined
      : typeof v === typeof b
        ? (v as number)
        : undefined;
  const bk = key(b)!;
  return (a) => {
    const ak = key(a);
    return ak !== undefined && cmp(ak as number, bk as number);
  };
}

/** The test of one field's condition (`{$ne: x, $gt: y}` or a plain value), or null if not simple. */
function conditionTest(cond: unknown): Test | null {
  if (isScalar(cond)) return equalTest(cond);
  if (typeof cond !== 'object' || Array.isArray(cond)) return null;
  const tests: Test[] = [];
  for (const [op, arg] of Object.entries(cond as Record<string, unknown>)) {
    if ((op === '$eq' || op === '$ne') && isScalar(arg)) {
      const eq = equalTest(arg);
      tests.push(op === '$eq' ? eq : (a) => !eq(a));
    } else if (op in COMPARISONS && isScalar(arg) && arg !== null && typeof arg !== 'boolean') {
      tests.push(orderTest(op, arg));
    } else if (op === '$not' && arg !== null && typeof arg === 'object' && !(arg instanceof Date)) {
      const inner = conditionTest(arg);
      if (!inner) return null;
      tests.push((a) => !inner(a));
    } else return null;
  }
  return (a) => tests.every((t) => t(a));
}

/** A dotted path's value, through subdocuments only (undefined where a step is missing or not a subdocument). */
function valueAt(doc: Document, path: string[]): unknown {
  let v: unknown = doc;
  for (const step of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date) return undefined;
    v = (v as Record<string, unknown>)[step];
  }
  return v;
}

/** The filter as a test on a document, or null when it uses anything beyond the simple shapes above. */
export function compileFilter(filter: Document): ((doc: Document) => boolean) | null {
  const tests: ((doc: Document) => boolean)[] = [];
  for (const [field, cond] of Object.entries(filter)) {
    if (field.startsWith('$')) return null;
    const test = conditionTest(cond);
    if (!test) return null;
    const path = field.split('.');
    tests.push((doc) => test(valueAt(doc, path)));
  }
  return (doc) => tests.every((t) => t(doc));
}

/** An inclusion projection of top-level fields as a function, or null for any other kind. */
export function compileProjection(projection: Document | undefined): ((doc: Document) => Document) | null {
  const fields = Object.entries(projection ?? {});
  if (fields.length === 0) return (doc) => doc;
  if (fields.some(([k, v]) => k.includes('.') || k.startsWith('$') || (k !== '_id' && v !== 1 && v !== true)))
    return null;
  const keep = fields.filter(([k, v]) => k !== '_id' && (v === 1 || v === true)).map(([k]) => k);
  const withId = projection!._id === undefined || projection!._id === 1 || projection!._id === true;
  // `{_id: 0}` alone excludes rather than includes: left to the database.
  if ((!withId && projection!._id !== 0 && projection!._id !== false) || (keep.length === 0 && !withId)) return null;
  return (doc) => {
    const out: Document = withId && '_id' in doc ? { _id: doc._id } : {};
    for (const k of keep) if (k in doc) out[k] = doc[k];
    return out;
  };
}
