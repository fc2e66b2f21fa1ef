import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIN_MEMORY_BUDGET_BYTES } from './builder.js';
import { type Change, type DiffSummary, diffSnapshots, SnapshotDiff, summariseDiff } from './diff.js';
import type { DeltaValue, Row } from './encoding.js';
import { DeltaErrorCode } from './errors.js';
import {
  buildSnapshot,
  collect,
  compareTuples,
  identity,
  makeTempDir,
  mulberry32,
  randomKeyValue,
  randomValue,
  removeDir,
  shuffled,
} from './test-support/fixtures.js';

const COLUMNS = ['k1', 'k2', 'a', 'b', 'c', 'd'];
const KEY = ['k1', 'k2'];
const keyOf = (row: Row): DeltaValue[] => [row[0] as DeltaValue, row[1] as DeltaValue];

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

/** A random table of `n` rows with unique mixed-type keys. */
function randomTable(rand: () => number, n: number): Row[] {
  const rows = new Map<string, Row>();
  while (rows.size < n) {
    const key = [randomKeyValue(rand), randomKeyValue(rand)];
    const id = identity(key);
    if (!rows.has(id))
      rows.set(id, [...key, randomValue(rand), randomValue(rand), randomValue(rand), randomValue(rand)]);
  }
  return [...rows.values()];
}

/** The next run: some rows deleted, some changed (often to a look-alike of another type), some new. */
function mutate(rand: () => number, rows: readonly Row[], inserts: number): Row[] {
  const out: Row[] = [];
  const ids = new Set(rows.map((r) => identity(keyOf(r))));
  const LOOKALIKE = new Map<string, DeltaValue>([
    ['1', '1'],
    ['"1"', 1],
    ['true', 'true'],
    ['null', ''],
    ['""', null],
    ['0', false],
    ['false', 0],
  ]);
  for (const row of rows) {
    const r = rand();
    if (r < 0.1) continue; // deleted
    if (r < 0.3) {
      const next = [...row];
      const count = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < count; j++) {
        const col = 2 + Math.floor(rand() * 4);
        const look = LOOKALIKE.get(identity(next[col] as DeltaValue));
        next[col] = look !== undefined && rand() < 0.5 ? look : randomValue(rand);
      }
      out.push(next);
    } else {
      out.push(row);
    }
  }
  let added = 0;
  while (added < inserts) {
    const key = [randomKeyValue(rand), randomKeyValue(rand)];
    if (ids.has(identity(key))) continue;
    ids.add(identity(key));
    out.push([...key, randomValue(rand), randomValue(rand), randomValue(rand), randomValue(rand)]);
    added++;
  }
  return out;
}

/** The expected changes, computed from plain maps, in the reference key order. */
function expectedChanges(
  previous: readonly Row[],
  current: readonly Row[],
  includePrevious: boolean,
): Change[] {
  const before = new Map(previous.map((r) => [identity(keyOf(r)), r]));
  const after = new Map(current.map((r) => [identity(keyOf(r)), r]));
  const changes: Change[] = [];
  for (const [id, row] of after) {
    const old = before.get(id);
    if (old === undefined) {
      changes.push({ op: 'insert', key: keyOf(row), row: [...row] });
      continue;
    }
    const changed = COLUMNS.filter(
      (_, i) => identity(old[i] as DeltaValue) !== identity(row[i] as DeltaValue),
    );
    if (changed.length > 0) {
      changes.push(
        includePrevious
          ? { op: 'update', key: keyOf(row), row: [...row], changed, previous: [...old] }
          : { op: 'update', key: keyOf(row), row: [...row], changed },
      );
    }
  }
  for (const [id, old] of before) {
    if (!after.has(id)) changes.push({ op: 'delete', key: keyOf(old), previousRow: [...old] });
  }
  return changes.sort((x, y) => compareTuples(x.key, y.key));
}

function summaryOf(changes: readonly Change[], previousCount: number, currentCount: number): DiffSummary {
  const count = (op: Change['op']) => changes.filter((c) => c.op === op).length;
  const updates = count('update');
  const deletes = count('delete');
  return {
    previousCount,
    currentCount,
    inserts: count('insert'),
    updates,
    deletes,
    unchanged: previousCount - updates - deletes,
  };
}

describe('diffSnapshots', () => {
  it('is a full load without a previous snapshot: every row an insert, in key order', async () => {
    const rows = randomTable(mulberry32(1), 300);
    const current = await buildSnapshot(shuffled(rows, mulberry32(2)), COLUMNS, KEY, { tempDir: dir });
    const diff = diffSnapshots(undefined, current.path);
    const changes = await collect(diff);
    expect(changes).toEqual(expectedChanges([], rows, false));
    expect(changes.every((c) => c.op === 'insert')).toBe(true);
    expect(diff.summary).toEqual({
      previousCount: 0,
      currentCount: 300,
      inserts: 300,
      updates: 0,
      deletes: 0,
      unchanged: 0,
    });
    expect(await summariseDiff(undefined, current.path)).toEqual(diff.summary);
  });

  for (const seed of [11, 12, 13, 14, 15, 16]) {
    it(`matches an independent recomputation on random data and mutations (seed ${seed})`, async () => {
      const rand = mulberry32(seed);
      const previous = randomTable(rand, 200 + Math.floor(rand() * 400));
      const current = mutate(rand, previous, Math.floor(rand() * 60));
      // Alternate sorted input and shuffled input with a tiny budget (external sort).
      const order = (rows: Row[]) =>
        seed % 2 === 0 ? [...rows].sort((a, b) => compareTuples(keyOf(a), keyOf(b))) : shuffled(rows, rand);
      const budget = seed % 2 === 0 ? undefined : MIN_MEMORY_BUDGET_BYTES;
      const a = await buildSnapshot(order(previous), COLUMNS, KEY, {
        tempDir: dir,
        path: join(dir, 'a.ksnap'),
        memoryBudgetBytes: budget,
      });
      const b = await buildSnapshot(order(current), COLUMNS, KEY, {
        tempDir: dir,
        path: join(dir, 'b.ksnap'),
        memoryBudgetBytes: budget,
      });
      const includePrevious = seed % 3 === 0;
      const diff = diffSnapshots(a.path, b.path, { includePrevious, batchSize: 7 });
      const changes = await collect(diff);
      const expected = expectedChanges(previous, current, includePrevious);
      expect(expected.filter((c) => c.op === 'update').length).toBeGreaterThan(10);
      expect(changes).toEqual(expected);
      expect(diff.summary).toEqual(summaryOf(expected, previous.length, current.length));
      expect(await summariseDiff(a.path, b.path)).toEqual(diff.summary);

      // Backwards: inserts and deletes swap.
      const back = await collect(diffSnapshots(b.path, a.path));
      expect(back).toEqual(expectedChanges(current, previous, false));
    });
  }

  it('lists exactly the changed columns, type changes included', async () => {
    const previous: Row[] = [
      [1, 'a', 1, 'x', true, null],
      [2, 'a', 1, 'x', true, null],
      [3, 'a', 1, 'x', true, null],
      [4, 'a', 1, 'x', true, null],
    ];
    const current: Row[] = [
      [1, 'a', '1', 'x', true, null], // number → string
      [2, 'a', 1, 'x', 'true', ''], // boolean → string, null → ''
      [3, 'a', 1.5, 'y', false, 0], // three values
      [4, 'a', 1, 'x', true, null], // unchanged
    ];
    const a = await buildSnapshot(previous, COLUMNS, KEY, { tempDir: dir });
    const b = await buildSnapshot(current, COLUMNS, KEY, { tempDir: dir });
    const changes = await collect(diffSnapshots(a.path, b.path, { includePrevious: true }));
    expect(changes).toEqual([
      { op: 'update', key: [1, 'a'], row: current[0], changed: ['a'], previous: previous[0] },
      { op: 'update', key: [2, 'a'], row: current[1], changed: ['c', 'd'], previous: previous[1] },
      { op: 'update', key: [3, 'a'], row: current[2], changed: ['a', 'b', 'c', 'd'], previous: previous[2] },
    ]);
  });

  it('finds no change in a run without changes, and counts it cheaply', async () => {
    const rows = randomTable(mulberry32(21), 2000);
    const a = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, memoryBudgetBytes: 64 * 1024 });
    const b = await buildSnapshot(shuffled(rows, mulberry32(22)), COLUMNS, KEY, { tempDir: dir });
    const diff = diffSnapshots(a.path, b.path);
    expect(await collect(diff)).toEqual([]);
    const none = {
      previousCount: 2000,
      currentCount: 2000,
      inserts: 0,
      updates: 0,
      deletes: 0,
      unchanged: 2000,
    };
    expect(diff.summary).toEqual(none);
    expect(await summariseDiff(a.path, b.path)).toEqual(none);
  });

  it('summarises equal files by comparing them, and still refuses them corrupted', async () => {
    const rows = randomTable(mulberry32(23), 3000);
    const a = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir });
    const b = await buildSnapshot(shuffled(rows, mulberry32(24)), COLUMNS, KEY, { tempDir: dir });
    const copy = join(dir, 'copy.ksnap');
    await copyFile(a.path, copy);
    // The same counts as the merge, which a file of other bytes takes.
    expect(await summariseDiff(a.path, copy)).toEqual(await new SnapshotDiff(a.path, b.path).count());
    const changed = await buildSnapshot(mutate(mulberry32(25), rows, 1), COLUMNS, KEY, { tempDir: dir });
    expect(await summariseDiff(a.path, changed.path)).toEqual(
      await new SnapshotDiff(a.path, changed.path).count(),
    );
    // Both copies flipped alike are still equal, and refused.
    const bytes = await readFile(a.path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x08;
    await writeFile(copy, bytes);
    const other = join(dir, 'other.ksnap');
    await writeFile(other, bytes);
    await expect(summariseDiff(copy, other)).rejects.toMatchObject({ code: DeltaErrorCode.CorruptSnapshot });
  });

  it('yields the same changes in batches', async () => {
    const rand = mulberry32(31);
    const previous = randomTable(rand, 500);
    const current = mutate(rand, previous, 40);
    const a = await buildSnapshot(shuffled(previous, rand), COLUMNS, KEY, { tempDir: dir });
    const b = await buildSnapshot(shuffled(current, rand), COLUMNS, KEY, { tempDir: dir });
    const diff = diffSnapshots(a.path, b.path, { batchSize: 16 });
    const batches = await collect(diff.batches());
    expect(batches.every((batch) => batch.length > 0 && batch.length <= 16)).toBe(true);
    expect(batches.flat()).toEqual(expectedChanges(previous, current, false));
    expect(diff.done).toBe(true);
  });

  it('is single-use, and has a summary only at the end', async () => {
    const a = await buildSnapshot([[1, 1, null, null, null, null]], COLUMNS, KEY, { tempDir: dir });
    const diff = diffSnapshots(undefined, a.path);
    expect(() => diff.summary).toThrow(
      expect.objectContaining({ code: DeltaErrorCode.InvalidState }) as unknown as Error,
    );
    expect(diff.done).toBe(false);
    await collect(diff);
    expect(diff.summary.inserts).toBe(1);
    await expect(collect(diff)).rejects.toMatchObject({ code: DeltaErrorCode.InvalidState });
    expect(() => diffSnapshots(undefined, a.path, { batchSize: 0 })).toThrow(/batchSize/);
  });

  it('refuses snapshots with other columns or keys (resync instead)', async () => {
    const a = await buildSnapshot([[1, 'x']], ['id', 'v'], ['id'], { tempDir: dir });
    const b = await buildSnapshot([[1, 'x']], ['id', 'w'], ['id'], { tempDir: dir });
    const c = await buildSnapshot([[1, 'x']], ['id', 'v'], ['id', 'v'], { tempDir: dir });
    await expect(summariseDiff(a.path, b.path)).rejects.toMatchObject({
      code: DeltaErrorCode.SchemaMismatch,
    });
    await expect(collect(diffSnapshots(a.path, c.path))).rejects.toMatchObject({
      code: DeltaErrorCode.SchemaMismatch,
    });
    expect(await summariseDiff(undefined, b.path)).toMatchObject({ inserts: 1 });
  });
});
