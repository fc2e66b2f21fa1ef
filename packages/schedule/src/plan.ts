/**
 * Placement: when a (school, extract) runs. Deterministic in (schedule, seed, calendar), so
 * re-planning after a restart gives the same instants and occurrence ids. See docs/scheduling.md.
 */
import { type NormalisedSchedule, WEEKDAYS } from './parse-schedule.js';
import { type CompiledCalendar, compile, type SchoolCalendar, schoolDay } from './school-calendar.js';
import { stableFraction } from './stable-fraction.js';
import {
  compactUtc,
  type DayNumber,
  localDayOf,
  MINUTE_MS,
  MINUTES_PER_DAY,
  wallTimeToInstant,
  weekdayOf,
} from './wall-clock.js';

/** One planned run. */
export interface PlannedOccurrence {
  /** When to start the run: strictly between slotStart and slotEnd, on a whole second. */
  dueAt: Date;
  slotStart: Date;
  /** The end of the slot: the run's deadline (a later start belongs to the next slot). */
  slotEnd: Date;
  /**
   * The slot's start in UTC, ISO 8601 basic format (`20260329T010000Z`): unique within one
   * schedule and free of ':', so `${scheduleId}.${occurrenceId}` can serve as an idempotent job id.
   */
  occurrenceId: string;
  /** Present (true) when the schedule is term-time only and no calendar covers this date. */
  calendarMissing?: boolean;
}

export interface PlanNextOptions {
  /** The result is strictly after this instant. */
  after: Date;
  /** Stable per (school, extract): `${schoolId}:${extractId}`. */
  seed: string;
  /** The school's calendar, for term-time-only schedules (from parseCalendar). */
  calendar?: SchoolCalendar;
}

export interface PlanOccurrencesOptions {
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
  seed: string;
  calendar?: SchoolCalendar;
  /** At most this many occurrences (default: all in the range). */
  limit?: number;
}

/** planNext looks this many days ahead, then gives up. */
export const PLAN_HORIZON_DAYS = 366;
/** The jitter is at most ±2% of the slot, and at most ±60 s. */
export const JITTER_SLOT_FRACTION = 0.02;
export const JITTER_MAX_MS = 60_000;

/** Monday 1970-01-05: multi-day blocks count from here, so seven-day blocks are ISO weeks. */
const EPOCH_MONDAY: DayNumber = 4;

/**
 * The next run of `schedule` strictly after `after`, or undefined when there is none in the next
 * {@link PLAN_HORIZON_DAYS} days (e.g. term-time only and no term in the calendar ahead).
 */
export function planNext(
  schedule: NormalisedSchedule,
  options: PlanNextOptions,
): PlannedOccurrence | undefined {
  const after = instant(options.after, 'after');
  const today = localDayOf(after);
  const context = contextOf(schedule, options.seed, options.calendar);
  for (const run of runs(context, today - 1, today + PLAN_HORIZON_DAYS, after)) {
    if (run.dueAt > after) return toOccurrence(run);
  }
  return undefined;
}

/** Every run with `from` ≤ dueAt < `to`, in time order. */
export function planOccurrences(
  schedule: NormalisedSchedule,
  options: PlanOccurrencesOptions,
): PlannedOccurrence[] {
  const from = instant(options.from, 'from');
  const to = instant(options.to, 'to');
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const context = contextOf(schedule, options.seed, options.calendar);
  const found: PlannedOccurrence[] = [];
  if (to <= from || limit <= 0) return found;
  for (const run of runs(context, localDayOf(from) - 1, localDayOf(to), from - 1)) {
    if (run.dueAt >= to) break;
    if (run.dueAt < from) continue;
    found.push(toOccurrence(run));
    if (found.length >= limit) break;
  }
  return found;
}

// ─── The walk ────────────────────────────────────────────────────────────────

interface Context {
  schedule: NormalisedSchedule;
  seed: string;
  fraction: number;
  calendar: CompiledCalendar | undefined;
}

interface WindowOccurrence {
  day: DayNumber;
  start: number;
  end: number;
  calendarMissing: boolean;
}

interface Run {
  dueAt: number;
  slotStart: number;
  slotEnd: number;
  calendarMissing: boolean;
}

function contextOf(
  schedule: NormalisedSchedule,
  seed: string,
  calendar: SchoolCalendar | undefined,
): Context {
  return {
    schedule,
    seed,
    fraction: stableFraction(seed),
    calendar: calendar ? compile(calendar) : undefined,
  };
}

/**
 * The runs of window occurrences opening on `firstDay` … `lastDay`, in time order. Slots ending
 * at or before `skipUntil` are passed over without being placed (they cannot hold a later run).
 */
function* runs(context: Context, firstDay: DayNumber, lastDay: DayNumber, skipUntil: number): Generator<Run> {
  const { schedule, fraction } = context;
  const frequency = schedule.frequency;
  if (frequency.kind === 'days') {
    // The block's first eligible occurrence may lie before `firstDay`: start at the block's start.
    firstDay = EPOCH_MONDAY + Math.floor((firstDay - EPOCH_MONDAY) / frequency.days) * frequency.days;
  }
  let lastBlock: number | undefined;
  for (const occurrence of windowOccurrences(context, firstDay, lastDay)) {
    const { start, end } = occurrence;
    if (frequency.kind === 'days') {
      // At most one run per block of days, in its first eligible window occurrence.
      const block = Math.floor((occurrence.day - EPOCH_MONDAY) / frequency.days);
      if (block === lastBlock) continue;
      lastBlock = block;
    }
    if (end <= skipUntil) continue;
    const step = frequency.kind === 'interval' ? frequency.minutes * MINUTE_MS : Number.POSITIVE_INFINITY;
    if (step >= end - start) {
      // One slot, the whole window.
      yield place(context, occurrence, start, end, start + fraction * (end - start));
      continue;
    }
    // Slots of `step` in elapsed time from the window's start, so a DST change inside the window
    // neither repeats nor skips one; the last may be cut short by the window's end, and then it
    // holds a run only if the stable offset falls inside it (runs stay exactly `step` apart).
    const offset = fraction * step;
    const first = Math.max(0, Math.floor((skipUntil - start) / step));
    for (let slotStart = start + first * step; slotStart + offset < end; slotStart += step) {
      yield place(context, occurrence, slotStart, Math.min(slotStart + step, end), slotStart + offset);
    }
  }
}

/** Eligible, non-empty window occurrences opening on `firstDay` … `lastDay`, in time order. */
function* windowOccurrences(
  context: Context,
  firstDay: DayNumber,
  lastDay: DayNumber,
): Generator<WindowOccurrence> {
  const { schedule, calendar } = context;
  for (let day = firstDay; day <= lastDay; day++) {
    let calendarMissing = false;
    if (schedule.termTimeOnly) {
      // Outside the calendar's span (or with none) the calendar says nothing: Monday to Friday.
      const known = calendar?.covers(day) ? calendar : undefined;
      if (!schoolDay(known, day)) continue;
      calendarMissing = known === undefined;
    }
    const weekday = WEEKDAYS[weekdayOf(day)]!;
    // Windows are sorted by start and do not overlap, so their occurrences come in time order.
    for (const window of schedule.windows) {
      if (!window.days.includes(weekday)) continue;
      const start = wallTimeToInstant(day, window.fromMinute);
      const end = wallTimeToInstant(
        day + Math.floor(window.toMinute / MINUTES_PER_DAY),
        window.toMinute % MINUTES_PER_DAY,
      );
      // A window lying wholly in the hour the clock skips in spring does not occur that day.
      if (end <= start) continue;
      yield { day, start, end, calendarMissing };
    }
  }
}

/**
 * dueAt = the stable offset `base` plus a deterministic jitter of at most ±2% of the slot and
 * ±60 s (from the seed and the slot), on a whole second, kept at least a second inside the slot.
 */
function place(
  context: Context,
  occurrence: WindowOccurrence,
  slotStart: number,
  slotEnd: number,
  base: number,
): Run {
  const amplitude = Math.min(JITTER_SLOT_FRACTION * (slotEnd - slotStart), JITTER_MAX_MS);
  const jitter = (2 * stableFraction(`${context.seed}@${slotStart}`) - 1) * amplitude;
  const second = Math.floor((base + jitter) / 1000) * 1000;
  // Strictly inside the slot, so planning from the previous slot's end (its deadline) never skips
  // a slot whose run would fall on its very first instant.
  const dueAt = Math.min(Math.max(second, slotStart + 1000), slotEnd - 1000);
  return { dueAt, slotStart, slotEnd, calendarMissing: occurrence.calendarMissing };
}

function toOccurrence(run: Run): PlannedOccurrence {
  return {
    dueAt: new Date(run.dueAt),
    slotStart: new Date(run.slotStart),
    slotEnd: new Date(run.slotEnd),
    occurrenceId: compactUtc(run.slotStart),
    ...(run.calendarMissing ? { calendarMissing: true } : {}),
  };
}

function instant(date: Date, name: string): number {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new RangeError(`${name} must be a valid Date`);
  return ms;
}
