import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffSnapshots } from './diff.js';
import type { DeltaValue, Row } from './encoding.js';
import { DeltaErrorCode } from './errors.js';
import { SnapshotJsonRows } from './json.js';
import {
  buildSnapshot,
  collect,
  makeTempDir,
  mulberry32,
  randomValue,
  removeDir,
} from './test-support/fixtures.js';

const COLUMNS = ['id', 'a', 'b', 'c'];

/** Strings JSON.stringify escapes, or writes as they are, in every way. */
const AWKWARD = [
  'say "hi"',
  'back\\slash',
  'tab\there',
  'line\nbreak\r\n',
  '\b\f\u0001\u001f\u007f',
  'nul\u0000',
  'é, Ó Súilleabháin',
  '😀 and \u2028\u2029',
  '\ufeffbyte-order mark first',
  'x'.repeat(300),
];

/** Random rows with unique ids, awkward strings among the values. */
function table(n: number, seed: number): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const value = (): DeltaValue =>
      rand() < 0.2 ? AWKWARD[Math.floor(rand() * AWKWARD.length)]! : randomValue(rand);
    rows.push([i * 3 - 500, value(), value(), value()]);
  }
  rows.push([1e6, -0, 2 ** 31, -(2 ** 31)], [1e6 + 1, 1e21, 1e-7, -1.5e-300], [1e6 + 2, 0.1, 2 ** 53, -1]);
  return rows;
}

/** The template text of one row, each value through JSON.stringify. */
function render(template: { parts: string[]; columns: number[] }, row: readonly DeltaValue[]): string {
  return template.parts
    .map((part, i) => (i < template.columns.length ? part + JSON.stringify(row[template.columns[i]!]) : part))
    .join('');
}

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

describe('SnapshotJsonRows', () => {
  it('writes every value exactly as JSON.stringify writes the value a diff decodes', async () => {
    const done = await buildSnapshot(table(10_000, 1), COLUMNS, ['id'], { tempDir: dir });
    const decoded = (await collect(diffSnapshots(undefined, done.path))).map((c) =>
      c.op === 'insert' ? c.row : [],
    );
    // A key column twice, a column left out, literal text with non-ASCII characters.
    const template = { parts: ['{"k":', ',"id":', ',"ç":[', ',', ']}\n'], columns: [0, 0, 3, 1] };
    const rows = new SnapshotJsonRows(done.path, template);
    const chunks = await collect(rows);
    expect(rows.rowCount).toBe(decoded.length);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(decoded.map((row) => render(template, row)).join(''));
  });

  it('hands out chunks of up to 256 KiB, each row whole', async () => {
    const done = await buildSnapshot(table(2000, 3), COLUMNS, ['id'], { tempDir: dir });
    // About 1 kB a row: each column many times over.
    const columns = Array.from({ length: 160 }, (_, i) => i % 4);
    const template = { parts: ['', ...columns.slice(1).map(() => ','), '\n'], columns };
    const chunks = await collect(new SnapshotJsonRows(done.path, template));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((chunk) => chunk.length <= 256 * 1024 && chunk.at(-1) === 0x0a)).toBe(true);
  });

  it('puts the separator between rows only', async () => {
    const rows = [
      [1, 'a', null, true],
      [2, 'b', false, 7],
    ];
    const done = await buildSnapshot(rows, COLUMNS, ['id'], { tempDir: dir });
    const text = async (path: string) =>
      Buffer.concat(
        await collect(new SnapshotJsonRows(path, { parts: ['[', ']'], columns: [1], separator: ',\n' })),
      ).toString();
    expect(await text(done.path)).toBe('["a"],\n["b"]');
    const empty = await buildSnapshot([], COLUMNS, ['id'], { tempDir: dir });
    expect(await text(empty.path)).toBe('');
  });

  it('gives a row larger than a chunk a chunk of its own', async () => {
    const big = 'y'.repeat(400 * 1024);
    const rows = [
      [1, 'a', null, null],
      [2, big, null, null],
      [3, 'c', null, null],
    ];
    const done = await buildSnapshot(rows, COLUMNS, ['id'], { tempDir: dir });
    const chunks = await collect(new SnapshotJsonRows(done.path, { parts: ['', '\n'], columns: [1] }));
    expect(Buffer.concat(chunks).toString()).toBe(`"a"\n"${big}"\n"c"\n`);
  });

  it('checks the file as it reads, and is read once', async () => {
    const done = await buildSnapshot(table(2000, 2), COLUMNS, ['id'], { tempDir: dir });
    const bytes = await readFile(done.path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
    const bad = join(dir, 'bad.ksnap');
    await writeFile(bad, bytes);
    await expect(
      collect(new SnapshotJsonRows(bad, { parts: ['', '\n'], columns: [1] })),
    ).rejects.toMatchObject({
      code: DeltaErrorCode.CorruptSnapshot,
    });
    const rows = new SnapshotJsonRows(done.path, { parts: ['', ''], columns: [0] });
    await collect(rows);
    await expect(collect(rows)).rejects.toThrow(/once/);
    expect(() => new SnapshotJsonRows(done.path, { parts: [''], columns: [0] })).toThrow(/one part more/);
    await expect(collect(new SnapshotJsonRows(done.path, { parts: ['', ''], columns: [4] }))).rejects.toThrow(
      /no column 4/,
    );
    expect(rows.rowCount).toBe(2003);
  });
});
