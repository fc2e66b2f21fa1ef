import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stableFraction } from './stable-fraction.js';

describe('stableFraction', () => {
  it('is frozen: the first 48 bits of SHA-256 of the UTF-8 seed (changing it moves every school)', () => {
    expect(stableFraction('school-1:extract-1')).toBe(0.6689927841568277);
    expect(stableFraction('')).toBe(0.8894159948913369);
    expect(stableFraction('é')).toBe(0.29140219051641836);
    const seed = 'b3c1e0a2-5d0f-4c1e-9a57-3f1f0e7c9d11:extract-7';
    const prefix = createHash('sha256').update(seed, 'utf8').digest('hex').slice(0, 12);
    expect(stableFraction(seed)).toBe(Number.parseInt(prefix, 16) / 2 ** 48);
  });

  it('spreads sequential ids evenly over [0, 1)', () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const f = stableFraction(`school-${i}:extract-${i % 10}`);
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      buckets[Math.floor(f * 10)]! += 1;
    }
    for (const count of buckets) expect(count).toBeGreaterThan(900); // 1,000 expected in each
  });
});
