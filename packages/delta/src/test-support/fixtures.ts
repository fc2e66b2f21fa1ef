// Test helpers for the delta package (not part of the build).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FinishedSnapshot, SnapshotBuilder, type SnapshotBuilderOptions } from '../builder.js';
import { CellKind, type DeltaValue, type Row, type RowCells } from '../encoding.js';

/** Small seeded PRNG (mulberry32): the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded Fisher–Yates shuffle (returns a new array). */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'keystage-delta-test-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Builds a snapshot from `rows` in the given order. */
export async function buildSnapshot(
  rows: readonly Row[],
  columns: readonly string[],
  keyColumns: readonly string[],
  options: Omit<SnapshotBuilderOptions, 'columns' | 'keyColumns'>,
): Promise<FinishedSnapshot> {
  const builder = new SnapshotBuilder({ columns, keyColumns, ...options });
  for (const row of rows) builder.add(row);
  return builder.finish();
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Type-exact identity of a value or a tuple: JSON keeps 1, "1", true and null apart. */
export function identity(value: DeltaValue | Row): string {
  return JSON.stringify(value);
}

const RANK = (v: DeltaValue): number =>
  v === null ? 0 : v === false ? 1 : v === true ? 2 : typeof v === 'number' ? 3 : 4;

/**
 * Reference key order, written without the byte encoding: by type (null < false < true < number <
 * string), numbers numerically, strings by their UTF-8 bytes, column by column.
 */
export function compareTuples(a: Row, b: Row): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as DeltaValue;
    const y = b[i] as DeltaValue;
    const r = RANK(x) - RANK(y);
    if (r !== 0) return r;
    if (typeof x === 'number' && typeof y === 'number') {
      if (x !== y) return x < y ? -1 : 1;
    } else if (typeof x === 'string' && typeof y === 'string') {
      const c = Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
      if (c !== 0) return c;
    }
  }
  return a.length - b.length;
}

const WORDS = ['', 'a', 'A', 'ab', 'b', '1', 'true', 'null', 'é', 'Ó Súilleabháin', '😀', 'x\0y', '\0', 'zz'];

/** A random cell: every type, with values that look alike across types. No -0, no lone surrogates. */
export function randomValue(rand: () => number): DeltaValue {
  const r = rand();
  if (r < 0.08) return null;
  if (r < 0.12) return true;
  if (r < 0.16) return false;
  if (r < 0.3) return Math.floor(rand() * 20) - 5;
  if (r < 0.36) return Math.floor(rand() * 2 ** 40) - 2 ** 39;
  if (r < 0.42) return Math.round(rand() * 1e6) / 100;
  if (r < 0.45) return [1, 0, 2 ** 31, -(2 ** 31), 2 ** 31 - 1, 1e21, 0.1, -1.5][Math.floor(rand() * 8)]!;
  if (r < 0.75) return WORDS[Math.floor(rand() * WORDS.length)]!;
  if (r < 0.8) return '9007199254740993'; // a big integer as a string
  if (r < 0.83) return 'long '.repeat(30 + Math.floor(rand() * 10)); // > 127 bytes: a 2-byte length
  return `s${Math.floor(rand() * 1000)}`;
}

/** A random key value: numbers, strings (NUL, non-ASCII, prefixes), booleans, null. */
export function randomKeyValue(rand: () => number): DeltaValue {
  const r = rand();
  if (r < 0.05) return null;
  if (r < 0.08) return rand() < 0.5;
  if (r < 0.5) return Math.floor(rand() * 200) - 50;
  if (r < 0.55) return Math.round(rand() * 1000) / 8 - 60;
  if (r < 0.75) return WORDS[Math.floor(rand() * WORDS.length)]!;
  return `k${Math.floor(rand() * 300)}`;
}

/** `rows` as {@link RowCells} (strings as UTF-8 in one buffer), the way a decoder hands them over. */
export function cellsOf(rows: readonly Row[], columnCount: number): RowCells {
  const n = rows.length * columnCount;
  const kinds = new Uint8Array(n);
  const numbers = new Float64Array(n);
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const parts: Buffer[] = [];
  let at = 0;
  rows.forEach((row, r) => {
    for (let c = 0; c < columnCount; c++) {
      const i = r * columnCount + c;
      const v = row[c] as DeltaValue;
      if (typeof v === 'string') {
        const bytes = Buffer.from(v, 'utf8');
        kinds[i] = CellKind.String;
        starts[i] = at;
        at += bytes.length;
        ends[i] = at;
        parts.push(bytes);
      } else if (typeof v === 'number') {
        kinds[i] = CellKind.Number;
        numbers[i] = v;
      } else {
        kinds[i] = v === null ? CellKind.Null : v ? CellKind.True : CellKind.False;
      }
    }
  });
  return { rowCount: rows.length, columnCount, kinds, numbers, starts, ends, bytes: Buffer.concat(parts) };
}
