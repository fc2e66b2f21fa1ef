import { describe, expect, it } from 'vitest';
import { type NormalisedSchedule, parseSchedule } from './parse-schedule.js';
import { type PlannedOccurrence, planNext, planOccurrences } from './plan.js';
import { parseCalendar, type SchoolCalendar } from './school-calendar.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

function schedule(input: unknown): NormalisedSchedule {
  const r = parseSchedule(input);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.schedule;
}

function calendar(input: unknown): SchoolCalendar {
  const r = parseCalendar(input);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.calendar;
}

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();
/** The local date of an instant, to check which days runs land on. */
const londonDate = (d: Date) => d.toLocaleDateString('en-CA', { timeZone: 'Europe/London' });
const clock = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'short',
});
/** `01:00 BST`: the London wall-clock time of an instant. */
const londonTime = (d: Date) => clock.format(d);

function list(
  s: NormalisedSchedule,
  from: string,
  to: string,
  seed = 'school-1:extract-1',
  cal?: SchoolCalendar,
): PlannedOccurrence[] {
  return planOccurrences(s, { from: at(from), to: at(to), seed, ...(cal ? { calendar: cal } : {}) });
}

const SEEDS = Array.from({ length: 200 }, (_, i) => `school-${i}:extract-${i % 10}`);

function expectInsideSlots(runs: PlannedOccurrence[]): void {
  for (const r of runs) {
    expect(r.dueAt.getTime()).toBeGreaterThan(r.slotStart.getTime());
    expect(r.dueAt.getTime()).toBeLessThan(r.slotEnd.getTime());
    expect(r.dueAt.getTime() % 1000).toBe(0);
  }
}

describe('planOccurrences: daylight saving time (Europe/London)', () => {
  const nightly = schedule({
    windows: [{ days: ['sat', 'sun', 'mon'], from: '01:00', to: '05:00' }],
    frequency: 'P1D',
  });
  const hourly = schedule({
    windows: [{ days: ['sat', 'sun', 'mon'], from: '01:00', to: '05:00' }],
    frequency: 'PT1H',
  });

  it('spring forward (29 Mar 2026): a 01:00–05:00 window is 01:00 GMT → 05:00 BST, 3 real hours', () => {
    for (const seed of SEEDS) {
      const runs = list(nightly, '2026-03-28T00:00Z', '2026-03-31T00:00Z', seed);
      expect(runs.map((r) => [iso(r.slotStart), iso(r.slotEnd)])).toEqual([
        ['2026-03-28T01:00:00.000Z', '2026-03-28T05:00:00.000Z'], // Saturday, GMT: 4 h
        ['2026-03-29T01:00:00.000Z', '2026-03-29T04:00:00.000Z'], // Sunday, the change: 3 h
        ['2026-03-30T00:00:00.000Z', '2026-03-30T04:00:00.000Z'], // Monday, BST: 4 h
      ]);
      expectInsideSlots(runs);
    }
  });

  it('fall back (25 Oct 2026): the same window is 01:00 BST → 05:00 GMT, 5 real hours', () => {
    const runs = list(nightly, '2026-10-24T00:00Z', '2026-10-27T00:00Z');
    expect(runs.map((r) => (r.slotEnd.getTime() - r.slotStart.getTime()) / HOUR)).toEqual([4, 5, 4]);
    expect(iso(runs[1]!.slotStart)).toBe('2026-10-25T00:00:00.000Z');
    expect(iso(runs[1]!.slotEnd)).toBe('2026-10-25T05:00:00.000Z');
  });

  it('hourly: 3 slots on the spring day, 5 on the autumn day, none repeated or skipped', () => {
    const spring = list(hourly, '2026-03-29T00:00Z', '2026-03-29T12:00Z');
    expect(spring.map((r) => iso(r.slotStart))).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T02:00:00.000Z',
      '2026-03-29T03:00:00.000Z',
    ]);
    expect(spring.map((r) => londonTime(r.slotStart))).toEqual(['02:00 BST', '03:00 BST', '04:00 BST']);
    const autumn = list(hourly, '2026-10-25T00:00Z', '2026-10-25T12:00Z');
    expect(autumn.map((r) => londonTime(r.slotStart))).toEqual([
      '01:00 BST',
      '01:00 GMT',
      '02:00 GMT',
      '03:00 GMT',
      '04:00 GMT',
    ]);
    for (const runs of [spring, autumn]) {
      expectInsideSlots(runs);
      for (const r of runs) expect(r.slotEnd.getTime() - r.slotStart.getTime()).toBe(HOUR);
      expect(new Set(runs.map((r) => r.occurrenceId)).size).toBe(runs.length);
    }
  });

  it('whole-day hourly slots tile 23 h and 25 h days back to back', () => {
    const allDay = schedule({ frequency: 'PT1H' });
    for (const [from, to, slots] of [
      ['2026-03-28T00:00Z', '2026-03-30T23:00Z', 24 + 23 + 24],
      ['2026-10-23T23:00Z', '2026-10-27T00:00Z', 24 + 25 + 24],
    ] as const) {
      const runs = list(allDay, from, to);
      expect(runs).toHaveLength(slots);
      for (let i = 1; i < runs.length; i++) expect(runs[i]!.slotStart).toEqual(runs[i - 1]!.slotEnd);
    }
  });

  it('a window wholly inside the skipped hour does not occur that day', () => {
    const s = schedule({ windows: [{ days: ['sun'], from: '01:00', to: '02:00' }] });
    const runs = list(s, '2026-03-22T00:00Z', '2026-04-06T00:00Z');
    expect(runs.map((r) => londonDate(r.dueAt))).toEqual(['2026-03-22', '2026-04-05']);
  });
});

describe('planOccurrences: windows crossing midnight', () => {
  const night = schedule({ windows: [{ days: ['fri'], from: '22:00', to: '02:00' }], frequency: 'PT1H' });

  it('open on the listed day and close the next', () => {
    const runs = list(night, '2026-06-01T00:00Z', '2026-06-08T00:00Z');
    expect(runs.map((r) => londonTime(r.slotStart))).toEqual([
      '22:00 BST',
      '23:00 BST',
      '00:00 BST',
      '01:00 BST',
    ]);
    expect(runs.map((r) => londonDate(r.slotStart))).toEqual([
      '2026-06-05',
      '2026-06-05',
      '2026-06-06',
      '2026-06-06',
    ]);
    expectInsideSlots(runs);
  });

  it('planNext after midnight finds the slot of the window that opened the evening before', () => {
    const next = planNext(night, { after: at('2026-06-05T23:10:00Z'), seed: 'school-1:extract-1' }); // 00:10 Saturday
    expect(next && iso(next.slotStart)).toMatch(/^2026-06-05T23:00|^2026-06-06T00:00/);
  });

  it('are 3 real hours into the spring-forward night and 5 into the fall-back night', () => {
    const s = schedule({ windows: [{ days: ['sat'], from: '22:00', to: '02:00' }] });
    const spring = list(s, '2026-03-28T00:00Z', '2026-03-30T00:00Z');
    expect(spring.map((r) => [iso(r.slotStart), iso(r.slotEnd)])).toEqual([
      ['2026-03-28T22:00:00.000Z', '2026-03-29T01:00:00.000Z'],
    ]);
    const autumn = list(s, '2026-10-24T00:00Z', '2026-10-26T00:00Z');
    expect(autumn.map((r) => [iso(r.slotStart), iso(r.slotEnd)])).toEqual([
      ['2026-10-24T21:00:00.000Z', '2026-10-25T02:00:00.000Z'],
    ]);
  });
});

describe('planOccurrences: frequency inside a window', () => {
  const alerts = schedule({
    windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:30', to: '14:00' }],
    frequency: 'PT15M',
    termTimeOnly: true,
  });

  it('every 15 minutes inside 08:30–14:00 gives exactly 22 runs a school day, all inside the window', () => {
    for (const seed of SEEDS) {
      for (const [day, from, to] of [
        ['2026-06-10', '2026-06-10T07:30:00Z', '2026-06-10T13:00:00Z'], // BST
        ['2026-01-14', '2026-01-14T08:30:00Z', '2026-01-14T14:00:00Z'], // GMT
      ] as const) {
        const runs = list(alerts, `${day}T00:00Z`, `${day}T23:59Z`, seed);
        expect(runs).toHaveLength(22);
        expectInsideSlots(runs);
        for (const r of runs) {
          expect(r.dueAt >= at(from) && r.dueAt < at(to)).toBe(true);
          expect(r.slotEnd.getTime() - r.slotStart.getTime()).toBe(15 * MINUTE);
        }
      }
    }
  });

  it('keeps a school at the same offset in every slot, give or take a jitter of at most 2% of the slot', () => {
    const runs = list(alerts, '2026-06-10T00:00Z', '2026-06-11T00:00Z');
    const offsets = runs.map((r) => r.dueAt.getTime() - r.slotStart.getTime());
    expect(new Set(offsets).size).toBeGreaterThan(1); // the jitter moves it a little …
    expect(Math.max(...offsets) - Math.min(...offsets)).toBeLessThanOrEqual(2 * 18_000 + 1000); // … ±18 s
  });

  it('places the last, shorter slot on the same grid (runs stay exactly one frequency apart)', () => {
    // 08:00–09:10 every 30 min: slots 08:00, 08:30 and a 10-minute 09:00 slot.
    const s = schedule({ windows: [{ days: ['wed'], from: '08:00', to: '09:10' }], frequency: 'PT30M' });
    let withThird = 0;
    for (const seed of SEEDS) {
      const runs = list(s, '2026-01-14T00:00Z', '2026-01-15T00:00Z', seed);
      expectInsideSlots(runs);
      expect(runs.length === 2 || runs.length === 3).toBe(true);
      if (runs.length === 3) {
        withThird++;
        expect(iso(runs[2]!.slotEnd)).toBe('2026-01-14T09:10:00.000Z');
      }
    }
    // A third of the seeds (offset under 10 of 30 minutes) get the third run.
    expect(withThird).toBeGreaterThan(SEEDS.length / 5);
    expect(withThird).toBeLessThan(SEEDS.length / 2);
  });

  it('without a frequency, one run per window occurrence; with P1D, at most one a day', () => {
    const windows = [
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '10:00', to: '11:00' },
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '15:00', to: '16:00' },
    ];
    const perWindow = list(schedule({ windows }), '2026-06-08T00:00Z', '2026-06-15T00:00Z');
    expect(perWindow).toHaveLength(10);
    const daily = list(schedule({ windows, frequency: 'P1D' }), '2026-06-08T00:00Z', '2026-06-15T00:00Z');
    expect(daily.map((r) => londonTime(r.slotStart))).toEqual(new Array(5).fill('10:00 BST'));
  });
});

describe('planOccurrences: term time', () => {
  const cal = calendar({
    terms: [
      { name: 'Spring', start: '2026-01-05', end: '2026-03-27' },
      { name: 'Summer', start: '2026-04-13', end: '2026-07-22' },
    ],
    closures: [
      { name: 'INSET', start: '2026-04-13', end: '2026-04-13' },
      { name: 'Early May bank holiday', start: '2026-05-04', end: '2026-05-04' },
    ],
  });
  const daily = schedule({
    windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '05:00', to: '06:30' }],
    frequency: 'P1D',
    termTimeOnly: true,
  });

  it('never runs in a holiday or inside a closure, and resumes on the first term day', () => {
    const runs = list(daily, '2026-03-23T00:00Z', '2026-04-20T00:00Z', 'school-1:extract-1', cal);
    expect(runs.map((r) => londonDate(r.dueAt))).toEqual([
      '2026-03-23',
      '2026-03-24',
      '2026-03-25',
      '2026-03-26',
      '2026-03-27',
      '2026-04-14', // 13 Apr: first day of term, but an INSET day
      '2026-04-15',
      '2026-04-16',
      '2026-04-17',
    ]);
    expect(runs.every((r) => r.calendarMissing === undefined)).toBe(true);
    const next = planNext(daily, {
      after: at('2026-03-27T12:00Z'),
      seed: 'school-1:extract-1',
      calendar: cal,
    });
    expect(next && londonDate(next.dueAt)).toBe('2026-04-14');
    const mayDays = list(daily, '2026-05-01T00:00Z', '2026-05-06T00:00Z', 'x', cal).map((r) =>
      londonDate(r.dueAt),
    );
    expect(mayDays).toEqual(['2026-05-01', '2026-05-05']);
  });

  it('weekly runs in the first school day of each ISO week that has one', () => {
    const weekly = schedule({
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '06:00', to: '07:00' }],
      frequency: 'P7D',
      termTimeOnly: true,
    });
    const runs = list(weekly, '2026-03-16T00:00Z', '2026-05-11T00:00Z', 'school-1:extract-1', cal);
    expect(runs.map((r) => londonDate(r.dueAt))).toEqual([
      '2026-03-16', // Monday
      '2026-03-23',
      // Easter holidays: no run for two weeks
      '2026-04-14', // Monday 13th is an INSET day
      '2026-04-20',
      '2026-04-27',
      '2026-05-05', // Monday 4th is a bank holiday
    ]);
    // Planned from the middle of a week whose run is done: the next week, not later this week.
    const next = planNext(weekly, {
      after: at('2026-04-22T12:00Z'),
      seed: 'school-1:extract-1',
      calendar: cal,
    });
    expect(next && londonDate(next.dueAt)).toBe('2026-04-27');
  });

  it('ignores the calendar for schedules that are not term-time only', () => {
    const allYear = schedule({ windows: [{ days: ['mon'], from: '05:00', to: '06:00' }] });
    const runs = list(allYear, '2026-03-30T00:00Z', '2026-04-14T00:00Z', 'x', cal);
    expect(runs.map((r) => londonDate(r.dueAt))).toEqual(['2026-03-30', '2026-04-06', '2026-04-13']);
  });

  it('without a calendar, or past its last term, runs Monday to Friday and says calendarMissing', () => {
    const none = list(daily, '2026-03-27T00:00Z', '2026-04-07T00:00Z');
    expect(none.map((r) => londonDate(r.dueAt))).toEqual([
      '2026-03-27',
      '2026-03-30',
      '2026-03-31',
      '2026-04-01',
      '2026-04-02',
      '2026-04-03',
      '2026-04-06',
    ]);
    expect(none.every((r) => r.calendarMissing === true)).toBe(true);
    const beyond = planNext(daily, { after: at('2026-07-22T12:00Z'), seed: 'x', calendar: cal });
    expect(beyond && londonDate(beyond.dueAt)).toBe('2026-07-23');
    expect(beyond?.calendarMissing).toBe(true);
  });

  it('returns undefined when no school day comes within a year', () => {
    const closed = calendar({
      terms: [{ start: '2026-01-05', end: '2027-12-17' }],
      closures: [{ name: 'Rebuilding', start: '2026-03-28', end: '2027-12-17' }],
    });
    expect(planNext(daily, { after: at('2026-03-27T12:00Z'), seed: 'x', calendar: closed })).toBeUndefined();
  });
});

describe('planNext: stability and spread', () => {
  const nightly = schedule({
    windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '01:00', to: '05:00' }],
    frequency: 'P1D',
  });
  const halfHourly = schedule({
    windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '16:00' }],
    frequency: 'PT30M',
  });

  it('gives the same instants and occurrence ids for the same seed, whoever asks and when', () => {
    const a = list(halfHourly, '2026-06-08T00:00Z', '2026-06-13T00:00Z', 'school-7:extract-3');
    const b = list(halfHourly, '2026-06-08T00:00Z', '2026-06-13T00:00Z', 'school-7:extract-3');
    expect(b).toEqual(a);
    expect(a).toHaveLength(5 * 16);
    // Chaining planNext from each run (as a worker does after a restart) walks the same list.
    let after = at('2026-06-08T00:00Z');
    for (const expected of a) {
      const next = planNext(halfHourly, { after, seed: 'school-7:extract-3' });
      expect(next).toEqual(expected);
      after = next!.dueAt;
    }
  });

  it('skips no slot when each run is planned from the previous deadline (slotEnd)', () => {
    for (const seed of SEEDS) {
      const expected = list(halfHourly, '2026-06-10T00:00Z', '2026-06-11T00:00Z', seed);
      const chained: string[] = [];
      let after = at('2026-06-10T00:00Z');
      for (let i = 0; i < 16; i++) {
        const next = planNext(halfHourly, { after, seed })!;
        chained.push(next.occurrenceId);
        after = next.slotEnd;
      }
      expect(chained).toEqual(expected.map((r) => r.occurrenceId));
    }
  });

  it('is strictly after `after`, with ids that carry no ":" and name the slot', () => {
    const first = planNext(nightly, { after: at('2026-06-08T00:00Z'), seed: 's' })!;
    expect(planNext(nightly, { after: new Date(first.dueAt.getTime() - 1), seed: 's' })).toEqual(first);
    const second = planNext(nightly, { after: first.dueAt, seed: 's' })!;
    expect(second.occurrenceId).not.toBe(first.occurrenceId);
    expect(first.occurrenceId).toBe('20260608T000000Z'); // 01:00 BST
    expect(second.occurrenceId).toBe('20260609T000000Z');
  });

  it('spreads different seeds evenly over the window', () => {
    const perHour = [0, 0, 0, 0];
    const fleet = Array.from({ length: 4000 }, (_, i) => `school-${i}:extract-${i % 10}`);
    for (const seed of fleet) {
      const next = planNext(nightly, { after: at('2026-06-08T00:00Z'), seed })!;
      perHour[Math.floor((next.dueAt.getTime() - next.slotStart.getTime()) / HOUR)]! += 1;
    }
    for (const count of perHour) {
      expect(count).toBeGreaterThan(900); // 1,000 each expected
      expect(count).toBeLessThan(1100);
    }
    const instants = new Set(
      fleet.map((seed) => planNext(nightly, { after: at('2026-06-08T00:00Z'), seed })!.dueAt.getTime()),
    );
    expect(instants.size).toBeGreaterThan(3300); // ≈ 3,490 expected from 14,400 seconds
  });

  it('refuses an invalid Date', () => {
    expect(() => planNext(nightly, { after: new Date('nope'), seed: 's' })).toThrow(RangeError);
  });
});
