/**
 * Named parameters: SQL says `:name`, the job gives `{ name, type, value }`, and each
 * driver gets its own syntax — `$1` (PostgreSQL, with a cast for typed values), `?`
 * (MariaDB/MySQL and SQLite, one per occurrence) or `@name` (SQL Server, typed inputs).
 *
 * A small lexer finds the placeholders, skipping everything that is not code: string
 * literals ('…', E'…' with backslashes in PostgreSQL, '…'/"…" with backslashes in MySQL
 * unless NO_BACKSLASH_ESCAPES), quoted identifiers ("…", `…`, […]), PostgreSQL
 * dollar-quoted strings ($tag$…$tag$), and comments (--, #, and /* … *\/, nested in
 * PostgreSQL and SQL Server). `::` (a cast) and `a[1:n]` (an array slice: a colon right
 * after a word character) are not placeholders. The driver's own placeholder syntax in the
 * code part (`?`, `$1`, SQLite `@x`/`$x`) is refused, so one syntax means one thing.
 */
import { MisError } from './errors.js';
import { type MisKind, PARAM_TYPES, type ParamType, type QueryParam } from './types.js';

export interface ScanOptions {
  /** MariaDB/MySQL: backslash escapes in string literals (false under NO_BACKSLASH_ESCAPES). Default true. */
  readonly backslashEscapes?: boolean;
}

export interface Placeholder {
  readonly name: string;
  /** Offset of the colon. */
  readonly start: number;
  /** Offset after the name. */
  readonly end: number;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const WORD_CHAR = /[\p{L}\p{N}_$]/u;

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && WORD_CHAR.test(ch);
}

function refuse(what: string): never {
  throw new MisError('mis.bad_parameter', `${what} is not supported: write parameters as :name`);
}

/** The `:name` placeholders of `sql` in order of appearance (literals, identifiers and comments skipped). */
export function findPlaceholders(dialect: MisKind, sql: string, options: ScanOptions = {}): Placeholder[] {
  const mysqlBackslash = options.backslashEscapes ?? true;
  const out: Placeholder[] = [];
  const n = sql.length;
  let i = 0;

  const skipQuoted = (from: number, quote: string, backslash: boolean): number => {
    let j = from + 1;
    while (j < n) {
      const c = sql[j];
      if (backslash && c === '\\') {
        j += 2;
        continue;
      }
      if (c === quote) {
        if (sql[j + 1] === quote) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return n;
  };

  const skipBlockComment = (from: number, nested: boolean): number => {
    let depth = 1;
    let j = from + 2;
    while (j < n) {
      if (sql[j] === '*' && sql[j + 1] === '/') {
        depth--;
        j += 2;
        if (depth === 0 || !nested) return j;
        continue;
      }
      if (nested && sql[j] === '/' && sql[j + 1] === '*') {
        depth++;
        j += 2;
        continue;
      }
      j++;
    }
    return n;
  };

  const skipLine = (from: number): number => {
    const nl = sql.indexOf('\n', from);
    return nl === -1 ? n : nl + 1;
  };

  while (i < n) {
    const ch = sql[i] as string;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      // MySQL needs whitespace after `--` for a comment; `1--1` is arithmetic there.
      const after = sql[i + 2];
      if (dialect !== 'mysql' || after === undefined || /\s/.test(after)) {
        i = skipLine(i);
        continue;
      }
    }
    if (ch === '#' && dialect === 'mysql') {
      i = skipLine(i);
      continue;
    }
    if (ch === '/' && next === '*') {
      i = skipBlockComment(i, dialect === 'postgres' || dialect === 'mssql');
      continue;
    }
    if (ch === "'") {
      const prev = sql[i - 1];
      const eString = dialect === 'postgres' && (prev === 'E' || prev === 'e') && !isWordChar(sql[i - 2]);
      i = skipQuoted(i, "'", (dialect === 'mysql' && mysqlBackslash) || eString);
      continue;
    }
    if (ch === '"') {
      i = skipQuoted(i, '"', dialect === 'mysql' && mysqlBackslash);
      continue;
    }
    if (ch === '`' && (dialect === 'mysql' || dialect === 'sqlite')) {
      i = skipQuoted(i, '`', false);
      continue;
    }
    if (ch === '[' && (dialect === 'mssql' || dialect === 'sqlite')) {
      i =
        dialect === 'mssql'
          ? skipQuoted(i, ']', false)
          : (() => {
              const close = sql.indexOf(']', i + 1);
              return close === -1 ? n : close + 1;
            })();
      continue;
    }
    if (ch === '$' && dialect === 'postgres' && !isWordChar(sql[i - 1])) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (m) {
        const close = sql.indexOf(m[0], i + m[0].length);
        i = close === -1 ? n : close + m[0].length;
        continue;
      }
      if (next !== undefined && /[0-9]/.test(next)) refuse('A positional placeholder ($1)');
    }
    if ((ch === '@' || ch === '$') && dialect === 'sqlite' && next !== undefined && NAME_START.test(next)) {
      refuse(`SQLite's own placeholder syntax (${ch}name)`);
    }
    if (ch === '?' && (dialect === 'mysql' || dialect === 'sqlite')) {
      refuse('A positional placeholder (?)');
    }
    if (ch === ':') {
      if (next === ':') {
        // A cast (`x::date`) or SQL Server's `type::Method`; skip the whole run of colons.
        let j = i;
        while (sql[j] === ':') j++;
        i = j;
        continue;
      }
      if (next !== undefined && NAME_START.test(next) && !isWordChar(sql[i - 1])) {
        let j = i + 2;
        while (j < n && NAME_CHAR.test(sql[j] as string)) j++;
        out.push({ name: sql.slice(i + 1, j), start: i, end: j });
        i = j;
        continue;
      }
    }
    i++;
  }
  return out;
}

/** A parameter value checked against its type, in a driver-neutral form. */
export type CanonicalValue = string | number | null;

export interface NamedValue {
  readonly name: string;
  readonly type: ParamType;
  /**
   * string → string; integer → number, or a decimal string when outside the safe range;
   * number → number; boolean → 1 or 0; date → `YYYY-MM-DD`; datetime →
   * `YYYY-MM-DD HH:MM:SS[.fff]`; null for NULL.
   */
  readonly value: CanonicalValue;
}

export interface BoundStatement {
  /** The SQL in the driver's syntax. */
  readonly sql: string;
  /** Positional values: `$n` by first appearance (PostgreSQL), `?` per occurrence (MySQL, SQLite). */
  readonly values: readonly (CanonicalValue | bigint)[];
  /** Every parameter used, by name, with its checked value (SQL Server binds these as typed inputs). */
  readonly named: readonly NamedValue[];
}

const PG_CASTS: Partial<Record<ParamType, string>> = {
  integer: '::int8',
  number: '::float8',
  date: '::date',
  datetime: '::timestamp',
};

const INT64_MAX = 9223372036854775807n;

function isValidDate(y: number, m: number, d: number): boolean {
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

function badValue(name: string, expected: string): never {
  // The value itself is left out: it may be personal data.
  throw new MisError('mis.bad_parameter', `parameter :${name} must be ${expected}`);
}

/** Checks a value against its declared type and returns its canonical form. */
export function canonicalValue(p: QueryParam): CanonicalValue {
  const { name, type, value } = p;
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'string':
      if (typeof value !== 'string') badValue(name, 'a string');
      return value;
    case 'integer': {
      if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) badValue(name, 'an integer within ±(2^53−1), or a digit string');
        return value;
      }
      let big: bigint;
      if (typeof value === 'bigint') big = value;
      else if (typeof value === 'string' && /^-?[0-9]{1,19}$/.test(value)) big = BigInt(value);
      else badValue(name, 'an integer');
      if (big > INT64_MAX || big < -INT64_MAX - 1n) badValue(name, 'a 64-bit integer');
      const asNumber = Number(big);
      return Number.isSafeInteger(asNumber) ? asNumber : big.toString();
    }
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) badValue(name, 'a finite number');
      return value;
    case 'boolean':
      if (value === true || value === 1) return 1;
      if (value === false || value === 0) return 0;
      return badValue(name, 'a boolean');
    case 'date': {
      const m = typeof value === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
      if (!m || !isValidDate(Number(m[1]), Number(m[2]), Number(m[3]))) badValue(name, 'a date YYYY-MM-DD');
      return value as string;
    }
    case 'datetime': {
      const m =
        typeof value === 'string'
          ? /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/.exec(value)
          : null;
      if (
        !m ||
        !isValidDate(Number(m[1]), Number(m[2]), Number(m[3])) ||
        Number(m[4]) > 23 ||
        Number(m[5]) > 59 ||
        Number(m[6] ?? 0) > 59
      ) {
        badValue(name, 'a date-time YYYY-MM-DD HH:MM[:SS[.ffffff]] without a time zone');
      }
      const fraction = m[7] ? `.${m[7]}` : '';
      return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6] ?? '00'}${fraction}`;
    }
    default:
      throw new MisError('mis.bad_parameter', `parameter :${name} has an unknown type`);
  }
}

/**
 * Converts `:name` SQL and typed parameters to the driver's form. Every placeholder must
 * have a parameter; parameters the SQL does not use are ignored.
 */
export function bindParameters(
  dialect: MisKind,
  sql: string,
  params: readonly QueryParam[] = [],
  options: ScanOptions = {},
): BoundStatement {
  const byName = new Map<string, QueryParam>();
  for (const p of params) {
    if (typeof p?.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.name)) {
      throw new MisError('mis.bad_parameter', 'a parameter name must be letters, digits and _');
    }
    if (!(PARAM_TYPES as readonly string[]).includes(p.type)) {
      throw new MisError('mis.bad_parameter', `parameter :${p.name} has an unknown type`);
    }
    if (byName.has(p.name)) throw new MisError('mis.bad_parameter', `parameter :${p.name} is given twice`);
    byName.set(p.name, p);
  }
  const placeholders = findPlaceholders(dialect, sql, options);
  const named = new Map<string, NamedValue>();
  for (const ph of placeholders) {
    if (named.has(ph.name)) continue;
    const p = byName.get(ph.name);
    if (!p) throw new MisError('mis.bad_parameter', `no value for parameter :${ph.name}`);
    named.set(ph.name, { name: p.name, type: p.type, value: canonicalValue(p) });
  }
  const order = [...named.keys()];
  const parts: string[] = [];
  const values: (CanonicalValue | bigint)[] = [];
  let last = 0;
  for (const ph of placeholders) {
    parts.push(sql.slice(last, ph.start));
    const nv = named.get(ph.name) as NamedValue;
    switch (dialect) {
      case 'postgres':
        parts.push(`$${order.indexOf(ph.name) + 1}${PG_CASTS[nv.type] ?? ''}`);
        break;
      case 'mssql':
        parts.push(`@${ph.name}`);
        break;
      case 'sqlite':
        parts.push('?');
        // A big integer must be bound as an integer, not as text.
        values.push(nv.type === 'integer' && typeof nv.value === 'string' ? BigInt(nv.value) : nv.value);
        break;
      default:
        parts.push('?');
        values.push(nv.value);
    }
    last = ph.end;
  }
  parts.push(sql.slice(last));
  if (dialect === 'postgres') for (const name of order) values.push((named.get(name) as NamedValue).value);
  return { sql: parts.join(''), values, named: [...named.values()] };
}
