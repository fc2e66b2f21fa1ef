/**
 * School calendar arithmetic on `YYYY-MM-DD` strings (UTC, never the wall clock).
 */

export const NO_END_DATE = '2079-06-06';
/** The DfE attendance codes changed on this date (2024/25 set in force). */
export const NEW_CODES_FROM = '2024-08-19';

const DAY_MS = 86_400_000;

export function toDays(date: string): number {
  return Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / DAY_MS;
}

export function fromDays(days: number): string {
  return new Date(days * DAY_MS).toISOString().slice(0, 10);
}

export function addDays(date: string, n: number): string {
  return fromDays(toDays(date) + n);
}

/** 0 = Monday … 6 = Sunday. */
export function weekday(date: string): number {
  return (((toDays(date) + 3) % 7) + 7) % 7;
}

export function ymd(year: number, month: number, day: number): string {
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

function mondayOf(date: string): string {
  return addDays(date, -weekday(date));
}

function weekOf(date: string): [string, string] {
  const mon = mondayOf(date);
  return [mon, addDays(mon, 4)];
}

export interface AcademicYear {
  /** 0 for the first year of the dataset. */
  readonly index: number;
  /** Calendar year in which the academic year starts (2024 for 2024/25). */
  readonly startYear: number;
  /** '2024/25' */
  readonly label: string;
  /** 1 September */
  readonly start: string;
  /** 31 August */
  readonly end: string;
  /** School days in order, including the one planned closure day. */
  readonly days: readonly string[];
  readonly closureDay: string;
  /** Whole-site unexpected closure (snow), or null. */
  readonly snowDay: string | null;
  /** The codes in force: true from 2024/25. */
  readonly newCodes: boolean;
}

const DAYS_CACHE = new Map<number, readonly string[]>();

/** 190 teaching days plus one planned closure, with the usual English holidays. */
export function academicYear(index: number, startYear: number, withSnowDay: boolean): AcademicYear {
  const y = startYear;
  const days = schoolDays(y);
  const closureDay = days[100]!;
  let snowDay: string | null = null;
  if (withSnowDay) snowDay = days.find((day) => day >= ymd(y + 1, 1, 20)) ?? null;
  return {
    index,
    startYear: y,
    label: `${y}/${String((y + 1) % 100).padStart(2, '0')}`,
    start: ymd(y, 9, 1),
    end: ymd(y + 1, 8, 31),
    days,
    closureDay,
    snowDay,
    newCodes: ymd(y, 9, 1) >= NEW_CODES_FROM,
  };
}

/** The school days of the academic year starting in September of `y` (cached: it is pure). */
function schoolDays(y: number): readonly string[] {
  const cached = DAYS_CACHE.get(y);
  if (cached) return cached;
  const holidays: [string, string][] = [
    weekOf(ymd(y, 10, 28)),
    [ymd(y, 12, 21), ymd(y + 1, 1, 5)],
    weekOf(ymd(y + 1, 2, 17)),
    [mondayOf(ymd(y + 1, 4, 3)), addDays(mondayOf(ymd(y + 1, 4, 3)), 11)],
    weekOf(ymd(y + 1, 5, 29)),
  ];
  // Early May bank holiday: first Monday in May.
  let mayDay = ymd(y + 1, 5, 1);
  while (weekday(mayDay) !== 0) mayDay = addDays(mayDay, 1);
  holidays.push([mayDay, mayDay]);

  const days: string[] = [];
  let d = ymd(y, 9, 3);
  while (days.length < 191) {
    const wd = weekday(d);
    if (wd < 5 && !holidays.some(([a, b]) => d >= a && d <= b)) days.push(d);
    d = addDays(d, 1);
  }
  Object.freeze(days);
  DAYS_CACHE.set(y, days);
  return days;
}

/** The first weekday after `date` (used past the end of the generated calendar). */
export function nextWeekday(date: string): string {
  let d = addDays(date, 1);
  while (weekday(d) >= 5) d = addDays(d, 1);
  return d;
}
