/**
 * Typed extract parameters: which bind variables each type provides, resolving run values
 * (defaults, `today-7`, `current` academic year) into bindings, and rewriting `:name`
 * placeholders into the placeholder style of a database driver.
 *
 * Bind variables per type (the SQL refers to these, always as `:name`):
 * - date `d`: `:d` (YYYY-MM-DD)
 * - date_window `w`: `:w_from`, `:w_to` (both inclusive, YYYY-MM-DD)
 * - academic_year `y`: `:y` (`2024/25`), `:y_start` (`2024-09-01`), `:y_end` (`2025-08-31`)
 * - string, integer: `:name`; boolean `:name` as 1 or 0 (flags are 0/1 in the MIS)
 * - string_list `l`: `:l`, only as the sole element of `IN (:l)`; expanded to one placeholder per value
 */
import type { SqlDialect } from '../dialects.js';
import { lexSql } from '../sql/sql-lexer.js';
import type { ExtractParameter } from './extract-document.schema.js';

export type BindValue = string | number | readonly string[];
export type Bindings = Readonly<Record<string, BindValue>>;

export function parameterBindNames(parameter: Pick<ExtractParameter, 'name' | 'type'>): string[] {
  const n = parameter.name;
  switch (parameter.type) {
    case 'date_window':
      return [`${n}_from`, `${n}_to`];
    case 'academic_year':
      return [n, `${n}_start`, `${n}_end`];
    default:
      return [n];
  }
}

export interface ParameterProblem {
  readonly parameter: string;
  readonly message: string;
}

export type ResolvedParameters =
  | { readonly ok: true; readonly bindings: Bindings }
  | { readonly ok: false; readonly problems: readonly ParameterProblem[] };

export interface ResolveOptions {
  /** The run's date in Europe/London (YYYY-MM-DD); relative dates count from it. */
  readonly today: string;
}

/** Turns run values (or defaults) into bindings, checking types, ranges and allowed values. */
export function resolveParameters(
  parameters: readonly ExtractParameter[],
  values: Readonly<Record<string, unknown>>,
  options: ResolveOptions,
): ResolvedParameters {
  const problems: ParameterProblem[] = [];
  const bindings: Record<string, BindValue> = {};
  const declared = new Set(parameters.map((p) => p.name));
  for (const key of Object.keys(values)) {
    if (!declared.has(key)) problems.push({ parameter: key, message: 'no such parameter' });
  }
  for (const p of parameters) {
    const bad = (message: string): void => {
      problems.push({ parameter: p.name, message });
    };
    const given = values[p.name] ?? p.default;
    if (given === undefined) {
      if (p.required) bad('a value is required');
      continue;
    }
    switch (p.type) {
      case 'date': {
        const d = resolveDate(given, options.today);
        if (d) bindings[p.name] = d;
        else bad('expected a date (YYYY-MM-DD, today, today-N)');
        break;
      }
      case 'date_window': {
        const w = given as { from?: unknown; to?: unknown };
        const from = resolveDate(w?.from, options.today);
        const to = resolveDate(w?.to, options.today);
        if (!from || !to) bad('expected { from, to } dates');
        else if (from > to) bad(`from (${from}) is after to (${to})`);
        else {
          bindings[`${p.name}_from`] = from;
          bindings[`${p.name}_to`] = to;
        }
        break;
      }
      case 'academic_year': {
        const year = resolveAcademicYear(given, options.today);
        if (!year) bad('expected an academic year such as 2024/25, or current');
        else {
          const first = Number(year.slice(0, 4));
          bindings[p.name] = year;
          bindings[`${p.name}_start`] = `${first}-09-01`;
          bindings[`${p.name}_end`] = `${first + 1}-08-31`;
        }
        break;
      }
      case 'string':
        if (typeof given !== 'string') bad('expected a string');
        else if (p.allowed && !p.allowed.includes(given)) bad(`expected one of ${p.allowed.join(', ')}`);
        else bindings[p.name] = given;
        break;
      case 'string_list':
        if (!Array.isArray(given) || given.length === 0 || !given.every((x) => typeof x === 'string')) {
          bad('expected a non-empty list of strings');
        } else if (p.allowed && given.some((x) => !p.allowed?.includes(x))) {
          bad(`values must be among ${p.allowed.join(', ')}`);
        } else bindings[p.name] = [...given];
        break;
      case 'integer':
        if (typeof given !== 'number' || !Number.isInteger(given)) bad('expected an integer');
        else if (p.min !== undefined && given < p.min) bad(`must be at least ${p.min}`);
        else if (p.max !== undefined && given > p.max) bad(`must be at most ${p.max}`);
        else bindings[p.name] = given;
        break;
      case 'boolean':
        if (typeof given !== 'boolean') bad('expected true or false');
        else bindings[p.name] = given ? 1 : 0;
        break;
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, bindings };
}

function resolveDate(value: unknown, today: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^today(?:([+-])(\d{1,4}))?$/.exec(value);
  if (m) {
    const offset = m[2] ? Number(m[2]) * (m[1] === '-' ? -1 : 1) : 0;
    const d = new Date(`${today}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + offset);
    return d.toISOString().slice(0, 10);
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value ? value : undefined;
}

/** English school years run from 1 September to 31 August. */
function resolveAcademicYear(value: unknown, today: string): string | undefined {
  if (value === 'current') {
    const y = Number(today.slice(0, 4));
    const first = Number(today.slice(5, 7)) >= 9 ? y : y - 1;
    return `${first}/${String((first + 1) % 100).padStart(2, '0')}`;
  }
  if (typeof value !== 'string' || !/^\d{4}\/\d{2}$/.test(value)) return undefined;
  return (Number(value.slice(0, 4)) + 1) % 100 === Number(value.slice(5, 7)) ? value : undefined;
}

/** Placeholder styles of the drivers: `:name` (better-sqlite3), `@name` (mssql), `$1` (pg), `?` (mysql2). */
export type PlaceholderStyle = 'colon' | 'at' | 'dollar' | 'question';

export interface BoundSql {
  readonly sql: string;
  /** For `colon` and `at`: values by name (without prefix). */
  readonly named: Readonly<Record<string, string | number>>;
  /** For `dollar` and `question`: values by position. */
  readonly positional: readonly (string | number)[];
}

export class ParameterBindingError extends Error {
  readonly code = 'extract.parameter_unbound';
  constructor(message: string) {
    super(message);
    this.name = 'ParameterBindingError';
  }
}

/**
 * Rewrites the `:name` placeholders of validated SQL for a driver, expanding list values into
 * one placeholder each. Placeholders are found by the SQL lexer, so text in strings and
 * comments is never touched. Throws ParameterBindingError for a placeholder without a value.
 */
export function bindParameters(
  sql: string,
  dialect: SqlDialect,
  bindings: Bindings,
  style: PlaceholderStyle,
): BoundSql {
  const tokens = lexSql(sql, dialect).tokens.filter((t) => t.kind === 'param');
  const named: Record<string, string | number> = {};
  const positional: (string | number)[] = [];
  const numbers = new Map<string, number>();
  const placeholder = (name: string, value: string | number): string => {
    switch (style) {
      case 'colon':
      case 'at':
        named[name] = value;
        return `${style === 'colon' ? ':' : '@'}${name}`;
      case 'dollar': {
        let n = numbers.get(name);
        if (n === undefined) {
          positional.push(value);
          n = positional.length;
          numbers.set(name, n);
        }
        return `$${n}`;
      }
      case 'question':
        positional.push(value);
        return '?';
    }
  };
  let out = '';
  let last = 0;
  for (const t of tokens) {
    if (!Object.hasOwn(bindings, t.value)) throw new ParameterBindingError(`no value for :${t.value}`);
    const value = bindings[t.value] as BindValue;
    const text = Array.isArray(value)
      ? (value as readonly string[]).map((v, i) => placeholder(`${t.value}__${i + 1}`, v)).join(', ')
      : placeholder(t.value, value as string | number);
    out += sql.slice(last, t.start) + text;
    last = t.end;
  }
  return { sql: out + sql.slice(last), named, positional };
}
