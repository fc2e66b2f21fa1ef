import { encryptChunk, generateDataKey, sha256Hex } from '@keystage/crypto';
import { Packr } from 'msgpackr';
import { describe, expect, it, vi } from 'vitest';
import { type OpenedCells, type OpenedChunk, ResultDecoder, type RowCells } from './decoder.js';
import { ResultEncoder } from './encoder.js';
import { CODEC_STORED, unpackBody, type WireValue } from './format.js';

// Counts the chunks decoded as values rather than read straight into cells.
vi.mock('./format.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./format.js')>();
  return { ...actual, unpackBody: vi.fn(actual.unpackBody) };
});

const RUN = '2c7d9e41-5b3a-4f6e-8d1c-9a0b1c2d3e4f';
const packr = new Packr({ useRecords: false, moreTypes: false });

/** The values of `cells`, row by row. */
function valuesOf(cells: RowCells): WireValue[][] {
  const rows: WireValue[][] = [];
  for (let r = 0; r < cells.rowCount; r++) {
    const row: WireValue[] = [];
    for (let c = 0; c < cells.columnCount; c++) {
      const i = r * cells.columnCount + c;
      const kind = cells.kinds[i];
      row.push(
        kind === 0
          ? null
          : kind === 1
            ? false
            : kind === 2
              ? true
              : kind === 3
                ? cells.numbers[i]!
                : Buffer.from(cells.bytes.subarray(cells.starts[i], cells.ends[i])).toString('utf8'),
      );
    }
    rows.push(row);
  }
  return rows;
}

/** What `open` and `openCells` make of the same chunks: values or the error, chunk by chunk. */
function both(chunks: { seq: number; bytes: Buffer }[], dataKey: Buffer) {
  const byRows = new ResultDecoder({ runId: RUN, dataKey });
  const byCells = new ResultDecoder({ runId: RUN, dataKey });
  const outcome = (open: () => OpenedChunk | OpenedCells) => {
    try {
      const opened = open();
      if (opened.status !== 'opened') return opened;
      const rows = 'rows' in opened ? opened.rows : valuesOf(opened.cells);
      return { columns: opened.columns, rows };
    } catch (error) {
      return { error: { code: (error as { code?: string }).code, message: (error as Error).message } };
    }
  };
  return chunks.map(({ seq, bytes }) => ({
    rows: outcome(() => byRows.open(seq, bytes)),
    cells: outcome(() => byCells.openCells(seq, bytes)),
  }));
}

/** A chunk sealed around a msgpack body of our own making (stored, not deflated). */
function sealed(seq: number, body: Buffer, dataKey: Buffer) {
  return {
    seq,
    bytes: encryptChunk(Buffer.concat([Buffer.from([CODEC_STORED]), body]), dataKey, { runId: RUN, seq }),
  };
}

describe('ResultDecoder.openCells', () => {
  it('reads the values open decodes, every type the encoder writes', () => {
    const dataKey = generateDataKey();
    const columns = ['id', 'n', 's', 'x'];
    const encoder = new ResultEncoder({ runId: RUN, dataKey, columns, targetChunkBytes: 4096 });
    const values: unknown[] = [
      null,
      undefined,
      true,
      false,
      0,
      -0,
      1,
      127,
      128,
      255,
      256,
      65_535,
      65_536,
      2 ** 31 - 1,
      2 ** 31,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 40,
      -1,
      -32,
      -33,
      -128,
      -129,
      -32_768,
      -32_769,
      -(2 ** 31),
      -(2 ** 31) - 1,
      0.1,
      -1.5e-300,
      1e21,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      123n,
      2n ** 70n,
      '',
      'a',
      'x'.repeat(31),
      'x'.repeat(32),
      'y'.repeat(300),
      'z'.repeat(70_000),
      'é Ó Súilleabháin',
      '😀',
      'nul\u0000',
      'a byte-order mark \ufeff inside',
      'lone \ud800 surrogate',
      new Date(Date.UTC(2025, 8, 1, 8, 40)),
      Buffer.from('bytes'),
    ];
    const chunks = [];
    for (let i = 0; i < 600; i++) {
      chunks.push(
        ...encoder.push([i, values[i % values.length], values[(i * 7) % values.length], values[i % 3]]),
      );
    }
    chunks.push(...encoder.finish().chunks);
    expect(chunks.length).toBeGreaterThan(3);
    vi.mocked(unpackBody).mockClear();
    for (const { rows, cells } of both(chunks, dataKey)) expect(cells).toEqual(rows);
    // open decodes every chunk; openCells reads them all directly.
    expect(unpackBody).toHaveBeenCalledTimes(chunks.length);
  });

  it('falls back to decoding a body it does not read directly, with the same values or error', () => {
    const dataKey = generateDataKey();
    const raw = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
    const first = packr.pack([1, ['a', 'b'], [[1, 'x']]]);
    const bodies: Buffer[] = [
      // float32, uint64 and int64 values
      raw('93 01 92 a1 61 a1 62 91 92 ca 3f c0 00 00 cf 00 00 00 01 00 00 00 00'),
      raw('93 01 92 a1 61 a1 62 91 92 d3 ff ff ff ff ff ff ff fe c0'),
      // a string that is not well-formed UTF-8, and short and long ones behind a byte-order mark
      raw('93 01 92 a1 61 a1 62 91 92 a3 61 ff 62 a4 ef bb bf 61'),
      Buffer.concat([raw('93 01 92 a1 61 a1 62 91 92 01 d9 53 ef bb bf'), Buffer.alloc(80, 0x61)]),
      // a column name outside ASCII
      raw('93 01 92 a2 c3 a9 a1 62 91 92 01 02'),
      // a map, an array and binary where values go
      raw('93 01 92 a1 61 a1 62 91 92 81 a1 6b 01 c0'),
      raw('93 01 92 a1 61 a1 62 91 92 91 01 c0'),
      raw('93 01 92 a1 61 a1 62 91 92 c4 01 00 c0'),
      // a row of the wrong length, trailing bytes, a cut body, no rows array, a wrong version
      raw('93 01 92 a1 61 a1 62 91 93 01 02 03'),
      Buffer.concat([first, raw('00')]),
      first.subarray(0, first.length - 2),
      raw('93 01 92 a1 61 a1 62 c0'),
      raw('93 02 92 a1 61 a1 62 90'),
      raw('93 01 90 90'),
    ];
    for (const body of bodies) {
      const [{ rows, cells }] = both([sealed(0, body, dataKey)], dataKey) as [
        { rows: unknown; cells: unknown },
      ];
      expect(cells).toEqual(rows);
    }
    // Later chunks: nil columns only, and the column count of chunk 0.
    const later = [
      sealed(0, first, dataKey),
      sealed(1, packr.pack([1, null, [[2, 'y']]]), dataKey),
      sealed(2, packr.pack([1, ['a', 'b'], [[3, 'z']]]), dataKey),
    ];
    const outcomes = both(later, dataKey);
    for (const { rows, cells } of outcomes) expect(cells).toEqual(rows);
    expect(outcomes[2]!.cells).toMatchObject({ error: { code: 'chunk.corrupt' } });
  });

  it('reports a duplicate, and counts rows and bytes for finish like open', () => {
    const dataKey = generateDataKey();
    const encoder = new ResultEncoder({ runId: RUN, dataKey, columns: ['id'], targetChunkBytes: 1024 });
    const chunks = [];
    for (let i = 0; i < 2000; i++) chunks.push(...encoder.push([i]));
    const { chunks: last, summary } = encoder.finish();
    chunks.push(...last);
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    vi.mocked(unpackBody).mockClear();
    for (const chunk of chunks)
      expect(decoder.openCells(chunk.seq, chunk.bytes, chunk.sha256).status).toBe('opened');
    expect(unpackBody).not.toHaveBeenCalled();
    expect(decoder.openCells(0, chunks[0]!.bytes)).toEqual({ status: 'duplicate', seq: 0 });
    expect(decoder.finish(summary).rowCount).toBe(2000);
  });
});

describe('ResultDecoder.open without a digest', () => {
  it('opens bytes checked on arrival, and still refuses a digest that does not match', () => {
    const dataKey = generateDataKey();
    const chunk = sealed(0, packr.pack([1, ['a'], [[1]]]), dataKey);
    expect(new ResultDecoder({ runId: RUN, dataKey }).open(0, chunk.bytes).status).toBe('opened');
    expect(
      new ResultDecoder({ runId: RUN, dataKey }).open(0, chunk.bytes, sha256Hex(chunk.bytes)).status,
    ).toBe('opened');
    expect(() => new ResultDecoder({ runId: RUN, dataKey }).open(0, chunk.bytes, '00'.repeat(32))).toThrow(
      expect.objectContaining({ code: 'chunk.digest_mismatch' }) as unknown as Error,
    );
  });
});
