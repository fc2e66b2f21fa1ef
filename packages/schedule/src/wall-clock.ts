/**
 * Europe/London wall-clock arithmetic for the planner. Local calendar dates are handled as day
 * numbers (whole days since 1970-01-01), which makes "the next day" and "the ISO week" plain
 * integer arithmetic; luxon supplies the zone's UTC offsets.
 */
import { IANAZone } from 'luxon';

/** The only zone schedules are written in. */
export const SCHEDULE_TIMEZONE = 'Europe/London';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
export const MINUTES_PER_DAY = 1440;

const zone = IANAZone.create(SCHEDULE_TIMEZONE);

/** A local calendar date as whole days since 1970-01-01 (day 0 was a Thursday). */
export type DayNumber = number;

// London changes offset on the hour (01:00 UTC under the current rules), so the offset is constant
// inside each quarter of an hour and can be cached per quarter: the planner asks for the same few
// offsets hundreds of thousands of times when a fleet is planned.
const QUARTER_MS = 15 * MINUTE_MS;
const offsetCache = new Map<number, number>();

/** The zone's UTC offset in minutes at instant `ms` (0 in winter, 60 in summer). */
export function offsetMinutesAt(ms: number): number {
  const quarter = Math.floor(ms / QUARTER_MS);
  let offset = offsetCache.get(quarter);
  if (offset === undefined) {
    if (offsetCache.size >= 100_000) offsetCache.clear();
    offset = zone.offset(quarter * QUARTER_MS);
    offsetCache.set(quarter, offset);
  }
  return offset;
}

/** The local calendar date at instant `ms`. */
export function localDayOf(ms: number): DayNumber {
  return Math.floor((ms + offsetMinutesAt(ms) * MINUTE_MS) / DAY_MS);
}

/** Monday = 0 … Sunday = 6. */
export function weekdayOf(day: DayNumber): number {
  return (((day + 3) % 7) + 7) % 7;
}

/** `YYYY-MM-DD` of a day number. */
export function formatDay(day: DayNumber): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The day number of a `YYYY-MM-DD` calendar date, or undefined when it is not a real date. */
export function parseDay(text: string): DayNumber | undefined {
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(ms)) return undefined;
  const day = ms / DAY_MS;
  return formatDay(day) === text ? day : undefined;
}

/**
 * The instant a wall-clock time means: the first instant at which the London clock shows
 * `minute` minutes past midnight of `day`, or a later time. One rule covers both DST changes:
 * - a time the clock skips (01:30 on the spring-forward day) means the moment the clock jumps
 *   (01:00 UTC, shown as 02:00 BST), so a window is cut to the part the clock really shows;
 * - a time the clock shows twice (01:30 on the fall-back day) means its first showing (BST).
 * `minute` may be 1440 (midnight at the end of the day).
 */
export function wallTimeToInstant(day: DayNumber, minute: number): number {
  // The wall time read as if it were UTC; the real instant is this minus the offset in force.
  const wall = day * DAY_MS + minute * MINUTE_MS;
  const before = offsetMinutesAt(wall - 14 * 60 * MINUTE_MS);
  const after = offsetMinutesAt(wall + 14 * 60 * MINUTE_MS);
  let first = Number.POSITIVE_INFINITY;
  for (const offset of before === after ? [before] : [before, after]) {
    const candidate = wall - offset * MINUTE_MS;
    if (offsetMinutesAt(candidate) === offset && candidate < first) first = candidate;
  }
  if (first !== Number.POSITIVE_INFINITY) return first;
  // Skipped by the clock: find the jump, the first minute whose wall time is at or after `wall`
  // (between the two readings; the local clock only moves forward across a gap).
  let lo = (wall - Math.max(before, after) * MINUTE_MS) / MINUTE_MS;
  let hi = (wall - Math.min(before, after) * MINUTE_MS) / MINUTE_MS;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const t = mid * MINUTE_MS;
    if (t + offsetMinutesAt(t) * MINUTE_MS >= wall) hi = mid;
    else lo = mid + 1;
  }
  return lo * MINUTE_MS;
}

/** `20260329T010000Z`: ISO 8601 basic format in UTC, free of ':' (BullMQ refuses it in job ids). */
export function compactUtc(ms: number): string {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}
