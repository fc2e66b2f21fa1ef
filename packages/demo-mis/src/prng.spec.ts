import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from './prng.js';

describe('Rng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 100 }, () => a.nextUint32());
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('forks independent streams: drawing from one does not shift another', () => {
    const root1 = new Rng('school');
    const root2 = new Rng('school');
    const marks1 = root1.fork('marks');
    root2.fork('behaviour').next();
    const marks2 = root2.fork('marks');
    expect(Array.from({ length: 20 }, () => marks1.next())).toEqual(
      Array.from({ length: 20 }, () => marks2.next()),
    );
  });

  it('keeps int() within bounds and roughly uniform', () => {
    const r = new Rng(1);
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) counts[r.int(0, 5)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(9_000);
    expect(counts.reduce((s, n) => s + n, 0)).toBe(60_000);
  });

  it('makes version-4 UUIDs', () => {
    const u = new Rng(3).uuid();
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is the only source of randomness: no Math.random or wall clock in the generator', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.spec.ts') && !f.startsWith('test-support') && f !== 'cli.ts',
    );
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const text = readFileSync(`${dir}/${f}`, 'utf8');
      expect(text, f).not.toMatch(/Math\.random\(|Date\.now\(|new Date\(\)/);
    }
  });
});
