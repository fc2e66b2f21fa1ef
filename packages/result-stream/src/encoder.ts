import { createHash, type Hash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { AEAD_KEY_BYTES, encryptChunk, sha256Hex } from '@keystage/crypto';
import { ResultStreamError, ResultStreamErrorCode } from './errors.js';
import {
  CODEC_DEFLATE_RAW,
  CODEC_STORED,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_TARGET_CHUNK_BYTES,
  MAX_CHUNK_BYTES,
  MAX_CHUNK_PLAINTEXT_BYTES,
  normalizeRow,
  packBody,
  packBodyOfPacked,
  type WireValue,
} from './format.js';

/**
 * Rows already packed (`@keystage/mis-connectors`' PackedBatch): each a msgpack array of wire
 * values exactly as this package packs them, back to back in `bytes`; `ends[i]` is where row i ends.
 */
export interface PackedRows {
  readonly rowCount: number;
  readonly bytes: Uint8Array;
  readonly ends: ArrayLike<number>;
}

/** One sealed chunk, ready for a `chunk` message (`payload` is `bytes` in base64). */
export interface EncodedChunk {
  /** 0, 1, 2 … per run, without gaps. */
  seq: number;
  /** The encrypted chunk (`encryptChunk` output), at most MAX_CHUNK_BYTES. */
  bytes: Buffer;
  /** sha256 of `bytes`, lowercase hex. */
  sha256: string;
  /** `bytes.length`. */
  byteLength: number;
  /** Rows in this chunk (informational: the wire message does not carry it). */
  rowCount: number;
  /**
   * sha256 (hex) of the chunk's plaintext (codec byte and body, before sealing): equal for equal
   * rows cut at equal places, whatever the data key, so a rerun can tell the cloud "you have this
   * one" (`chunk.reuse`). Optional for chunks built elsewhere.
   */
  plainSha256?: string;
}

/** The totals of a finished stream: what `run.complete` carries and `ResultDecoder.finish` checks. */
export interface ResultSummary {
  rowCount: number;
  chunkCount: number;
  /** Sum of the chunks' `byteLength`. */
  byteCount: number;
  /** sha256 (hex) over every chunk's uncompressed msgpack body, concatenated in seq order. */
  resultSha256: string;
}

export interface ResultEncoderOptions {
  /** The run the chunks belong to (bound into each chunk's associated data). */
  runId: string;
  /** The run's 32-byte data key. */
  dataKey: Uint8Array;
  /** Column names in the order of the row values. At least one. */
  columns: readonly string[];
  /** Uncompressed bytes to aim for per chunk (default 1 MiB, at most 16 MiB; less when rows compress badly). */
  targetChunkBytes?: number;
  /** zlib level 0–9 (default 1; 0 stores the body uncompressed). */
  compressionLevel?: number;
}

/** Sealed size the encoder aims below, so that a batch rarely has to be split. */
const SEALED_AIM = Math.floor(MAX_CHUNK_BYTES * 0.9);

/**
 * Agent side: turns rows into encrypted chunks. Rows are batched until their msgpack body is about
 * `targetChunkBytes` (less when the last chunk compressed too badly for that to fit a chunk), then each batch is packed as `[1, columns | null, rows]`, deflated (raw DEFLATE,
 * level 1; stored when that does not shrink it), prefixed with a codec byte and sealed with
 * `encryptChunk(…, { runId, seq })`. A batch whose sealed size would exceed MAX_CHUNK_BYTES is split
 * in halves until every part fits. Synchronous and single-threaded: sealing a chunk costs a few ms.
 *
 * The encoder keeps a reference to each pushed row until its chunk is sealed: do not mutate a row
 * after pushing it.
 */
export class ResultEncoder {
  readonly runId: string;
  readonly columns: readonly string[];
  private readonly dataKey: Uint8Array;
  private readonly target: number;
  private readonly level: number;
  private readonly digest: Hash = createHash('sha256');
  private pending: WireValue[][] = [];
  /** Estimated bytes of `pending`, in estimate units. */
  private pendingEstimate = 0;
  /** Real msgpack bytes per estimate unit, learnt from the last sealed batch. */
  private scale = 1;
  /**
   * The body size aimed for now: `target`, but no more than would seal to ~90 % of MAX_CHUNK_BYTES
   * at the compression the last chunk got — so a batch is not sealed twice (split) just because its
   * rows compress badly. The first batch assumes no compression.
   */
  private limit: number;
  /** Packed rows waiting (see `pushPacked`): their bytes up to `packedLength`, and where each ends. */
  private packedBytes: Buffer = Buffer.alloc(0);
  private packedLength = 0;
  private packedEnds = new Uint32Array(4096);
  /** Rows in `packedBytes` (their ends are `packedEnds[0, packedRows)`). */
  private packedRows = 0;
  private seq = 0;
  private rows = 0;
  private bytes = 0;
  private finished = false;

  constructor(options: ResultEncoderOptions) {
    const { runId, dataKey, columns } = options;
    if (typeof runId !== 'string' || runId.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'runId is a non-empty string');
    }
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== AEAD_KEY_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `dataKey is ${AEAD_KEY_BYTES} bytes`,
      );
    }
    if (
      !Array.isArray(columns) ||
      columns.length === 0 ||
      !columns.every((name) => typeof name === 'string')
    ) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        'columns is a non-empty string array',
      );
    }
    const target = options.targetChunkBytes ?? DEFAULT_TARGET_CHUNK_BYTES;
    if (!Number.isSafeInteger(target) || target < 1 || target > MAX_CHUNK_PLAINTEXT_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `targetChunkBytes is 1 to ${MAX_CHUNK_PLAINTEXT_BYTES}`,
      );
    }
    const level = options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL;
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'compressionLevel is 0 to 9');
    }
    this.runId = runId;
    this.dataKey = Uint8Array.from(dataKey);
    this.columns = Object.freeze([...columns]);
    this.target = target;
    this.limit = Math.min(target, SEALED_AIM);
    this.level = level;
  }

  /** Rows pushed so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Chunks sealed so far. */
  get chunkCount(): number {
    return this.seq;
  }

  /**
   * Adds one row (values in column order; bigint, Date, Buffer and undefined are converted as the
   * README's "Values" section says). Returns the chunks this row completed: usually none, one when
   * a batch is full, more when a batch had to be split. Throws `result.invalid_value` for a bad row
   * (nothing is added; the encoder stays usable) and `result.row_too_large` for a row that cannot
   * fit in any chunk (the encoder is closed: fail the run).
   */
  push(row: readonly unknown[]): EncodedChunk[] {
    this.checkOpen();
    const { row: values, estimate } = normalizeRow(row, this.columns.length);
    const out: EncodedChunk[] = [];
    try {
      if (this.packedRows > 0) this.flushPacked(out);
      // Seal the batch first if this row would take it over the target, so batches stay near it.
      if (this.pending.length > 0 && (this.pendingEstimate + estimate) * this.scale > this.limit) {
        this.flush(out);
      }
      this.pending.push(values);
      this.pendingEstimate += estimate;
      this.rows++;
      if (this.pendingEstimate * this.scale >= this.limit) this.flush(out);
    } catch (err) {
      // Sealing failed part-way (a row too large): chunks may be lost, so the stream is unusable.
      this.close();
      throw err;
    }
    return out;
  }

  /**
   * Adds rows already packed (see {@link PackedRows}; the caller vouches for their form: the
   * control plane checks every value when it decodes them, as it does for any chunk). Cut into
   * chunks of about `targetChunkBytes` like pushed rows; returns the chunks completed.
   */
  pushPacked(batch: PackedRows): EncodedChunk[] {
    this.checkOpen();
    const out: EncodedChunk[] = [];
    try {
      if (this.pending.length > 0) this.flush(out);
      const { bytes, ends, rowCount } = batch;
      let start = 0;
      let r = 0;
      while (r < rowCount) {
        // The rows from r that still fit under the limit (at least one).
        const room = this.limit - this.packedLength;
        let e = r;
        while (e < rowCount && (ends[e] as number) - start <= room) e++;
        if (e === r && this.packedLength > 0) {
          this.flushPacked(out);
          continue;
        }
        if (e === r) e = r + 1;
        const end = ends[e - 1] as number;
        this.appendPacked(bytes, start, end, ends, r, e);
        this.rows += e - r;
        start = end;
        r = e;
        if (this.packedLength >= this.limit) this.flushPacked(out);
      }
    } catch (err) {
      this.close();
      throw err;
    }
    return out;
  }

  private appendPacked(
    bytes: Uint8Array,
    start: number,
    end: number,
    ends: ArrayLike<number>,
    from: number,
    to: number,
  ): void {
    const n = end - start;
    if (this.packedLength + n > this.packedBytes.length) {
      const next = Buffer.allocUnsafe(
        Math.max(this.packedLength + n, Math.min(this.target, MAX_CHUNK_PLAINTEXT_BYTES) + 64 * 1024),
      );
      this.packedBytes.copy(next, 0, 0, this.packedLength);
      this.packedBytes = next;
    }
    this.packedBytes.set(bytes.subarray(start, end), this.packedLength);
    const shift = this.packedLength - start;
    if (this.packedRows + (to - from) > this.packedEnds.length) {
      const more = new Uint32Array(Math.max(2 * this.packedEnds.length, this.packedRows + (to - from)));
      more.set(this.packedEnds.subarray(0, this.packedRows));
      this.packedEnds = more;
    }
    const packedEnds = this.packedEnds;
    let k = this.packedRows;
    for (let i = from; i < to; i++) packedEnds[k++] = (ends[i] as number) + shift;
    this.packedRows = k;
    this.packedLength += n;
  }

  private flushPacked(out: EncodedChunk[]): void {
    const ends = this.packedEnds.subarray(0, this.packedRows);
    const bytes = this.packedBytes.subarray(0, this.packedLength);
    this.packedRows = 0;
    this.packedLength = 0;
    // The sealed chunk does not keep `bytes` or `ends`: the buffer is written over by the next rows.
    this.sealPacked(bytes, ends, 0, ends.length, out);
  }

  /** Seals packed rows [from, to) as one chunk, or several when one would be too large. */
  private sealPacked(bytes: Buffer, ends: Uint32Array, from: number, to: number, out: EncodedChunk[]): void {
    const start = from === 0 ? 0 : (ends[from - 1] as number);
    const rows = bytes.subarray(start, ends[to - 1] as number);
    const body = packBodyOfPacked(this.seq === 0 ? this.columns : null, to - from, rows);
    if (body.length <= MAX_CHUNK_PLAINTEXT_BYTES && this.sealBody(body, to - from, out)) return;
    if (to - from <= 1) {
      throw new ResultStreamError(
        ResultStreamErrorCode.RowTooLarge,
        `a row does not fit in one chunk (${body.length} bytes of msgpack); the encoder is closed`,
      );
    }
    const half = (from + to) >>> 1;
    this.sealPacked(bytes, ends, from, half, out);
    this.sealPacked(bytes, ends, half, to, out);
  }

  /**
   * Seals the remaining rows and closes the encoder. A result without rows still yields one chunk
   * (seq 0, zero rows) so that the column names always arrive: `chunkCount` is never 0.
   */
  finish(): { chunks: EncodedChunk[]; summary: ResultSummary } {
    this.checkOpen();
    const chunks: EncodedChunk[] = [];
    try {
      if (this.packedRows > 0) this.flushPacked(chunks);
      if (this.pending.length > 0 || this.seq === 0) this.flush(chunks);
    } finally {
      this.close();
    }
    return {
      chunks,
      summary: {
        rowCount: this.rows,
        chunkCount: this.seq,
        byteCount: this.bytes,
        resultSha256: this.digest.digest('hex'),
      },
    };
  }

  private close(): void {
    this.finished = true;
    this.pending = [];
    this.packedRows = 0;
    this.packedLength = 0;
    this.dataKey.fill(0);
  }

  private checkOpen(): void {
    if (this.finished) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidState, 'the encoder is finished or failed');
    }
  }

  private flush(out: EncodedChunk[]): void {
    const rows = this.pending;
    const estimate = this.pendingEstimate;
    this.pending = [];
    this.pendingEstimate = 0;
    const bodyBytes = this.seal(rows, out);
    if (estimate > 0 && rows.length > 0) {
      this.scale = Math.min(8, Math.max(0.125, bodyBytes / estimate));
    }
  }

  /** Seals `rows` as one chunk, or as several when one would be too large; returns the body bytes. */
  private seal(rows: WireValue[][], out: EncodedChunk[]): number {
    const body = packBody(this.seq === 0 ? this.columns : null, rows);
    if (body.length > MAX_CHUNK_PLAINTEXT_BYTES) return this.split(rows, out, body.length);
    if (!this.sealBody(body, rows.length, out)) return this.split(rows, out, body.length);
    return body.length;
  }

  /** Compresses and seals one body as the next chunk; false (nothing done) when it would be too large. */
  private sealBody(body: Buffer, rowCount: number, out: EncodedChunk[]): boolean {
    const seq = this.seq;
    let codec = CODEC_STORED;
    let data: Buffer = body;
    if (this.level > 0) {
      const deflated = deflateRawSync(body, { level: this.level });
      if (deflated.length < body.length) {
        codec = CODEC_DEFLATE_RAW;
        data = deflated;
      }
    }
    const plaintext = Buffer.allocUnsafe(1 + data.length);
    plaintext[0] = codec;
    data.copy(plaintext, 1);
    const bytes = encryptChunk(plaintext, this.dataKey, { runId: this.runId, seq });
    if (bytes.length > MAX_CHUNK_BYTES) return false;
    this.digest.update(body);
    if (body.length > 0) {
      this.limit = Math.max(
        1,
        Math.min(this.target, Math.floor((SEALED_AIM * body.length) / plaintext.length)),
      );
    }
    this.seq = seq + 1;
    this.bytes += bytes.length;
    out.push({
      seq,
      bytes,
      sha256: sha256Hex(bytes),
      byteLength: bytes.length,
      rowCount,
      plainSha256: sha256Hex(plaintext),
    });
    return true;
  }

  private split(rows: WireValue[][], out: EncodedChunk[], bodyBytes: number): number {
    if (rows.length <= 1) {
      throw new ResultStreamError(
        ResultStreamErrorCode.RowTooLarge,
        `a row does not fit in one chunk (${bodyBytes} bytes of msgpack); the encoder is closed`,
      );
    }
    const half = rows.length >>> 1;
    this.seal(rows.slice(0, half), out);
    this.seal(rows.slice(half), out);
    return bodyBytes;
  }
}
