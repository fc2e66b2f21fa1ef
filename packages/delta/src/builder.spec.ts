import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIN_MEMORY_BUDGET_BYTES, SnapshotBuilder } from './builder.js';
import { diffSnapshots } from './diff.js';
import type { Row } from './encoding.js';
import { DeltaError, DeltaErrorCode, DuplicateKeyError } from './errors.js';
import { BLOCK_PAYLOAD_BYTES, readSnapshotInfo } from './format.js';
import {
  buildSnapshot,
  cellsOf,
  collect,
  compareTuples,
  listDir,
  makeTempDir,
  mulberry32,
  removeDir,
  shuffled,
} from './test-support/fixtures.js';
import { verifySnapshot } from './verify.js';

const COLUMNS = ['pupil_id', 'date', 'session', 'code', 'minutes_late', 'comment'];
const KEY = ['pupil_id', 'date', 'session'];

/** Attendance marks in key order: `pupils` × `days` × AM/PM. */
function marks(pupils: number, days: number, seed = 1): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let p = 0; p < pupils; p++) {
    for (let d = 0; d < days; d++) {
      const date = `2025-09-${String(d + 1).padStart(2, '0')}`;
      for (const session of ['AM', 'PM']) {
        const late = rand() < 0.1;
        rows.push([
          1000 + p * 3,
          date,
          session,
          late ? 'L' : '/',
          late ? Math.floor(rand() * 30) : null,
          rand() < 0.05 ? `note ${p}-${d}` : null,
        ]);
      }
    }
  }
  return rows;
}

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

describe('SnapshotBuilder', () => {
  it('streams rows that arrive in key order straight into a valid snapshot', async () => {
    const rows = marks(20, 25);
    const done = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'a.ksnap') });
    expect(done).toMatchObject({
      path: join(dir, 'a.ksnap'),
      rowCount: 1000,
      sortedInput: true,
      spilledRuns: 0,
    });
    const info = await verifySnapshot(done.path);
    expect(info).toMatchObject({ columns: COLUMNS, keyColumns: KEY, rowCount: 1000, bytes: done.bytes });
    expect(await listDir(dir)).toEqual(['a.ksnap']); // no partial or run file left behind
    const back = await collect(diffSnapshots(undefined, done.path));
    expect(back.map((c) => (c.op === 'insert' ? c.row : null))).toEqual(rows);
  });

  it('gives the same bytes for shuffled input through the external sort, whatever the budget', async () => {
    const rows = marks(30, 40); // 2,400 rows, ≈ 110 kB encoded
    const sorted = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'sorted.ksnap') });
    const expected = await readFile(sorted.path);
    const rand = mulberry32(99);

    // A tiny budget: many spilled runs and several merge passes (fan-in 2).
    const tiny = await buildSnapshot(shuffled(rows, rand), COLUMNS, KEY, {
      tempDir: dir,
      path: join(dir, 'tiny.ksnap'),
      memoryBudgetBytes: MIN_MEMORY_BUDGET_BYTES,
    });
    expect(tiny.sortedInput).toBe(false);
    expect(tiny.spilledRuns).toBeGreaterThan(8);
    expect((await readFile(tiny.path)).equals(expected)).toBe(true);

    // The default budget: everything sorted in memory, merged with the streamed prefix.
    const roomy = await buildSnapshot(shuffled(rows, rand), COLUMNS, KEY, {
      tempDir: dir,
      path: join(dir, 'roomy.ksnap'),
    });
    expect(roomy).toMatchObject({ sortedInput: false, spilledRuns: 0 });
    expect((await readFile(roomy.path)).equals(expected)).toBe(true);

    // Sorted for a while, then out of order: the streamed prefix becomes the first run.
    const mixed = [...rows.slice(0, 1500), ...shuffled(rows.slice(1500), rand)];
    const late = await buildSnapshot(mixed, COLUMNS, KEY, {
      tempDir: dir,
      path: join(dir, 'late.ksnap'),
      memoryBudgetBytes: 32 * 1024,
    });
    expect(late.sortedInput).toBe(false);
    expect((await readFile(late.path)).equals(expected)).toBe(true);

    // Reverse order.
    const reversed = await buildSnapshot([...rows].reverse(), COLUMNS, KEY, {
      tempDir: dir,
      path: join(dir, 'reversed.ksnap'),
      memoryBudgetBytes: 64 * 1024,
    });
    expect((await readFile(reversed.path)).equals(expected)).toBe(true);

    expect(await listDir(dir)).toEqual([
      'late.ksnap',
      'reversed.ksnap',
      'roomy.ksnap',
      'sorted.ksnap',
      'tiny.ksnap',
    ]);
  });

  it('sorts random mixed-type keys into the reference order', async () => {
    const rand = mulberry32(5);
    const rows: Row[] = [];
    const seen = new Set<string>();
    while (rows.length < 1500) {
      const k1 = [null, true, false, -3, 0, 2.5, 17, '', 'a', 'a\0', 'ab', 'é'][Math.floor(rand() * 12)]!;
      const k2 = Math.floor(rand() * 400) - 200;
      const id = JSON.stringify([k1, k2]);
      if (seen.has(id)) continue;
      seen.add(id);
      rows.push([k1, k2, rand() < 0.5 ? 'x' : null]);
    }
    const done = await buildSnapshot(rows, ['k1', 'k2', 'v'], ['k1', 'k2'], {
      tempDir: dir,
      memoryBudgetBytes: 20 * 1024,
    });
    expect(done.spilledRuns).toBeGreaterThan(1);
    await verifySnapshot(done.path);
    const back = await collect(diffSnapshots(undefined, done.path));
    const expected = [...rows].sort((a, b) => compareTuples(a.slice(0, 2), b.slice(0, 2)));
    expect(back.map((c) => (c.op === 'insert' ? c.row : null))).toEqual(expected);
  });

  it('reports a duplicate key from add() while the input is in order, and cleans up', async () => {
    const builder = new SnapshotBuilder({ columns: COLUMNS, keyColumns: KEY, tempDir: dir });
    builder.add([1, '2025-09-01', 'AM', '/', null, null]);
    builder.add([1, '2025-09-01', 'PM', '/', null, null]);
    let error: unknown;
    try {
      builder.add([1, '2025-09-01', 'PM', 'L', 5, 'again']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DuplicateKeyError);
    expect(error).toBeInstanceOf(DeltaError);
    const dup = error as DuplicateKeyError;
    expect(dup.code).toBe(DeltaErrorCode.DuplicateKey);
    expect(dup.key).toEqual([1, '2025-09-01', 'PM']);
    expect(dup.keyColumns).toEqual(KEY);
    expect(dup.message).toContain('(pupil_id, date, session) = (1, "2025-09-01", "PM")');
    expect(await listDir(dir)).toEqual([]);
    expect(() => builder.add([2, '2025-09-01', 'AM', '/', null, null])).toThrow(/failed/);
    await expect(builder.finish()).rejects.toMatchObject({ code: DeltaErrorCode.InvalidState });
  });

  it('reports a duplicate key from finish() when the input was sorted externally', async () => {
    const rows = marks(10, 20);
    const input = shuffled([...rows, [...rows[123]!.slice(0, 3), 'X', 1, 'dup']], mulberry32(3));
    const builder = new SnapshotBuilder({
      columns: COLUMNS,
      keyColumns: KEY,
      tempDir: dir,
      memoryBudgetBytes: MIN_MEMORY_BUDGET_BYTES,
    });
    for (const row of input) builder.add(row);
    const error = await builder.finish().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateKeyError);
    expect((error as DuplicateKeyError).key).toEqual(rows[123]!.slice(0, 3));
    expect(await listDir(dir)).toEqual([]);
    expect(existsSync(builder.path)).toBe(false);
  });

  it('refuses an invalid row without adding it, and stays usable', async () => {
    const builder = new SnapshotBuilder({ columns: ['id', 'v'], keyColumns: ['id'], tempDir: dir });
    builder.add([1, 'a']);
    const bad: unknown[] = [
      [2],
      [2, 'a', 'b'],
      [2, undefined],
      [2, Number.NaN],
      [{}, 'a'],
      [2, { a: 1 }],
      'row',
    ];
    for (const row of bad) {
      expect(() => builder.add(row as Row)).toThrow(
        expect.objectContaining({ code: DeltaErrorCode.InvalidRow }) as unknown as Error,
      );
    }
    builder.add([2, 'b']);
    const done = await builder.finish();
    expect(done.rowCount).toBe(2);
    await verifySnapshot(done.path);
  });

  it('hashes sorted input on the digest worker: the same bytes as hashing each row inline', async () => {
    const rows = marks(1000, 30); // 60,000 rows, ≈ 3 MB: far more blocks than are hashed before the worker
    // Built sorted twice (by the second the worker has long started) and shuffled (the external
    // sort hashes inline): one file, every digest right.
    const first = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'a.ksnap') });
    const second = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'b.ksnap') });
    const inline = await buildSnapshot(shuffled(rows, mulberry32(5)), COLUMNS, KEY, {
      tempDir: dir,
      path: join(dir, 'c.ksnap'),
    });
    expect(first.sortedInput && second.sortedInput && !inline.sortedInput).toBe(true);
    const expected = await readFile(inline.path);
    expect((await readFile(first.path)).equals(expected)).toBe(true);
    expect((await readFile(second.path)).equals(expected)).toBe(true);
    await verifySnapshot(second.path);
  });

  it('switches from streaming to sorting mid-way with digests still pending on the worker', async () => {
    const rows = marks(1000, 30);
    const late = [...rows.slice(0, 50_000), rows[59_999]!, ...rows.slice(50_000, 59_999)];
    const reference = await buildSnapshot(rows, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'a.ksnap') });
    const done = await buildSnapshot(late, COLUMNS, KEY, { tempDir: dir, path: join(dir, 'b.ksnap') });
    expect(done.sortedInput).toBe(false);
    expect((await readFile(done.path)).equals(await readFile(reference.path))).toBe(true);
  });

  describe('addCells', () => {
    const build = async (name: string, add: (b: SnapshotBuilder) => void, columns = COLUMNS, key = KEY) => {
      const builder = new SnapshotBuilder({ columns, keyColumns: key, tempDir: dir, path: join(dir, name) });
      add(builder);
      return readFile((await builder.finish()).path);
    };

    it('gives the bytes of adding the rows of those values, in sorted and shuffled order', async () => {
      const rand = mulberry32(7);
      const rows = marks(40, 30).map((row, i) =>
        i % 7 === 0 ? [...row.slice(0, 5), ['', 'é', '😀 x', 'a\0b', 'long '.repeat(40)][i % 5]!] : row,
      );
      for (const input of [rows, shuffled(rows, rand)]) {
        const expected = await build('rows.ksnap', (b) => b.addBatch(input));
        // In chunks of cells, as a decoder hands them over.
        const got = await build('cells.ksnap', (b) => {
          for (let i = 0; i < input.length; i += 500) {
            b.addCells(cellsOf(input.slice(i, i + 500), COLUMNS.length), [0, 1, 2, 3, 4, 5]);
          }
        });
        expect(got.equals(expected)).toBe(true);
        await removeDir(dir);
        dir = await makeTempDir();
      }
    });

    it('takes columns in another order, and numbers the rows where select is -1', async () => {
      const rows = marks(10, 10);
      // The cells' columns are the snapshot's in reverse order, without its last (a row number).
      const reversed = rows.map((row) => [...row].reverse());
      const keyless = [...COLUMNS, '__row'];
      const expected = await build(
        'rows.ksnap',
        (b) => b.addBatch(rows.map((row, i) => [...row, i])),
        keyless,
        ['__row'],
      );
      const got = await build(
        'cells.ksnap',
        (b) => {
          b.addCells(cellsOf(reversed.slice(0, 77), COLUMNS.length), [5, 4, 3, 2, 1, 0, -1]);
          b.addCells(cellsOf(reversed.slice(77), COLUMNS.length), [5, 4, 3, 2, 1, 0, -1]);
        },
        keyless,
        ['__row'],
      );
      expect(got.equals(expected)).toBe(true);
    });

    it('refuses what add refuses, with the same errors, keeping the rows before', async () => {
      const columns = ['id', 'v'];
      const builder = new SnapshotBuilder({ columns, keyColumns: ['id'], tempDir: dir });
      expect(() => builder.addCells(cellsOf([[1, 'a']], 2), [0])).toThrow(/select/);
      const nan = () =>
        builder.addCells(
          cellsOf(
            [
              [1, 'a'],
              [2, Number.NaN],
              [3, 'c'],
            ],
            2,
          ),
          [0, 1],
        );
      const reference = new SnapshotBuilder({ columns, keyColumns: ['id'], tempDir: dir });
      expect(() => reference.add([2, Number.NaN])).toThrow('column "v": NaN is not a finite number');
      await reference.abort();
      expect(nan).toThrow('column "v": NaN is not a finite number');
      expect(builder.rowCount).toBe(1);
      const duplicate = () =>
        builder.addCells(
          cellsOf(
            [
              [2, 'b'],
              [2, 'c'],
            ],
            2,
          ),
          [0, 1],
        );
      expect(duplicate).toThrow(DuplicateKeyError);
      expect(await listDir(dir)).toEqual([]);
    });
  });

  it('checks its options', () => {
    const make = (o: Partial<ConstructorParameters<typeof SnapshotBuilder>[0]>) => () =>
      new SnapshotBuilder({ columns: ['a', 'b'], keyColumns: ['a'], tempDir: dir, ...o });
    expect(make({})).not.toThrow();
    expect(make({ columns: [] })).toThrow(/columns/);
    expect(make({ columns: ['a', 'a'] })).toThrow(/unique/);
    expect(make({ keyColumns: [] })).toThrow(/key column/);
    expect(make({ keyColumns: ['c'] })).toThrow(/"c" is not a column/);
    expect(make({ memoryBudgetBytes: 0 })).toThrow(/memoryBudgetBytes/);
    expect(make({ tempDir: '' })).toThrow(/tempDir/);
  });

  it('never replaces an existing file (such as the previous snapshot)', async () => {
    const first = await buildSnapshot([[1, 'a']], ['id', 'v'], ['id'], {
      tempDir: dir,
      path: join(dir, 's.ksnap'),
    });
    const before = await readFile(first.path);
    expect(
      () => new SnapshotBuilder({ columns: ['id', 'v'], keyColumns: ['id'], tempDir: dir, path: first.path }),
    ).toThrow(/already exists/);
    const builder = new SnapshotBuilder({
      columns: ['id', 'v'],
      keyColumns: ['id'],
      tempDir: dir,
      path: join(dir, 't.ksnap'),
    });
    builder.add([2, 'b']);
    await writeFile(join(dir, 't.ksnap'), 'someone else');
    await expect(builder.finish()).rejects.toThrow(/appeared/);
    expect(await readFile(join(dir, 't.ksnap'), 'utf8')).toBe('someone else');
    expect((await readFile(first.path)).equals(before)).toBe(true);
    expect(await listDir(dir)).toEqual(['s.ksnap', 't.ksnap']);
  });

  it('writes an empty snapshot, and rows bigger than a block', async () => {
    const empty = await buildSnapshot([], ['id'], ['id'], { tempDir: dir });
    expect(empty.rowCount).toBe(0);
    expect(await readSnapshotInfo(empty.path)).toMatchObject({ rowCount: 0 });
    expect(await collect(diffSnapshots(empty.path, empty.path))).toEqual([]);

    const big = 'x'.repeat(BLOCK_PAYLOAD_BYTES + 1000);
    const rows: Row[] = [
      [3, 'small'],
      [1, big],
      [2, `é${big}`],
      [4, 'small'],
    ];
    const sorted = await buildSnapshot(
      [...rows].sort((a, b) => (a[0] as number) - (b[0] as number)),
      ['id', 'v'],
      ['id'],
      { tempDir: dir },
    );
    const unsorted = await buildSnapshot(rows, ['id', 'v'], ['id'], {
      tempDir: dir,
      memoryBudgetBytes: MIN_MEMORY_BUDGET_BYTES,
    });
    expect((await readFile(unsorted.path)).equals(await readFile(sorted.path))).toBe(true);
    await verifySnapshot(sorted.path);
    const back = await collect(diffSnapshots(undefined, sorted.path));
    expect(back.map((c) => (c.op === 'insert' ? c.row[1] : null))).toEqual([
      big,
      `é${big}`,
      'small',
      'small',
    ]);
  });

  it('removes its files on abort', async () => {
    const builder = new SnapshotBuilder({
      columns: COLUMNS,
      keyColumns: KEY,
      tempDir: dir,
      memoryBudgetBytes: MIN_MEMORY_BUDGET_BYTES,
    });
    for (const row of shuffled(marks(5, 20), mulberry32(8))) builder.add(row);
    expect((await listDir(dir)).length).toBeGreaterThan(0);
    await builder.abort();
    expect(await listDir(dir)).toEqual([]);
  });
});
