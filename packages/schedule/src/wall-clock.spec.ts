import { describe, expect, it } from 'vitest';
import { compactUtc, formatDay, localDayOf, parseDay, wallTimeToInstant, weekdayOf } from './wall-clock.js';

const day = (iso: string) => parseDay(iso)!;
const utc = (ms: number) => new Date(ms).toISOString();

describe('wallTimeToInstant (Europe/London)', () => {
  it('reads winter times as GMT and summer times as BST', () => {
    expect(utc(wallTimeToInstant(day('2026-01-15'), 8 * 60 + 30))).toBe('2026-01-15T08:30:00.000Z');
    expect(utc(wallTimeToInstant(day('2026-06-15'), 8 * 60 + 30))).toBe('2026-06-15T07:30:00.000Z');
  });

  it('maps a time the clock skips (spring forward, 29 Mar 2026) to the moment the clock jumps', () => {
    const spring = day('2026-03-29');
    expect(utc(wallTimeToInstant(spring, 60))).toBe('2026-03-29T01:00:00.000Z'); // 01:00 never shown
    expect(utc(wallTimeToInstant(spring, 90))).toBe('2026-03-29T01:00:00.000Z'); // 01:30 never shown
    expect(utc(wallTimeToInstant(spring, 120))).toBe('2026-03-29T01:00:00.000Z'); // 02:00 BST
    expect(utc(wallTimeToInstant(spring, 59))).toBe('2026-03-29T00:59:00.000Z');
    expect(utc(wallTimeToInstant(spring, 300))).toBe('2026-03-29T04:00:00.000Z'); // 05:00 BST
  });

  it('maps a time the clock shows twice (fall back, 25 Oct 2026) to its first showing, in BST', () => {
    const autumn = day('2026-10-25');
    expect(utc(wallTimeToInstant(autumn, 60))).toBe('2026-10-25T00:00:00.000Z'); // 01:00 BST
    expect(utc(wallTimeToInstant(autumn, 90))).toBe('2026-10-25T00:30:00.000Z'); // 01:30 BST
    expect(utc(wallTimeToInstant(autumn, 120))).toBe('2026-10-25T02:00:00.000Z'); // 02:00 GMT
    expect(utc(wallTimeToInstant(autumn, 300))).toBe('2026-10-25T05:00:00.000Z');
  });

  it('accepts the midnight that ends a day', () => {
    expect(wallTimeToInstant(day('2026-03-28'), 1440)).toBe(wallTimeToInstant(day('2026-03-29'), 0));
  });
});

describe('local dates', () => {
  it('gives the London date of an instant, around midnight in summer', () => {
    expect(formatDay(localDayOf(Date.parse('2026-06-15T22:59:59Z')))).toBe('2026-06-15');
    expect(formatDay(localDayOf(Date.parse('2026-06-15T23:00:00Z')))).toBe('2026-06-16');
    expect(formatDay(localDayOf(Date.parse('2026-01-15T23:59:59Z')))).toBe('2026-01-15');
  });

  it('numbers weekdays from Monday and refuses dates that do not exist', () => {
    expect(weekdayOf(day('2026-03-30'))).toBe(0); // Monday
    expect(weekdayOf(day('2026-03-29'))).toBe(6); // Sunday
    expect(parseDay('2026-02-29')).toBeUndefined();
    expect(parseDay('2026-2-01')).toBeUndefined();
    expect(parseDay('2028-02-29')).toBeDefined();
  });

  it('writes instants in ISO 8601 basic format without ":"', () => {
    expect(compactUtc(Date.parse('2026-03-29T01:00:00Z'))).toBe('20260329T010000Z');
  });
});
