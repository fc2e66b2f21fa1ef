/**
 * The `schedule:` of an extract document, checked for shape and meaning and normalised for the
 * planner. The extract-spec zod schema checks the shape when a document is uploaded; this module
 * owns what a schedule means (see docs/scheduling.md), so it checks the shape again itself and
 * can be given any stored specification.
 */
import { MINUTES_PER_DAY, SCHEDULE_TIMEZONE } from './wall-clock.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** The shortest and longest frequencies, in minutes. */
export const MIN_FREQUENCY_MINUTES = 5;
export const MAX_FREQUENCY_MINUTES = 7 * MINUTES_PER_DAY;

/** One problem with a specification; `path` is dotted from the schedule (`windows.0.to`), '' for the whole. */
export interface ScheduleProblem {
  path: string;
  message: string;
}

/** A window in local Europe/London wall-clock time, opening on each of `days`. */
export interface ScheduleWindow {
  /** In week order, without repeats. */
  days: Weekday[];
  /** `HH:MM`. */
  from: string;
  /** `HH:MM`; `24:00` only in the whole-day window that stands for missing windows. */
  to: string;
  /** Minutes after the midnight that starts the window's day. */
  fromMinute: number;
  /**
   * Minutes after that same midnight: above 1440 when the window crosses midnight and ends the
   * next day (`22:00`–`02:00` is 1320–1560). Always greater than `fromMinute`.
   */
  toMinute: number;
  crossesMidnight: boolean;
}

/**
 * How often runs happen:
 * - `per-window`: no frequency given: one run in each window occurrence;
 * - `interval`: a sub-daily frequency (5 minutes up to 23 h 59 min): one run per slot of that
 *   length, slots stepping in elapsed time from the window's start;
 * - `days`: 1 to 7 whole days: one run per block of that many days, in the block's first
 *   eligible window occurrence; blocks count from Monday 1970-01-05, so P1D is each calendar
 *   day and P7D is each ISO week.
 */
export type ScheduleFrequency =
  | { kind: 'per-window' }
  | { kind: 'interval'; iso: string; minutes: number }
  | { kind: 'days'; iso: string; days: number };

/** A schedule after {@link parseSchedule}: defaults applied, windows sorted by start. */
export interface NormalisedSchedule {
  windows: ScheduleWindow[];
  /** True when the specification left windows out (one whole-day window, every day). */
  wholeDay: boolean;
  frequency: ScheduleFrequency;
  /** Runs only on school days (a calendar's term days; Monday to Friday when there is none). */
  termTimeOnly: boolean;
  /** Run as soon as possible after approval, then on the schedule; acted on by the caller. */
  asap: boolean;
  timezone: typeof SCHEDULE_TIMEZONE;
}

export type ParseScheduleResult =
  | { ok: true; schedule: NormalisedSchedule }
  | { ok: false; problems: ScheduleProblem[] };

const FIELDS = ['windows', 'frequency', 'termTimeOnly', 'asap', 'timezone'] as const;
const WINDOW_FIELDS = ['days', 'from', 'to'] as const;
const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DURATION = /^P(?=\d|T\d)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?)?$/;
const WEEK_MINUTES = 7 * MINUTES_PER_DAY;

const WHOLE_DAY: ScheduleWindow = {
  days: [...WEEKDAYS],
  from: '00:00',
  to: '24:00',
  fromMinute: 0,
  toMinute: MINUTES_PER_DAY,
  crossesMidnight: false,
};

/**
 * Checks a schedule specification (as in an extract document) and returns it normalised, or every
 * problem found, each with its path. Never throws.
 *
 * - `windows`: `{ days, from, to }` in Europe/London time; `to` before `from` crosses midnight
 *   (the window opens on the listed day and closes the next); `from` equal to `to` is refused;
 *   windows may not overlap. Left out: the whole day, every day.
 * - `frequency`: ISO 8601 duration from PT5M to P7D; over a day only whole days. Left out: one
 *   run per window occurrence. A sub-daily frequency longer than every window is refused.
 * - `termTimeOnly` (default false), `asap` (default false), `timezone` (only Europe/London).
 */
export function parseSchedule(input: unknown): ParseScheduleResult {
  const problems: ScheduleProblem[] = [];
  const report = (path: string, message: string) => problems.push({ path, message });

  if (!isRecord(input)) {
    report('', `expected an object with ${FIELDS.join(', ')}; got ${describe(input)}`);
    return { ok: false, problems };
  }
  for (const key of Object.keys(input)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      report(key, `unknown field "${key}": expected one of ${FIELDS.join(', ')}`);
    }
  }

  const windows = parseWindows(input.windows, report);
  const frequency = parseFrequency(input.frequency, report);
  const termTimeOnly = parseBoolean(input.termTimeOnly, 'termTimeOnly', report);
  const asap = parseBoolean(input.asap, 'asap', report);
  if (input.timezone !== undefined && input.timezone !== SCHEDULE_TIMEZONE) {
    report('timezone', `only ${SCHEDULE_TIMEZONE} is supported; got ${describe(input.timezone)}`);
  }

  // Checks of meaning that need more than one field, once the fields themselves are sound.
  if (windows && frequency?.kind === 'interval') {
    const longest = Math.max(...windows.map((w) => w.toMinute - w.fromMinute));
    if (frequency.minutes > longest) {
      const fits =
        windows.length > 1
          ? `any window (the longest is ${lengthOf(longest)})`
          : `a ${lengthOf(longest)} window`;
      report(
        'frequency',
        `${frequency.iso} never fits ${fits}: use P1D for once a day, or leave frequency out for once per window`,
      );
    }
  }
  if (windows && termTimeOnly && windows.every((w) => w.days.every((d) => d === 'sat' || d === 'sun'))) {
    report(
      'termTimeOnly',
      'a term-time-only schedule whose windows all open on Saturday or Sunday never runs: ' +
        'weekends are not school days (a window belongs to the day it opens)',
    );
  }

  if (problems.length > 0 || windows === undefined || frequency === undefined) return { ok: false, problems };
  return {
    ok: true,
    schedule: {
      windows,
      wholeDay: input.windows === undefined,
      frequency,
      termTimeOnly: termTimeOnly ?? false,
      asap: asap ?? false,
      timezone: SCHEDULE_TIMEZONE,
    },
  };
}

type Report = (path: string, message: string) => void;

/** The windows, sorted by start; undefined when any is unusable (its problems are reported). */
function parseWindows(value: unknown, report: Report): ScheduleWindow[] | undefined {
  if (value === undefined) return [WHOLE_DAY];
  if (!Array.isArray(value)) {
    report('windows', `expected a list of { days, from, to }; got ${describe(value)}`);
    return undefined;
  }
  if (value.length === 0) {
    report('windows', 'expected at least one window (leave windows out to allow the whole day)');
    return undefined;
  }
  const parsed: (ScheduleWindow | undefined)[] = value.map((w, i) => parseWindow(w, `windows.${i}`, report));
  const windows = parsed.filter((w): w is ScheduleWindow => w !== undefined);
  if (windows.length !== parsed.length) return undefined;

  let overlapping = false;
  for (let j = 1; j < windows.length; j++) {
    for (let i = 0; i < j; i++) {
      const overlap = firstOverlap(windows[i]!, windows[j]!);
      if (overlap) {
        overlapping = true;
        report(
          `windows.${j}`,
          `overlaps windows.${i} on ${overlap}: a run could be planned twice; merge or separate them`,
        );
      }
    }
  }
  if (overlapping) return undefined;
  return windows.sort((a, b) => a.fromMinute - b.fromMinute);
}

function parseWindow(value: unknown, path: string, report: Report): ScheduleWindow | undefined {
  if (!isRecord(value)) {
    report(path, `expected { days, from, to }; got ${describe(value)}`);
    return undefined;
  }
  let sound = true;
  const fail = (at: string, message: string) => {
    sound = false;
    report(at, message);
  };
  for (const key of Object.keys(value)) {
    if (!(WINDOW_FIELDS as readonly string[]).includes(key)) {
      fail(`${path}.${key}`, `unknown field "${key}": expected one of ${WINDOW_FIELDS.join(', ')}`);
    }
  }

  const days = new Set<Weekday>();
  if (!Array.isArray(value.days) || value.days.length === 0) {
    fail(
      `${path}.days`,
      `expected a non-empty list of days (${WEEKDAYS.join(', ')}); got ${describe(value.days)}`,
    );
  } else {
    value.days.forEach((day: unknown, i: number) => {
      if (typeof day !== 'string' || !(WEEKDAYS as readonly string[]).includes(day)) {
        fail(`${path}.days.${i}`, `unknown day ${describe(day)}: expected one of ${WEEKDAYS.join(', ')}`);
      } else if (days.has(day as Weekday)) {
        fail(`${path}.days.${i}`, `"${day}" is listed twice`);
      } else {
        days.add(day as Weekday);
      }
    });
  }

  const from = parseTime(value.from, `${path}.from`, fail);
  const to = parseTime(value.to, `${path}.to`, fail);
  if (from !== undefined && to !== undefined && from === to) {
    fail(
      `${path}.to`,
      `from and to are both ${value.to}: a window needs a length (to allow the whole day, leave windows out)`,
    );
  }
  if (!sound || from === undefined || to === undefined) return undefined;
  const crossesMidnight = to < from;
  return {
    days: WEEKDAYS.filter((d) => days.has(d)),
    from: value.from as string,
    to: value.to as string,
    fromMinute: from,
    toMinute: crossesMidnight ? to + MINUTES_PER_DAY : to,
    crossesMidnight,
  };
}

function parseTime(value: unknown, path: string, fail: Report): number | undefined {
  const m = typeof value === 'string' ? TIME.exec(value) : null;
  if (!m) {
    fail(path, `expected a time as HH:MM (24-hour, e.g. "08:30"); got ${describe(value)}`);
    return undefined;
  }
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Where two windows first overlap in the (circular) week, as `mon 10:00–12:00`, or undefined. */
function firstOverlap(a: ScheduleWindow, b: ScheduleWindow): string | undefined {
  for (const [aStart, aEnd] of weekIntervals(a)) {
    for (const [bStart, bEnd] of weekIntervals(b)) {
      const start = Math.max(aStart, bStart);
      const end = Math.min(aEnd, bEnd);
      if (start < end) {
        const day = WEEKDAYS[Math.floor(start / MINUTES_PER_DAY)]!;
        return `${day} ${clock(start % MINUTES_PER_DAY)}–${clock(end % MINUTES_PER_DAY)}`;
      }
    }
  }
  return undefined;
}

/** The minutes of the week a window covers, with Sunday night's part after midnight wrapped to Monday. */
function weekIntervals(w: ScheduleWindow): [number, number][] {
  const intervals: [number, number][] = [];
  for (const day of w.days) {
    const start = WEEKDAYS.indexOf(day) * MINUTES_PER_DAY + w.fromMinute;
    const end = WEEKDAYS.indexOf(day) * MINUTES_PER_DAY + w.toMinute;
    if (end <= WEEK_MINUTES) intervals.push([start, end]);
    else intervals.push([start, WEEK_MINUTES], [0, end - WEEK_MINUTES]);
  }
  return intervals;
}

function parseFrequency(value: unknown, report: Report): ScheduleFrequency | undefined {
  if (value === undefined) return { kind: 'per-window' };
  const m = typeof value === 'string' ? DURATION.exec(value) : null;
  if (!m) {
    report('frequency', `expected an ISO 8601 duration such as PT15M, PT1H or P1D; got ${describe(value)}`);
    return undefined;
  }
  const iso = value as string;
  const [weeks, days, hours, minutes] = [m[1], m[2], m[3], m[4]].map((n) => Number(n ?? 0)) as [
    number,
    number,
    number,
    number,
  ];
  const total = ((weeks * 7 + days) * 24 + hours) * 60 + minutes;
  if (total < MIN_FREQUENCY_MINUTES) {
    report('frequency', `${iso} is too often: the shortest frequency is PT5M`);
    return undefined;
  }
  if (total > MAX_FREQUENCY_MINUTES) {
    report('frequency', `${iso} is longer than 7 days: the longest frequency is P7D (once a week)`);
    return undefined;
  }
  if (total < MINUTES_PER_DAY) return { kind: 'interval', iso, minutes: total };
  if (total % MINUTES_PER_DAY !== 0) {
    report(
      'frequency',
      `${iso} is over a day but not whole days: use P1D … P7D, or a frequency under a day (e.g. PT12H)`,
    );
    return undefined;
  }
  return { kind: 'days', iso, days: total / MINUTES_PER_DAY };
}

function parseBoolean(value: unknown, path: string, report: Report): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  report(path, `expected true or false; got ${describe(value)}`);
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? String(value);
  return 'an object';
}

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** `1-hour`, `90-minute`, `5 h 30 min`. */
function lengthOf(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (m === 0) return `${h}-hour`;
  if (h === 0) return `${m}-minute`;
  return `${h} h ${m} min`;
}
