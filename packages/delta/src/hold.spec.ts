import { describe, expect, it } from 'vitest';
import type { DiffSummary } from './diff.js';
import { DEFAULT_HOLD_THRESHOLD, holdDecision } from './hold.js';

function summary(previousCount: number, updates: number, deletes: number, inserts = 0): DiffSummary {
  const unchanged = previousCount - updates - deletes;
  return { previousCount, currentCount: unchanged + updates + inserts, inserts, updates, deletes, unchanged };
}

describe('holdDecision', () => {
  it('holds only when deletes + updates exceed 30% of the previous rows', () => {
    expect(DEFAULT_HOLD_THRESHOLD).toBe(0.3);
    expect(holdDecision(summary(1000, 200, 100))).toEqual({ hold: false, share: 0.3 }); // exactly 30%
    const over = holdDecision(summary(1000, 200, 101));
    expect(over.hold).toBe(true);
    expect(over.share).toBeCloseTo(0.301, 10);
    expect(over.reason).toBe(
      '101 deletes + 200 updates = 30.1% of the 1000 previous rows, over the 30.0% threshold',
    );
    expect(holdDecision(summary(10, 3, 0))).toEqual({ hold: false, share: 0.3 });
    expect(holdDecision(summary(10, 0, 4)).hold).toBe(true);
    expect(holdDecision(summary(3, 1, 0)).hold).toBe(true); // 33%
    expect(holdDecision(summary(1000, 0, 0)).hold).toBe(false);
  });

  it('does not count inserts', () => {
    expect(holdDecision(summary(100, 10, 10, 5000))).toEqual({ hold: false, share: 0.2 });
  });

  it('never holds a first load (no previous rows)', () => {
    expect(holdDecision(summary(0, 0, 0, 1_000_000))).toEqual({ hold: false, share: 0 });
  });

  it('takes another threshold', () => {
    expect(holdDecision(summary(100, 5, 0), { threshold: 0.05 }).hold).toBe(false);
    expect(holdDecision(summary(100, 5, 1), { threshold: 0.05 }).hold).toBe(true);
    expect(holdDecision(summary(100, 1, 0), { threshold: 0 }).hold).toBe(true);
    expect(holdDecision(summary(100, 0, 0), { threshold: 0 }).hold).toBe(false);
    expect(holdDecision(summary(100, 60, 40), { threshold: 1 }).hold).toBe(false); // everything deleted: 100%
    expect(() => holdDecision(summary(1, 0, 0), { threshold: Number.NaN })).toThrow(/threshold/);
    expect(() => holdDecision(summary(1, 0, 0), { threshold: -0.1 })).toThrow(/threshold/);
  });
});
