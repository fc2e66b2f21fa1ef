import { generateDataKey } from '@keystage/crypto';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ResultDecoder } from './decoder.js';
import { type EncodedChunk, type PackedRows, ResultEncoder } from './encoder.js';
import { normalizeRow, packBody, packBodyOfPacked } from './format.js';

const RUN = '6f1c2a34-9d0e-4b7a-8c55-0a1b2c3d4e5f';
const COLUMNS = ['id', 'name', 'score', 'flag', 'at'];
const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });

function rowsOf(n: number, width = 10): unknown[][] {
  return Array.from({ length: n }, (_, i) => [
    i,
    `pupil ${i} ${'x'.repeat(i % width)}`,
    i % 7 === 0 ? null : i * 1.5,
    i % 2,
    '2025-09-01 08:40:00Z',
  ]);
}

/** Rows as a connector's PackedBatch: each row packed alone, back to back. */
function packed(rows: unknown[][]): PackedRows {
  const parts = rows.map((r) => packr.pack(normalizeRow(r, r.length).row));
  const ends: number[] = [];
  let end = 0;
  for (const p of parts) {
    end += p.length;
    ends.push(end);
  }
  return { rowCount: rows.length, bytes: Buffer.concat(parts), ends };
}

function decode(chunks: EncodedChunk[], dataKey: Buffer) {
  const decoder = new ResultDecoder({ runId: RUN, dataKey });
  const rows: unknown[][] = [];
  for (const c of chunks) {
    const opened = decoder.open(c.seq, c.bytes, c.sha256);
    if (opened.status === 'opened') rows.push(...opened.rows);
  }
  return rows;
}

describe('ResultEncoder.pushPacked (rows already packed by the connector)', () => {
  it('builds the same body as packBody', () => {
    for (const n of [0, 1, 15, 16, 65535, 65536]) {
      const rows = rowsOf(n);
      const p = packed(rows);
      const normal = rows.map((r) => normalizeRow(r, r.length).row);
      expect(packBodyOfPacked(COLUMNS, n, p.bytes).equals(packBody(COLUMNS, normal))).toBe(true);
      expect(packBodyOfPacked(null, n, p.bytes).equals(packBody(null, normal))).toBe(true);
    }
  });

  it('cuts chunks of about the target size that decode to the rows push() would send', () => {
    const dataKey = generateDataKey();
    const rows = rowsOf(30_000);
    const a = new ResultEncoder({ runId: RUN, dataKey, columns: COLUMNS, targetChunkBytes: 64 * 1024 });
    const pushed = rows.flatMap((r) => a.push(r));
    const aEnd = a.finish();
    const b = new ResultEncoder({ runId: RUN, dataKey, columns: COLUMNS, targetChunkBytes: 64 * 1024 });
    // In uneven batches, as a connector hands them out.
    const viaPacked: EncodedChunk[] = [];
    for (let i = 0; i < rows.length; i += 777)
      viaPacked.push(...b.pushPacked(packed(rows.slice(i, i + 777))));
    const bEnd = b.finish();
    const all = (x: EncodedChunk[], end: { chunks: EncodedChunk[] }) => [...x, ...end.chunks];
    const chunks = all(viaPacked, bEnd);
    // push() cuts by an estimate of each row's size, pushPacked() by the exact bytes: the
    // boundaries differ, the rows do not.
    expect(chunks.length).toBeGreaterThan(5);
    expect(Math.abs(chunks.length - all(pushed, aEnd).length)).toBeLessThanOrEqual(chunks.length / 2);
    expect(bEnd.summary.rowCount).toBe(30_000);
    expect(decode(chunks, dataKey)).toEqual(decode(all(pushed, aEnd), dataKey));
    expect(decode(chunks, dataKey)).toEqual(rows.map((r) => normalizeRow(r, r.length).row));
    // The same rows packed again cut the same chunks (what a rerun's chunk reuse needs).
    const c = new ResultEncoder({ runId: RUN, dataKey, columns: COLUMNS, targetChunkBytes: 64 * 1024 });
    const again = [...c.pushPacked(packed(rows)), ...c.finish().chunks];
    expect(again.map((x) => x.plainSha256)).toEqual(chunks.map((x) => x.plainSha256));
  });

  it('mixes packed and unpacked batches in order, and refuses a row too large for any chunk', () => {
    const dataKey = generateDataKey();
    const rows = rowsOf(3000);
    const e = new ResultEncoder({ runId: RUN, dataKey, columns: COLUMNS, targetChunkBytes: 8 * 1024 });
    const out: EncodedChunk[] = [];
    out.push(...e.pushPacked(packed(rows.slice(0, 1000))));
    for (const r of rows.slice(1000, 2000)) out.push(...e.push(r));
    out.push(...e.pushPacked(packed(rows.slice(2000))));
    const end = e.finish();
    expect(decode([...out, ...end.chunks], dataKey)).toEqual(rows.map((r) => normalizeRow(r, r.length).row));
    expect(end.summary.rowCount).toBe(3000);

    const huge = new ResultEncoder({ runId: RUN, dataKey, columns: ['blob'], compressionLevel: 0 });
    expect(() => huge.pushPacked(packed([['a'.repeat(17 * 1024 * 1024)]]))).toThrow(
      expect.objectContaining({ code: 'result.row_too_large' }),
    );
  });
});
