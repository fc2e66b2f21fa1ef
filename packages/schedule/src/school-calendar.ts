/**
 * A school's calendar: its terms, and the closures inside them (INSET days, bank holidays, a
 * half-term when the school records a term as one block). Term-time-only schedules run on school
 * days only: a weekday inside a term and outside every closure.
 */
import type { ScheduleProblem } from './parse-schedule.js';
import { type DayNumber, formatDay, parseDay, weekdayOf } from './wall-clock.js';

/** Consecutive local dates, both ends included, as `YYYY-MM-DD`. */
export interface CalendarPeriod {
  name?: string;
  start: string;
  end: string;
}

/** As {@link parseCalendar} returns it: terms and closures sorted by start, none overlapping. */
export interface SchoolCalendar {
  terms: CalendarPeriod[];
  /** Days inside terms when the school is closed. */
  closures: CalendarPeriod[];
}

export type ParseCalendarResult =
  | { ok: true; calendar: SchoolCalendar }
  | { ok: false; problems: ScheduleProblem[] };

const FIELDS = ['terms', 'closures'] as const;
const PERIOD_FIELDS = ['name', 'start', 'end'] as const;

/**
 * Checks a calendar `{ terms: [{ name?, start, end }], closures?: [{ name?, start, end }] }` and
 * returns it sorted, or every problem found (bad dates, an end before its start, overlapping
 * terms or closures, a closure outside the terms). Never throws.
 */
export function parseCalendar(input: unknown): ParseCalendarResult {
  const problems: ScheduleProblem[] = [];
  const report = (path: string, message: string) => problems.push({ path, message });
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    report('', 'expected an object { terms: [{ name?, start, end }], closures?: [{ name?, start, end }] }');
    return { ok: false, problems };
  }
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      report(key, `unknown field "${key}": expected one of ${FIELDS.join(', ')}`);
    }
  }
  const terms = parsePeriods(record.terms, 'terms', true, report);
  const closures = parsePeriods(record.closures ?? [], 'closures', false, report);

  if (terms) reportOverlaps(terms, 'terms', report);
  if (closures) reportOverlaps(closures, 'closures', report);
  if (terms && closures) {
    for (const c of closures) {
      const inside = terms.some((t) => t.start <= c.start && c.end <= t.end);
      if (!inside) {
        report(
          c.path,
          `${label(c)} ${formatDay(c.start)} … ${formatDay(c.end)} is not inside one term: ` +
            'days between terms are holidays already; a closure marks days a term would otherwise count',
        );
      }
    }
  }
  if (problems.length > 0 || !terms || !closures) return { ok: false, problems };
  return { ok: true, calendar: { terms: terms.map(toPeriod), closures: closures.map(toPeriod) } };
}

/**
 * True when `localDate` (`YYYY-MM-DD`, Europe/London) is a school day: Monday to Friday, and,
 * with a calendar, inside a term and outside every closure. Without a calendar every weekday
 * counts. Throws a RangeError for a string that is not a calendar date.
 */
export function isSchoolDay(calendar: SchoolCalendar | undefined, localDate: string): boolean {
  const day = parseDay(localDate);
  if (day === undefined) throw new RangeError(`not a calendar date (YYYY-MM-DD): ${localDate}`);
  return schoolDay(calendar ? compile(calendar) : undefined, day);
}

/**
 * True when `localDate` lies between the first day of the calendar's first term and the last day
 * of its last term. Outside that span the calendar says nothing, and the planner treats the date
 * as having no calendar (Monday to Friday, `calendarMissing: true`).
 */
export function calendarCovers(calendar: SchoolCalendar, localDate: string): boolean {
  const day = parseDay(localDate);
  if (day === undefined) throw new RangeError(`not a calendar date (YYYY-MM-DD): ${localDate}`);
  return compile(calendar).covers(day);
}

// ─── For the planner: day numbers, compiled once per calendar object ─────────

export interface CompiledCalendar {
  covers(day: DayNumber): boolean;
  inTermOpen(day: DayNumber): boolean;
}

const compiled = new WeakMap<SchoolCalendar, CompiledCalendar>();

export function compile(calendar: SchoolCalendar): CompiledCalendar {
  let c = compiled.get(calendar);
  if (!c) {
    const days = (p: CalendarPeriod): [DayNumber, DayNumber] => {
      const start = parseDay(p.start);
      const end = parseDay(p.end);
      if (start === undefined || end === undefined) {
        throw new RangeError(`calendar period with a bad date: ${p.start} … ${p.end} (use parseCalendar)`);
      }
      return [start, end];
    };
    const terms = calendar.terms.map(days);
    const closures = calendar.closures.map(days);
    const first = Math.min(...terms.map((t) => t[0]));
    const last = Math.max(...terms.map((t) => t[1]));
    const within = (list: [DayNumber, DayNumber][], day: DayNumber) =>
      list.some(([start, end]) => start <= day && day <= end);
    c = {
      covers: (day) => first <= day && day <= last,
      inTermOpen: (day) => within(terms, day) && !within(closures, day),
    };
    compiled.set(calendar, c);
  }
  return c;
}

/** Monday to Friday and, with a calendar, a term day outside the closures. */
export function schoolDay(calendar: CompiledCalendar | undefined, day: DayNumber): boolean {
  if (weekdayOf(day) >= 5) return false;
  return calendar ? calendar.inTermOpen(day) : true;
}

// ─── Parsing helpers ─────────────────────────────────────────────────────────

interface ParsedPeriod {
  path: string;
  name?: string;
  start: DayNumber;
  end: DayNumber;
}

type Report = (path: string, message: string) => void;

function parsePeriods(
  value: unknown,
  path: string,
  required: boolean,
  report: Report,
): ParsedPeriod[] | undefined {
  if (!Array.isArray(value)) {
    report(
      path,
      `expected a list of { name?, start, end }${value === undefined ? '' : '; got something else'}`,
    );
    return undefined;
  }
  if (required && value.length === 0) {
    report(path, 'expected at least one term');
    return undefined;
  }
  const periods: ParsedPeriod[] = [];
  let sound = true;
  value.forEach((item: unknown, i: number) => {
    const at = `${path}.${i}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      report(at, 'expected { name?, start, end }');
      sound = false;
      return;
    }
    const p = item as Record<string, unknown>;
    let ok = true;
    for (const key of Object.keys(p)) {
      if (!(PERIOD_FIELDS as readonly string[]).includes(key)) {
        report(`${at}.${key}`, `unknown field "${key}": expected one of ${PERIOD_FIELDS.join(', ')}`);
        ok = false;
      }
    }
    if (p.name !== undefined && (typeof p.name !== 'string' || p.name.trim() === '')) {
      report(`${at}.name`, 'expected a non-empty name, or no name');
      ok = false;
    }
    const start = date(p.start, `${at}.start`, report);
    const end = date(p.end, `${at}.end`, report);
    if (start !== undefined && end !== undefined && end < start) {
      report(`${at}.end`, `ends ${p.end}, before it starts (${p.start})`);
      ok = false;
    }
    if (!ok || start === undefined || end === undefined) {
      sound = false;
      return;
    }
    periods.push({ path: at, ...(typeof p.name === 'string' ? { name: p.name } : {}), start, end });
  });
  return sound ? periods.sort((a, b) => a.start - b.start) : undefined;
}

function date(value: unknown, path: string, report: Report): DayNumber | undefined {
  const day = typeof value === 'string' ? parseDay(value) : undefined;
  if (day === undefined) {
    report(path, `expected a calendar date as YYYY-MM-DD; got ${JSON.stringify(value) ?? 'nothing'}`);
  }
  return day;
}

/** Reports each period that overlaps the one before it (the list is sorted by start). */
function reportOverlaps(sorted: ParsedPeriod[], what: string, report: Report): void {
  let latest: ParsedPeriod | undefined;
  for (const p of sorted) {
    if (latest && p.start <= latest.end) {
      report(
        p.path,
        `${label(p)} overlaps ${label(latest)} (${latest.path}) from ${formatDay(p.start)} to ` +
          `${formatDay(Math.min(p.end, latest.end))}: ${what} may not overlap`,
      );
    }
    if (!latest || p.end > latest.end) latest = p;
  }
}

function label(p: ParsedPeriod): string {
  return p.name ? `"${p.name}"` : p.path;
}

function toPeriod(p: ParsedPeriod): CalendarPeriod {
  return {
    ...(p.name !== undefined ? { name: p.name } : {}),
    start: formatDay(p.start),
    end: formatDay(p.end),
  };
}
