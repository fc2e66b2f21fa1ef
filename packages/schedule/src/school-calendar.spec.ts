import { describe, expect, it } from 'vitest';
import { calendarCovers, isSchoolDay, parseCalendar, type SchoolCalendar } from './school-calendar.js';

function calendar(input: unknown): SchoolCalendar {
  const r = parseCalendar(input);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.calendar;
}

function problemsOf(input: unknown): [string, string][] {
  const r = parseCalendar(input);
  return r.ok ? [] : r.problems.map((p) => [p.path, p.message]);
}

const YEAR = {
  terms: [
    { name: 'Summer 2026', start: '2026-04-13', end: '2026-07-22' },
    { name: 'Spring 2026', start: '2026-01-05', end: '2026-03-27' },
  ],
  closures: [
    { name: 'Early May bank holiday', start: '2026-05-04', end: '2026-05-04' },
    { name: 'Half term', start: '2026-05-25', end: '2026-05-29' },
    { name: 'INSET', start: '2026-04-13', end: '2026-04-13' },
  ],
};

describe('parseCalendar', () => {
  it('returns terms and closures sorted by start', () => {
    const c = calendar(YEAR);
    expect(c.terms.map((t) => t.name)).toEqual(['Spring 2026', 'Summer 2026']);
    expect(c.closures.map((t) => t.start)).toEqual(['2026-04-13', '2026-05-04', '2026-05-25']);
    expect(calendar({ terms: [{ start: '2026-01-05', end: '2026-03-27' }] })).toEqual({
      terms: [{ start: '2026-01-05', end: '2026-03-27' }],
      closures: [],
    });
  });

  it('reports bad dates, ends before starts and unknown fields together', () => {
    expect(
      problemsOf({
        terms: [
          { name: 'Autumn', start: '2025-09-03', end: '2025-02-30' },
          { name: 'Spring', start: '2026-03-27', end: '2026-01-05' },
          { name: '', start: '5 Jan 2026', end: '2026-03-27', kind: 'term' },
        ],
        closures: [{ start: '2026-01-05' }],
        holidays: [],
      }),
    ).toEqual([
      ['holidays', 'unknown field "holidays": expected one of terms, closures'],
      ['terms.0.end', 'expected a calendar date as YYYY-MM-DD; got "2025-02-30"'],
      ['terms.1.end', 'ends 2026-01-05, before it starts (2026-03-27)'],
      ['terms.2.kind', 'unknown field "kind": expected one of name, start, end'],
      ['terms.2.name', 'expected a non-empty name, or no name'],
      ['terms.2.start', 'expected a calendar date as YYYY-MM-DD; got "5 Jan 2026"'],
      ['closures.0.end', 'expected a calendar date as YYYY-MM-DD; got nothing'],
    ]);
  });

  it('refuses overlapping terms, overlapping closures and closures outside a term', () => {
    expect(
      problemsOf({
        terms: [
          { name: 'Spring', start: '2026-01-05', end: '2026-03-27' },
          { name: 'Summer', start: '2026-03-20', end: '2026-07-22' },
        ],
        closures: [
          { name: 'Easter', start: '2026-03-28', end: '2026-04-12' },
          { name: 'INSET', start: '2026-04-10', end: '2026-04-10' },
          { name: 'Summer holiday', start: '2026-07-20', end: '2026-08-31' },
        ],
      }),
    ).toEqual([
      [
        'terms.1',
        '"Summer" overlaps "Spring" (terms.0) from 2026-03-20 to 2026-03-27: terms may not overlap',
      ],
      [
        'closures.1',
        '"INSET" overlaps "Easter" (closures.0) from 2026-04-10 to 2026-04-10: closures may not overlap',
      ],
      [
        'closures.2',
        '"Summer holiday" 2026-07-20 … 2026-08-31 is not inside one term: days between terms are holidays already; a closure marks days a term would otherwise count',
      ],
    ]);
    expect(problemsOf({ terms: [] })).toEqual([['terms', 'expected at least one term']]);
    expect(problemsOf(null)).toHaveLength(1);
  });
});

describe('isSchoolDay', () => {
  const c = calendar(YEAR);

  it('counts weekdays inside a term and outside every closure', () => {
    expect(isSchoolDay(c, '2026-03-27')).toBe(true); // last day of spring term (Friday)
    expect(isSchoolDay(c, '2026-03-30')).toBe(false); // Easter holiday
    expect(isSchoolDay(c, '2026-04-13')).toBe(false); // INSET on the first day of term
    expect(isSchoolDay(c, '2026-04-14')).toBe(true);
    expect(isSchoolDay(c, '2026-05-04')).toBe(false); // bank holiday
    expect(isSchoolDay(c, '2026-05-27')).toBe(false); // half term
    expect(isSchoolDay(c, '2026-06-01')).toBe(true);
  });

  it('never counts a weekend, with or without a calendar', () => {
    expect(isSchoolDay(c, '2026-04-18')).toBe(false); // Saturday in term
    expect(isSchoolDay(undefined, '2026-04-18')).toBe(false);
    expect(isSchoolDay(undefined, '2026-03-30')).toBe(true); // no calendar: every weekday
  });

  it('knows the span it covers, and refuses strings that are not dates', () => {
    expect(calendarCovers(c, '2026-01-05')).toBe(true);
    expect(calendarCovers(c, '2026-04-01')).toBe(true); // a holiday between terms is covered
    expect(calendarCovers(c, '2026-07-23')).toBe(false);
    expect(() => isSchoolDay(c, '2026-13-01')).toThrow(RangeError);
  });
});
