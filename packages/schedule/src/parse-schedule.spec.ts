import { describe, expect, it } from 'vitest';
import { parseSchedule } from './parse-schedule.js';

function problemsOf(input: unknown): [string, string][] {
  const r = parseSchedule(input);
  return r.ok ? [] : r.problems.map((p) => [p.path, p.message]);
}

describe('parseSchedule: valid specifications', () => {
  it('normalises a library schedule', () => {
    const r = parseSchedule({
      windows: [{ days: ['fri', 'mon', 'tue', 'wed', 'thu'], from: '08:30', to: '14:00' }],
      frequency: 'PT15M',
      termTimeOnly: true,
      asap: true,
      timezone: 'Europe/London',
    });
    expect(r).toEqual({
      ok: true,
      schedule: {
        windows: [
          {
            days: ['mon', 'tue', 'wed', 'thu', 'fri'],
            from: '08:30',
            to: '14:00',
            fromMinute: 510,
            toMinute: 840,
            crossesMidnight: false,
          },
        ],
        wholeDay: false,
        frequency: { kind: 'interval', iso: 'PT15M', minutes: 15 },
        termTimeOnly: true,
        asap: true,
        timezone: 'Europe/London',
      },
    });
  });

  it('defaults to the whole day, every day, once per window occurrence, all year', () => {
    const r = parseSchedule({});
    expect(r.ok && r.schedule).toEqual({
      windows: [
        {
          days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
          from: '00:00',
          to: '24:00',
          fromMinute: 0,
          toMinute: 1440,
          crossesMidnight: false,
        },
      ],
      wholeDay: true,
      frequency: { kind: 'per-window' },
      termTimeOnly: false,
      asap: false,
      timezone: 'Europe/London',
    });
  });

  it('lets a window cross midnight: it opens on the listed day and closes the next', () => {
    const r = parseSchedule({ windows: [{ days: ['sat'], from: '22:00', to: '02:00' }], frequency: 'PT1H' });
    expect(r.ok && r.schedule.windows[0]).toMatchObject({
      fromMinute: 1320,
      toMinute: 1560,
      crossesMidnight: true,
    });
  });

  it('sorts windows by start and reads whole-day frequencies as blocks of days', () => {
    const r = parseSchedule({
      windows: [
        { days: ['mon'], from: '15:00', to: '16:00' },
        { days: ['mon'], from: '10:00', to: '11:00' },
      ],
      frequency: 'P1W',
    });
    expect(r.ok && r.schedule.windows.map((w) => w.from)).toEqual(['10:00', '15:00']);
    expect(r.ok && r.schedule.frequency).toEqual({ kind: 'days', iso: 'P1W', days: 7 });
    const daily = parseSchedule({ frequency: 'PT24H' });
    expect(daily.ok && daily.schedule.frequency).toEqual({ kind: 'days', iso: 'PT24H', days: 1 });
    const short = parseSchedule({ frequency: 'PT5M' });
    expect(short.ok && short.schedule.frequency).toEqual({ kind: 'interval', iso: 'PT5M', minutes: 5 });
  });

  it('accepts windows that touch without overlapping, also across midnight and Sunday night', () => {
    expect(
      problemsOf({
        windows: [
          { days: ['sun'], from: '22:00', to: '02:00' },
          { days: ['mon'], from: '02:00', to: '04:00' },
          { days: ['mon'], from: '04:00', to: '05:00' },
        ],
      }),
    ).toEqual([]);
  });
});

describe('parseSchedule: every problem at once, with its path and a reason', () => {
  it('refuses a window whose from equals its to', () => {
    expect(problemsOf({ windows: [{ days: ['mon'], from: '08:00', to: '08:00' }] })).toEqual([
      [
        'windows.0.to',
        'from and to are both 08:00: a window needs a length (to allow the whole day, leave windows out)',
      ],
    ]);
  });

  it('refuses a sub-daily frequency longer than every window', () => {
    expect(
      problemsOf({ windows: [{ days: ['mon'], from: '01:00', to: '02:00' }], frequency: 'PT6H' }),
    ).toEqual([
      [
        'frequency',
        'PT6H never fits a 1-hour window: use P1D for once a day, or leave frequency out for once per window',
      ],
    ]);
    expect(
      problemsOf({
        windows: [
          { days: ['mon'], from: '01:00', to: '02:00' },
          { days: ['tue'], from: '01:00', to: '03:30' },
        ],
        frequency: 'PT3H',
      }),
    ).toEqual([
      [
        'frequency',
        'PT3H never fits any window (the longest is 2 h 30 min): use P1D for once a day, or leave frequency out for once per window',
      ],
    ]);
    // Equal to the window: one run per window, accepted.
    expect(
      problemsOf({ windows: [{ days: ['mon'], from: '01:00', to: '02:00' }], frequency: 'PT1H' }),
    ).toEqual([]);
  });

  it('bounds the frequency: at least 5 minutes, at most 7 days, whole days above a day', () => {
    expect(problemsOf({ frequency: 'PT4M' })).toEqual([
      ['frequency', 'PT4M is too often: the shortest frequency is PT5M'],
    ]);
    expect(problemsOf({ frequency: 'P8D' })).toEqual([
      ['frequency', 'P8D is longer than 7 days: the longest frequency is P7D (once a week)'],
    ]);
    expect(problemsOf({ frequency: 'P2W' })).toHaveLength(1);
    expect(problemsOf({ frequency: 'PT36H' })).toEqual([
      [
        'frequency',
        'PT36H is over a day but not whole days: use P1D … P7D, or a frequency under a day (e.g. PT12H)',
      ],
    ]);
    expect(problemsOf({ frequency: 'every 15 minutes' })).toEqual([
      ['frequency', 'expected an ISO 8601 duration such as PT15M, PT1H or P1D; got "every 15 minutes"'],
    ]);
    expect(problemsOf({ frequency: 'PT15S' })).toHaveLength(1);
  });

  it('refuses overlapping windows, naming where they meet', () => {
    expect(
      problemsOf({
        windows: [
          { days: ['sun'], from: '22:00', to: '02:00' },
          { days: ['mon', 'tue'], from: '01:00', to: '03:00' },
        ],
      }),
    ).toEqual([
      [
        'windows.1',
        'overlaps windows.0 on mon 01:00–02:00: a run could be planned twice; merge or separate them',
      ],
    ]);
  });

  it('refuses a term-time-only schedule that can only open at weekends', () => {
    expect(
      problemsOf({ windows: [{ days: ['sat', 'sun'], from: '02:00', to: '06:00' }], termTimeOnly: true }),
    ).toEqual([
      [
        'termTimeOnly',
        'a term-time-only schedule whose windows all open on Saturday or Sunday never runs: weekends are not school days (a window belongs to the day it opens)',
      ],
    ]);
  });

  it('reports shape problems of every field together', () => {
    expect(
      problemsOf({
        windows: [{ days: ['mon', 'mon', 'funday'], from: '8:30', to: '14:00', every: 'day' }, 'weekdays'],
        frequency: 15,
        termTimeOnly: 'yes',
        asap: null,
        timezone: 'UTC',
        sometimes: true,
      }),
    ).toEqual([
      [
        'sometimes',
        'unknown field "sometimes": expected one of windows, frequency, termTimeOnly, asap, timezone',
      ],
      ['windows.0.every', 'unknown field "every": expected one of days, from, to'],
      ['windows.0.days.1', '"mon" is listed twice'],
      ['windows.0.days.2', 'unknown day "funday": expected one of mon, tue, wed, thu, fri, sat, sun'],
      ['windows.0.from', 'expected a time as HH:MM (24-hour, e.g. "08:30"); got "8:30"'],
      ['windows.1', 'expected { days, from, to }; got "weekdays"'],
      ['frequency', 'expected an ISO 8601 duration such as PT15M, PT1H or P1D; got 15'],
      ['termTimeOnly', 'expected true or false; got "yes"'],
      ['asap', 'expected true or false; got null'],
      ['timezone', 'only Europe/London is supported; got "UTC"'],
    ]);
  });

  it('refuses empty lists and non-objects without throwing', () => {
    expect(problemsOf({ windows: [] })).toEqual([
      ['windows', 'expected at least one window (leave windows out to allow the whole day)'],
    ]);
    expect(problemsOf({ windows: [{ days: [], from: '01:00', to: '02:00' }] })).toEqual([
      ['windows.0.days', 'expected a non-empty list of days (mon, tue, wed, thu, fri, sat, sun); got a list'],
    ]);
    for (const input of [undefined, null, 'daily', [], 3]) {
      expect(problemsOf(input)).toHaveLength(1);
    }
  });
});
