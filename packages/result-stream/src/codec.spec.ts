import { createHash, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  decryptChunk,
  encryptChunk,
  generateDataKey,
  generateWrappingKeyPair,
  sha256Hex,
  unwrapKeyForRecipient,
  wrapKeyForRecipient,
} from '@keystage/crypto';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import * as protocolLimits from '../../protocol/src/limits.js';
import { ResultDecoder } from './decoder.js';
import { type EncodedChunk, ResultEncoder, type ResultSummary } from './encoder.js';
import { ResultStreamError } from './errors.js';
import {
  CODEC_DEFLATE_RAW,
  CODEC_STORED,
  MAX_CHUNK_BYTES,
  MAX_CHUNK_CREDITS,
  MAX_CHUNK_PLAINTEXT_BYTES,
} from './format.js';

const RUN = '6f1c2a34-9d0e-4b7a-8c55-0a1b2c3d4e5f';
const OTHER_RUN = '0b9e8d7c-6f5a-4e3d-9c2b-1a0f9e8d7c6b';

const code = (c: string) => expect.objectContaining({ name: expect.any(String), code: c });

function encodeAll(
  rows: unknown[][],
  options: { columns: string[]; runId?: string; dataKey: Buffer; targetChunkBytes?: number; level?: number },
): { chunks: EncodedChunk[]; summary: ResultSummary } {
  const encoder = new ResultEncoder({
    runId: options.runId ?? RUN,
    dataKey: options.dataKey,
    columns: options.columns,
    ...(options.targetChunkBytes ? { targetChunkBytes: options.targetChunkBytes } : {}),
    ...(options.level !== undefined ? { compressionLevel: options.level } : {}),
  });
  const chunks: EncodedChunk[] = [];
  for (const row of rows) chunks.push(...encoder.push(row));
  const { chunks: last, summary } = encoder.finish();
  chunks.push(...last);
  return { chunks, summary };
}

function decodeAll(chunks: EncodedChunk[], dataKey: Buffer, runId = RUN) {
  const decoder = new ResultDecoder({ runId, dataKey });
  const rows: unknown[][] = [];
  let columns: string[] | undefined;
  for (const chunk of chunks) {
    const opened = decoder.open(chunk.seq, chunk.bytes, chunk.sha256);
    if (opened.status !== 'opened') throw new Error('unexpected duplicate');
    if (opened.columns) columns = opened.columns;
    for (const row of opened.rows) rows.push(row);
  }
  return { decoder, rows, columns };
}

/** A sealed chunk with arbitrary plaintext, as a faulty or hostile agent could make one. */
function forge(plaintext: Buffer, dataKey: Buffer, seq = 0, runId = RUN): EncodedChunk {
  const bytes = encryptChunk(plaintext, dataKey, { runId, seq });
  return { seq, bytes, sha256: sha256Hex(bytes), byteLength: bytes.length, rowCount: 0 };
}

const plainPackr = new Packr({ useRecords: false });
const framed = (codec: number, data: Buffer) => Buffer.concat([Buffer.from([codec]), data]);

const SMALL_COLUMNS = ['id', 'name'];
function smallRows(n: number): unknown[][] {
  return Array.from({ length: n }, (_, i) => [i, `pupil ${i}`]);
}

describe('plaintext digests (chunk.reuse)', () => {
  it('are equal for the same rows whatever the run and data key, and differ when a row changes', () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => [i, `pupil ${i}`, i % 7 === 0 ? null : 'PM']);
    const options = { columns: ['id', 'name', 'session'], targetChunkBytes: 16_384 };
    const a = encodeAll(rows, { ...options, dataKey: generateDataKey() });
    const b = encodeAll(rows, { ...options, runId: OTHER_RUN, dataKey: generateDataKey() });
    expect(a.chunks.length).toBeGreaterThan(3);
    expect(b.chunks.map((c) => c.plainSha256)).toEqual(a.chunks.map((c) => c.plainSha256));
    expect(b.chunks.map((c) => c.sha256)).not.toEqual(a.chunks.map((c) => c.sha256));
    // The digest is of what the cloud decrypts: decryptChunk(bytes) hashes to it.
    const key = generateDataKey();
    const c = encodeAll(rows, { ...options, dataKey: key });
    const plain = decryptChunk(c.chunks[1]!.bytes, key, { runId: RUN, seq: 1 });
    expect(sha256Hex(plain)).toBe(c.chunks[1]!.plainSha256);
    const changed = rows.map((r) => [...r]);
    changed[4_000]![1] = 'pupil renamed';
    const d = encodeAll(changed, { ...options, dataKey: generateDataKey() });
    const same = d.chunks.filter((ch, i) => ch.plainSha256 === a.chunks[i]?.plainSha256).length;
    expect(same).toBeGreaterThan(0);
    expect(same).toBeLessThan(a.chunks.length);
  });
});

describe('limits', () => {
  it('mirrors the protocol limits', () => {
    expect(MAX_CHUNK_BYTES).toBe(protocolLimits.MAX_CHUNK_BYTES);
    expect(MAX_CHUNK_CREDITS).toBe(protocolLimits.MAX_CHUNK_CREDITS);
  });
});

describe('ResultEncoder → ResultDecoder round trip', () => {
  it('carries 100k rows of mixed types, unicode, nulls and large strings, every chunk under the limit', () => {
    const dataKey = generateDataKey();
    const columns = ['id', 'name', 'score', 'present', 'note', 'big', 'when', 'blob'];
    const names = ['Zoë', 'Łukasz', '山田 太郎', 'Ørjan', "O'Brien", 'Siân', '😀 emoji', 'Ná\u0301ndor', ''];
    const large: string[] = [];
    for (let i = 0; i < 4; i++) large.push(randomBytes(150_000).toString('base64')); // ~200 KB each
    const rows: unknown[][] = [];
    const expected: unknown[][] = [];
    for (let i = 0; i < 100_000; i++) {
      const big = i % 1000 === 0 ? 2n ** 60n + BigInt(i) : BigInt(i);
      const when = new Date(Date.UTC(2025, i % 12, 1 + (i % 28), 8, 45, i % 60));
      const blob = i % 7 === 0 ? Buffer.from([i & 255, (i >> 8) & 255, 0xff]) : null;
      const note = i % 5000 === 1 ? large[((i / 5000) % 4) | 0]! : i % 3 === 0 ? null : `note ${i} – ✓`;
      const score = i % 11 === 0 ? null : i % 2 ? i / 7 : -i;
      rows.push([i, names[i % names.length], score, i % 2 === 0, note, big, when, blob]);
      expected.push([
        i,
        names[i % names.length],
        score,
        i % 2 === 0,
        note,
        i % 1000 === 0 ? (2n ** 60n + BigInt(i)).toString() : i,
        when.toISOString(),
        blob ? blob.toString('base64') : null,
      ]);
    }
    const { chunks, summary } = encodeAll(rows, { columns, dataKey });
    expect(summary.rowCount).toBe(100_000);
    expect(summary.chunkCount).toBe(chunks.length);
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i));
    expect(summary.byteCount).toBe(chunks.reduce((sum, c) => sum + c.byteLength, 0));
    expect(chunks.reduce((sum, c) => sum + c.rowCount, 0)).toBe(100_000);
    for (const chunk of chunks) {
      expect(chunk.byteLength).toBe(chunk.bytes.length);
      expect(chunk.byteLength).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
      expect(chunk.sha256).toBe(sha256Hex(chunk.bytes));
    }

    const { decoder, rows: decoded, columns: got } = decodeAll(chunks, dataKey);
    expect(got).toEqual(columns);
    expect(decoded.length).toBe(expected.length);
    expect(decoded).toEqual(expected);
    expect(decoder.finish(summary)).toEqual({ ...summary, columns });
  });

  it('splits batches whose sealed size would pass MAX_CHUNK_BYTES', () => {
    const dataKey = generateDataKey();
    // Incompressible 120 KB strings with a 4 MiB target: each batch must be split several times.
    const rows = Array.from({ length: 60 }, (_, i) => [i, randomBytes(90_000).toString('base64')]);
    const { chunks, summary } = encodeAll(rows, {
      columns: SMALL_COLUMNS,
      dataKey,
      targetChunkBytes: 4 * 1024 * 1024,
    });
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks) expect(chunk.byteLength).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    const { decoder, rows: decoded } = decodeAll(chunks, dataKey);
    expect(decoded).toEqual(rows);
    decoder.finish(summary);
  });

  it('puts one row too large for any chunk to result.row_too_large and closes the encoder', () => {
    const encoder = new ResultEncoder({ runId: RUN, dataKey: generateDataKey(), columns: SMALL_COLUMNS });
    encoder.push([1, 'small']);
    expect(() => encoder.push([2, randomBytes(600_000).toString('base64')])).toThrow(
      code('result.row_too_large'),
    );
    expect(() => encoder.push([3, 'x'])).toThrow(code('result.invalid_state'));
  });

  it('carries a large but compressible row in one chunk', () => {
    const dataKey = generateDataKey();
    const rows = [[1, 'abc'.repeat(1_000_000)]]; // 3 MB of text, deflates to a few KB
    const { chunks, summary } = encodeAll(rows, { columns: SMALL_COLUMNS, dataKey });
    expect(chunks).toHaveLength(1);
    expect(decodeAll(chunks, dataKey).rows).toEqual(rows);
    expect(summary.rowCount).toBe(1);
  });

  it('sends one chunk with the columns and no rows for an empty result', () => {
    const dataKey = generateDataKey();
    const { chunks, summary } = encodeAll([], { columns: ['a', 'b', 'c'], dataKey });
    expect(chunks).toHaveLength(1);
    expect(summary).toMatchObject({ rowCount: 0, chunkCount: 1, byteCount: chunks[0]!.byteLength });
    const { decoder, rows, columns } = decodeAll(chunks, dataKey);
    expect(rows).toEqual([]);
    expect(columns).toEqual(['a', 'b', 'c']);
    expect(decoder.finish(summary).columns).toEqual(['a', 'b', 'c']);
  });

  it('carries the column names in chunk 0 only', () => {
    const dataKey = generateDataKey();
    const { chunks } = encodeAll(smallRows(20_000), {
      columns: SMALL_COLUMNS,
      dataKey,
      targetChunkBytes: 4096,
    });
    expect(chunks.length).toBeGreaterThan(3);
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    const opened = chunks.map((c) => decoder.open(c.seq, c.bytes, c.sha256));
    expect(opened[0]).toMatchObject({ status: 'opened', columns: SMALL_COLUMNS });
    expect(opened.slice(1).every((o) => !('columns' in o))).toBe(true);
  });

  it('batches near targetChunkBytes of uncompressed body', () => {
    const dataKey = generateDataKey();
    const { chunks } = encodeAll(smallRows(50_000), {
      columns: SMALL_COLUMNS,
      dataKey,
      targetChunkBytes: 32_768,
    });
    const bodies = chunks.map((c) =>
      inflateRawSync(decryptChunk(c.bytes, dataKey, { runId: RUN, seq: c.seq }).subarray(1)),
    );
    for (const body of bodies.slice(1, -1)) {
      expect(body.length).toBeGreaterThan(32_768 * 0.7);
      expect(body.length).toBeLessThanOrEqual(32_768 * 1.1);
    }
  });

  it('compresses: repetitive rows cost far less on the wire than their msgpack body', () => {
    const dataKey = generateDataKey();
    const rows = Array.from({ length: 20_000 }, (_, i) => [i % 50, 'present, on time, no comment']);
    // Batches small enough that neither level changes where chunks end (a badly compressing
    // result gets smaller batches; see the next test).
    const compressed = encodeAll(rows, { columns: SMALL_COLUMNS, dataKey, targetChunkBytes: 65_536 });
    const stored = encodeAll(rows, {
      columns: SMALL_COLUMNS,
      dataKey,
      level: 0,
      targetChunkBytes: 65_536,
    });
    expect(compressed.summary.byteCount * 5).toBeLessThan(stored.summary.byteCount);
    const plaintext = decryptChunk(compressed.chunks[0]!.bytes, dataKey, { runId: RUN, seq: 0 });
    expect(plaintext[0]).toBe(CODEC_DEFLATE_RAW);
    expect(decodeAll(stored.chunks, dataKey).rows).toEqual(rows);
    // The digest is over the uncompressed bodies, so it does not depend on the compression level.
    expect(stored.summary.resultSha256).toBe(compressed.summary.resultSha256);
  });

  it('aims lower when rows compress badly, so a batch is not sealed twice', () => {
    const dataKey = generateDataKey();
    // ~1.6 MB of incompressible text: at the default 1 MiB aim each batch would seal over
    // MAX_CHUNK_BYTES and be split; the encoder aims under it from the start and after each chunk.
    const rows = Array.from({ length: 400 }, (_, i) => [i, randomBytes(3000).toString('base64')]);
    const { chunks } = encodeAll(rows, { columns: SMALL_COLUMNS, dataKey });
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const chunk of chunks) expect(chunk.byteLength).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    // After the first chunk it knows the ratio and fills chunks to near the aim (a split would
    // halve a batch: chunks of about half a too-large seal).
    for (const chunk of chunks.slice(1, -1)) expect(chunk.byteLength).toBeGreaterThan(MAX_CHUNK_BYTES * 0.8);
    expect(decodeAll(chunks, dataKey).rows).toEqual(rows);
  });

  it('stores a body that does not shrink when deflated', () => {
    const dataKey = generateDataKey();
    const rows = [[1, 'x']]; // 16 bytes of msgpack: deflate adds more than it saves
    const { chunks } = encodeAll(rows, { columns: SMALL_COLUMNS, dataKey });
    expect(decryptChunk(chunks[0]!.bytes, dataKey, { runId: RUN, seq: 0 })[0]).toBe(CODEC_STORED);
    expect(decodeAll(chunks, dataKey).rows).toEqual(rows);
  });

  it('defines resultSha256 as sha256 over every chunk body (uncompressed msgpack) in seq order', () => {
    const dataKey = generateDataKey();
    const { chunks, summary } = encodeAll(smallRows(5000), {
      columns: SMALL_COLUMNS,
      dataKey,
      targetChunkBytes: 8192,
    });
    const hash = createHash('sha256');
    for (const chunk of chunks) {
      const plaintext = decryptChunk(chunk.bytes, dataKey, { runId: RUN, seq: chunk.seq });
      hash.update(
        plaintext[0] === CODEC_DEFLATE_RAW ? inflateRawSync(plaintext.subarray(1)) : plaintext.subarray(1),
      );
    }
    expect(summary.resultSha256).toBe(hash.digest('hex'));
  });
});

describe('value normalisation', () => {
  const dataKey = generateDataKey();
  const roundTrip = (row: unknown[]) =>
    decodeAll(encodeAll([row], { columns: row.map((_, i) => `c${i}`), dataKey }).chunks, dataKey).rows[0];

  it('turns Date, bigint, Buffer and undefined into wire values', () => {
    const row = [
      new Date('2025-09-01T08:45:00.123Z'),
      123n,
      -(2n ** 53n - 1n),
      2n ** 53n,
      -(2n ** 64n),
      Buffer.from('hello'),
      new Uint8Array([1, 2, 3, 4]),
      undefined,
      'bad \ud800 surrogate',
      Number.NaN,
      1.5,
    ];
    expect(roundTrip(row)).toEqual([
      '2025-09-01T08:45:00.123Z',
      123,
      -(2 ** 53 - 1),
      '9007199254740992',
      '-18446744073709551616',
      'aGVsbG8=',
      'AQIDBA==',
      null,
      'bad \ufffd surrogate',
      Number.NaN,
      1.5,
    ]);
  });

  it('does not change the caller row', () => {
    const when = new Date(0);
    const row = [when, 5n];
    roundTrip(row);
    expect(row).toEqual([when, 5n]);
  });

  it('refuses unsupported values and rows of the wrong length, keeping the encoder usable', () => {
    const encoder = new ResultEncoder({ runId: RUN, dataKey, columns: ['a', 'b'] });
    expect(() => encoder.push([1, { x: 1 }])).toThrow(code('result.invalid_value'));
    expect(() => encoder.push([1, [1, 2]])).toThrow(code('result.invalid_value'));
    expect(() => encoder.push([1, new Date(Number.NaN)])).toThrow(code('result.invalid_value'));
    expect(() => encoder.push([1, Symbol('s')])).toThrow(code('result.invalid_value'));
    expect(() => encoder.push([1])).toThrow(code('result.invalid_value'));
    expect(() => encoder.push('not a row' as unknown as unknown[])).toThrow(code('result.invalid_value'));
    encoder.push([1, 'ok']);
    expect(encoder.finish().summary.rowCount).toBe(1);
  });

  it('refuses bad options', () => {
    expect(() => new ResultEncoder({ runId: RUN, dataKey: Buffer.alloc(16), columns: ['a'] })).toThrow(
      code('result.invalid_argument'),
    );
    expect(() => new ResultEncoder({ runId: '', dataKey, columns: ['a'] })).toThrow(
      code('result.invalid_argument'),
    );
    expect(() => new ResultEncoder({ runId: RUN, dataKey, columns: [] })).toThrow(
      code('result.invalid_argument'),
    );
    expect(
      () =>
        new ResultEncoder({
          runId: RUN,
          dataKey,
          columns: ['a'],
          targetChunkBytes: MAX_CHUNK_PLAINTEXT_BYTES + 1,
        }),
    ).toThrow(code('result.invalid_argument'));
    expect(() => new ResultDecoder({ runId: RUN, dataKey: Buffer.alloc(31) })).toThrow(
      code('result.invalid_argument'),
    );
  });
});

describe('ResultDecoder refusals', () => {
  const dataKey = generateDataKey();
  const { chunks, summary } = encodeAll(smallRows(3000), {
    columns: SMALL_COLUMNS,
    dataKey,
    targetChunkBytes: 4096,
  });

  it('has several chunks to play with', () => {
    expect(chunks.length).toBeGreaterThanOrEqual(5);
  });

  it('refuses a tampered chunk: digest mismatch, or decrypt failure when the sha256 was updated too', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    const tampered = Buffer.from(chunks[0]!.bytes);
    tampered[tampered.length - 1]! ^= 0x01;
    expect(() => decoder.open(0, tampered, chunks[0]!.sha256)).toThrow(code('chunk.digest_mismatch'));
    expect(() => decoder.open(0, tampered, sha256Hex(tampered))).toThrow(code('chunk.decrypt_failed'));
    // Nothing changed: the genuine chunk still opens.
    expect(decoder.nextSeq).toBe(0);
    expect(decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256).status).toBe('opened');
  });

  it('refuses a chunk of another run', () => {
    const other = encodeAll(smallRows(10), { columns: SMALL_COLUMNS, dataKey, runId: OTHER_RUN });
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    const c = other.chunks[0]!;
    expect(() => decoder.open(0, c.bytes, c.sha256)).toThrow(code('chunk.decrypt_failed'));
    const wrongKey = new ResultDecoder({ runId: RUN, dataKey: generateDataKey() });
    expect(() => wrongKey.open(0, chunks[0]!.bytes, chunks[0]!.sha256)).toThrow(code('chunk.decrypt_failed'));
  });

  it('refuses reordered chunks: a gap, or a chunk moved to another position', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    expect(() => decoder.open(1, chunks[1]!.bytes, chunks[1]!.sha256)).toThrow(code('chunk.gap'));
    decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256);
    // chunk 2's bytes presented as chunk 1: the (runId, seq) associated data does not match.
    expect(() => decoder.open(1, chunks[2]!.bytes, chunks[2]!.sha256)).toThrow(code('chunk.decrypt_failed'));
    expect(decoder.open(1, chunks[1]!.bytes, chunks[1]!.sha256).status).toBe('opened');
  });

  it('reports a duplicate without counting it twice', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256);
    const rows = decoder.rowCount;
    expect(decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256)).toEqual({ status: 'duplicate', seq: 0 });
    expect(decoder.rowCount).toBe(rows);
    expect(decoder.nextSeq).toBe(1);
  });

  it('refuses a missing chunk at the end, wrong counts and a wrong digest; then accepts the truth', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    for (const c of chunks.slice(0, -1)) decoder.open(c.seq, c.bytes, c.sha256);
    expect(() => decoder.finish(summary)).toThrow(code('result.incomplete'));
    expect(() => decoder.finish({ ...summary, chunkCount: summary.chunkCount - 2 })).toThrow(
      code('result.chunk_count_mismatch'),
    );
    const last = chunks.at(-1)!;
    decoder.open(last.seq, last.bytes, last.sha256);
    expect(() => decoder.finish({ ...summary, rowCount: summary.rowCount + 1 })).toThrow(
      code('result.row_count_mismatch'),
    );
    expect(() => decoder.finish({ ...summary, byteCount: summary.byteCount - 1 })).toThrow(
      code('result.byte_count_mismatch'),
    );
    expect(() => decoder.finish({ ...summary, resultSha256: sha256Hex('something else') })).toThrow(
      code('result.digest_mismatch'),
    );
    expect(decoder.finish(summary).rowCount).toBe(3000);
    expect(() => decoder.open(chunks.length, last.bytes, last.sha256)).toThrow(code('result.invalid_state'));
    expect(decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256).status).toBe('duplicate');
  });

  it('refuses to finish a stream that never started', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    expect(() => decoder.finish(summary)).toThrow(code('result.incomplete'));
    expect(() => decoder.finish({ ...summary, chunkCount: 0, rowCount: 0, byteCount: 0 })).toThrow(
      code('result.chunk_count_mismatch'),
    );
  });

  it('refuses chunks that are empty or over MAX_CHUNK_BYTES', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    const big = Buffer.alloc(MAX_CHUNK_BYTES + 1);
    expect(() => decoder.open(0, big, sha256Hex(big))).toThrow(code('chunk.size'));
    expect(() => decoder.open(0, Buffer.alloc(0), sha256Hex(''))).toThrow(code('chunk.size'));
  });

  it('stops inflating a zip bomb at the limit', () => {
    // 64 MiB of zeros deflate to ~64 KB: a legal chunk size that would inflate far past the limit.
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(MAX_CHUNK_BYTES);
    const chunk = forge(framed(CODEC_DEFLATE_RAW, bomb), dataKey);
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    expect(() => decoder.open(0, chunk.bytes, chunk.sha256)).toThrow(code('chunk.inflate_limit'));
    expect(decoder.nextSeq).toBe(0);
    // A lower limit applies to legitimate data too.
    const small = new ResultDecoder({ runId: RUN, dataKey, maxChunkPlaintextBytes: 1024 });
    const { chunks: rows } = encodeAll(smallRows(2000), { columns: SMALL_COLUMNS, dataKey });
    expect(() => small.open(0, rows[0]!.bytes, rows[0]!.sha256)).toThrow(code('chunk.inflate_limit'));
    const stored = forge(framed(CODEC_STORED, Buffer.alloc(2048)), dataKey);
    expect(() => small.open(0, stored.bytes, stored.sha256)).toThrow(code('chunk.inflate_limit'));
  });

  it('refuses authenticated chunks whose content is not a result chunk', () => {
    const open = (plaintext: Buffer, seq = 0) => {
      const decoder = new ResultDecoder({ runId: RUN, dataKey });
      if (seq > 0) decoder.open(0, chunks[0]!.bytes, chunks[0]!.sha256);
      const chunk = forge(plaintext, dataKey, seq);
      return () => decoder.open(seq, chunk.bytes, chunk.sha256);
    };
    const body = (value: unknown) => plainPackr.pack(value);
    expect(open(framed(7, body([1, ['a'], []])))).toThrow(code('chunk.unsupported_format'));
    expect(open(framed(CODEC_STORED, body([2, ['a'], []])))).toThrow(code('chunk.unsupported_format'));
    expect(open(framed(CODEC_DEFLATE_RAW, Buffer.from('not deflate at all')))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, Buffer.from([0xc1])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body({ rows: [] })))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, null, []])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, [], []])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, ['a', 2], []])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, ['a', 'b'], [[1]]])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, ['a'], [[{ x: 1 }]]])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, ['a'], [[new Date()]]])))).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, ['id', 'name'], [[1, 'x']]])), 1)).toThrow(
      code('chunk.corrupt'),
    );
    expect(open(framed(CODEC_STORED, body([1, null, [[1]]])), 1)).toThrow(code('chunk.corrupt'));
    expect(open(framed(CODEC_STORED, body([1, null, [[1, 'x']]])), 1)).not.toThrow();
  });

  it('throws ResultStreamError instances', () => {
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    try {
      decoder.open(3, chunks[3]!.bytes, chunks[3]!.sha256);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ResultStreamError);
      expect((err as ResultStreamError).retryable).toBe(false);
    }
  });
});

describe('with a wrapped data key', () => {
  it('opens on the control plane with the key unwrapped from job.accept', () => {
    const controlPlane = generateWrappingKeyPair();
    // Agent side: a fresh data key per run, wrapped for the job's result key and bound to the run.
    const dataKey = generateDataKey();
    const wrapped = wrapKeyForRecipient(dataKey, controlPlane.publicKey, RUN).toString('base64');
    const rows = smallRows(10_000);
    const { chunks, summary } = encodeAll(rows, { columns: SMALL_COLUMNS, dataKey });
    dataKey.fill(0);

    // Control plane: unwrap with its private key and the run id, then open the stream.
    const unwrapped = unwrapKeyForRecipient(Buffer.from(wrapped, 'base64'), controlPlane.privateKey, RUN);
    const { decoder, rows: decoded } = decodeAll(chunks, unwrapped);
    expect(decoded).toEqual(rows);
    expect(decoder.finish(summary).rowCount).toBe(10_000);
    // The wrap is bound to its run.
    expect(() =>
      unwrapKeyForRecipient(Buffer.from(wrapped, 'base64'), controlPlane.privateKey, OTHER_RUN),
    ).toThrow(expect.objectContaining({ code: 'crypto.decrypt_failed' }));
  });
});

describe('package entry', () => {
  it('exports the public API', async () => {
    const api = await import('./index.js');
    for (const name of [
      'ResultEncoder',
      'ResultDecoder',
      'UploadWindow',
      'SpillBuffer',
      'IngestCursor',
      'ResultStreamError',
      'BufferFullError',
      'ResultStreamErrorCode',
      'MAX_CHUNK_BYTES',
    ]) {
      expect(api).toHaveProperty(name);
    }
  });
});
