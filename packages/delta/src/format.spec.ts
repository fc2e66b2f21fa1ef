import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffSnapshots, summariseDiff } from './diff.js';
import type { Row } from './encoding.js';
import { DeltaError, DeltaErrorCode } from './errors.js';
import { readSnapshotInfo, SNAPSHOT_FORMAT_VERSION } from './format.js';
import { buildSnapshot, makeTempDir, removeDir } from './test-support/fixtures.js';
import { verifySnapshot } from './verify.js';

let dir: string;
let good: Buffer;
let goodPath: string;
const ROWS: Row[] = Array.from({ length: 6000 }, (_, i) => [i, `name ${i}`, i % 7 === 0 ? null : i * 1.5]);

beforeAll(async () => {
  dir = await makeTempDir();
  const done = await buildSnapshot(ROWS, ['id', 'name', 'score'], ['id'], {
    tempDir: dir,
    path: join(dir, 'good.ksnap'),
  });
  goodPath = done.path;
  good = await readFile(goodPath);
});
afterAll(async () => {
  await removeDir(dir);
});

/** Every way of reading the file: each must refuse it with `code`. */
async function expectRefused(
  bytes: Buffer,
  code: DeltaErrorCode = DeltaErrorCode.CorruptSnapshot,
): Promise<void> {
  const path = join(dir, 'bad.ksnap');
  await writeFile(path, bytes);
  await expect(verifySnapshot(path)).rejects.toMatchObject({ code });
  await expect(summariseDiff(undefined, path)).rejects.toMatchObject({ code });
  await expect(summariseDiff(goodPath, path)).rejects.toMatchObject({ code });
  await expect(summariseDiff(path, goodPath)).rejects.toMatchObject({ code });
  let error: unknown;
  try {
    for await (const _change of diffSnapshots(goodPath, path)) {
      // consume
    }
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DeltaError);
  expect((error as DeltaError).code).toBe(code);
}

function headerLength(bytes: Buffer): number {
  return bytes.readUInt32LE(12);
}

describe('snapshot file', () => {
  it('has a header, checksummed blocks and a footer', async () => {
    expect(good.subarray(0, 8).toString('latin1')).toBe('KSDELTA\n');
    expect(good.readUInt16LE(8)).toBe(SNAPSHOT_FORMAT_VERSION);
    expect(Number(good.readBigUInt64LE(16))).toBe(ROWS.length);
    const meta = JSON.parse(good.toString('utf8', 28, headerLength(good) - 4));
    expect(meta).toEqual({ columns: ['id', 'name', 'score'], keyColumns: ['id'], digest: 'sha256-128' });
    expect(good.subarray(good.length - 40, good.length - 32).toString('latin1')).toBe('KSDEND\n\0');
    expect(Number(good.readBigUInt64LE(good.length - 32))).toBe(ROWS.length);
    expect(good.readUInt32LE(good.length - 16)).toBeGreaterThan(1); // several blocks
    expect(await readSnapshotInfo(goodPath)).toMatchObject({ rowCount: ROWS.length, bytes: good.length });
    await verifySnapshot(goodPath);
    expect(await summariseDiff(goodPath, goodPath)).toMatchObject({ unchanged: ROWS.length });
  });

  it('refuses a truncated file, before handing out any change', async () => {
    const h = headerLength(good);
    const cuts = [
      0,
      10,
      27,
      h - 1,
      h,
      h + 7,
      h + 100,
      Math.floor(good.length / 2),
      good.length - 41,
      good.length - 1,
    ];
    for (const cut of cuts) {
      await expectRefused(good.subarray(0, cut));
      const path = join(dir, 'cut.ksnap');
      await writeFile(path, good.subarray(0, cut));
      const seen: unknown[] = [];
      await expect(
        (async () => {
          for await (const change of diffSnapshots(undefined, path)) seen.push(change);
        })(),
      ).rejects.toMatchObject({ code: DeltaErrorCode.CorruptSnapshot });
      expect(seen).toEqual([]);
    }
    // Appended bytes are refused too.
    await expectRefused(Buffer.concat([good, Buffer.from([0])]));
  });

  it('refuses a flipped bit anywhere: header, block header, record, footer', async () => {
    const h = headerLength(good);
    const positions = [
      10, // flags
      20, // row count
      30, // metadata
      h - 2, // header CRC
      h + 1, // first block length
      h + 5, // first block CRC
      h + 8 + 3, // first record length
      h + 8 + 30, // first record key
      Math.floor(good.length / 2), // a record in the middle
      good.length - 60, // last block
      good.length - 30, // footer row count
      good.length - 2, // footer CRC
    ];
    for (const at of positions) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x10;
      await expectRefused(bad);
    }
  });

  it('refuses a file whose blocks were reordered or dropped', async () => {
    const h = headerLength(good);
    const first = good.readUInt32LE(h) + 8;
    const second = good.readUInt32LE(h + first) + 8;
    const blockA = good.subarray(h, h + first);
    const blockB = good.subarray(h + first, h + first + second);
    const rest = good.subarray(h + first + second);
    await expectRefused(Buffer.concat([good.subarray(0, h), blockB, blockA, rest]));
    // Dropping a block changes the size: refused; so is dropping one and padding to the same size.
    await expectRefused(Buffer.concat([good.subarray(0, h), blockB, rest]));
    await expectRefused(Buffer.concat([good.subarray(0, h), blockB, rest, Buffer.alloc(first)]));
  });

  it('refuses other files and unknown versions', async () => {
    await expectRefused(Buffer.from('id,name\n1,a\n'.repeat(10)));
    await expectRefused(Buffer.alloc(good.length));
    const future = Buffer.from(good);
    future.writeUInt16LE(SNAPSHOT_FORMAT_VERSION + 1, 8);
    await expectRefused(future, DeltaErrorCode.UnsupportedFormat);
    await expect(readSnapshotInfo(join(dir, 'missing.ksnap'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
