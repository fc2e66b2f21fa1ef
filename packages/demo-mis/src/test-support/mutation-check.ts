import { expect } from 'vitest';
import type { MutationReport } from '../mutate.js';
import { type Dump, diff, rowversions } from './databases.js';

function maxOf(values: Iterable<number>): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > m) m = v;
  return m;
}

const sorted = (keys: string[]) => [...keys].sort((a, b) => Number(a) - Number(b));

/** The database changed exactly as the report says: same keys per table, nothing else. */
export function expectExactly(before: Dump, after: Dump, report: MutationReport): void {
  const actual = diff(before, after);
  expect(Object.keys(actual).sort()).toEqual(Object.keys(report.changes).sort());
  for (const [table, c] of Object.entries(report.changes)) {
    expect(sorted(actual[table]!.inserted), `${table} inserted`).toEqual(sorted(c.inserted));
    expect(sorted(actual[table]!.updated), `${table} updated`).toEqual(sorted(c.updated));
    expect(sorted(actual[table]!.deleted), `${table} deleted`).toEqual(sorted(c.deleted));
  }
  // Every inserted or updated row, and only those, carries a rowversion above the old maximum.
  const old = rowversions(before);
  const now = rowversions(after);
  expect(maxOf(old.values())).toBe(report.rowversionBefore);
  const bumped = [...now].filter(([, v]) => v > report.rowversionBefore).map(([k]) => k);
  const changed = Object.entries(report.changes).flatMap(([t, c]) =>
    [...c.inserted, ...c.updated].map((k) => `${t}/${k}`),
  );
  expect(bumped.sort()).toEqual(changed.sort());
  expect(maxOf(now.values())).toBe(report.rowversionAfter);
  expect(new Set(now.values()).size).toBe(now.size);
}
