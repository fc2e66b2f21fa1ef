import { isUtf8 } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { AEAD_KEY_BYTES, CryptoError, decryptChunk, sha256Hex } from '@keystage/crypto';
import type { ResultSummary } from './encoder.js';
import { ResultStreamError, ResultStreamErrorCode } from './errors.js';
import {
  CODEC_DEFLATE_RAW,
  CODEC_STORED,
  MAX_CHUNK_BYTES,
  MAX_CHUNK_PLAINTEXT_BYTES,
  RESULT_FORMAT_VERSION,
  unpackBody,
  type WireValue,
} from './format.js';

export interface ResultDecoderOptions {
  /** The run the chunks must belong to. */
  runId: string;
  /** The run's 32-byte data key (unwrapped from `job.accept`). */
  dataKey: Uint8Array;
  /**
   * Most bytes one chunk may inflate to (default and maximum 16 MiB). Inflating stops and the
   * chunk is refused with `chunk.inflate_limit` as soon as the output passes it.
   */
  maxChunkPlaintextBytes?: number;
}

/** The outcome of {@link ResultDecoder.open}. */
export type OpenedChunk =
  | {
      status: 'opened';
      seq: number;
      rows: WireValue[][];
      /** The column names: present on chunk 0 only. */
      columns?: string[];
    }
  | {
      /** A chunk below the next expected seq: already opened, ignore it (a resend after reconnect). */
      status: 'duplicate';
      seq: number;
    };

/**
 * The rows of a chunk as raw cells instead of values (see {@link ResultDecoder.openCells}). Cell
 * `r * columnCount + c` is column `c` of row `r`. Its kind: 0 null, 1 false, 2 true, 3 a number (in
 * `numbers`), 4 a string, whose UTF-8 bytes are `bytes[starts[i], ends[i])` — exactly the bytes
 * `Buffer.from(value, 'utf8')` gives for the string {@link ResultDecoder.open} would decode.
 * The same shape as `RowCells` of `@keystage/delta`, which adds them to a snapshot.
 */
export interface RowCells {
  readonly rowCount: number;
  readonly columnCount: number;
  readonly kinds: Uint8Array;
  readonly numbers: Float64Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly bytes: Uint8Array;
}

/** The outcome of {@link ResultDecoder.openCells}. */
export type OpenedCells =
  | { status: 'opened'; seq: number; cells: RowCells; columns?: string[] }
  | { status: 'duplicate'; seq: number };

/** What {@link ResultDecoder.finish} verified. */
export interface VerifiedResult extends ResultSummary {
  columns: string[];
}

/**
 * Control-plane side: opens the chunks of one run, in seq order, and verifies the whole stream at
 * the end. Each chunk is checked in this order: size, sha256 of the bytes, authenticated decryption
 * with the (runId, seq) associated data, the codec byte, inflating with a hard output limit, the
 * msgpack body and its shape. A chunk that fails any check leaves the decoder unchanged (the sender
 * may resend it); the caller decides whether to fail the run.
 */
export class ResultDecoder {
  readonly runId: string;
  private readonly dataKey: Uint8Array;
  private readonly maxPlaintext: number;
  private readonly digest: Hash = createHash('sha256');
  private next = 0;
  private rows = 0;
  private bytes = 0;
  private columnNames: string[] | undefined;
  private finished = false;
  private readonly cellArrays = new CellArrays();

  constructor(options: ResultDecoderOptions) {
    const { runId, dataKey } = options;
    if (typeof runId !== 'string' || runId.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'runId is a non-empty string');
    }
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== AEAD_KEY_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `dataKey is ${AEAD_KEY_BYTES} bytes`,
      );
    }
    const max = options.maxChunkPlaintextBytes ?? MAX_CHUNK_PLAINTEXT_BYTES;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_CHUNK_PLAINTEXT_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `maxChunkPlaintextBytes is 1 to ${MAX_CHUNK_PLAINTEXT_BYTES}`,
      );
    }
    this.runId = runId;
    this.dataKey = Uint8Array.from(dataKey);
    this.maxPlaintext = max;
  }

  /** The seq the next `open` expects (= chunks opened so far). */
  get nextSeq(): number {
    return this.next;
  }

  /** Rows decoded so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** The column names, once chunk 0 is opened. */
  get columns(): readonly string[] | undefined {
    return this.columnNames;
  }

  /**
   * Opens chunk `seq`. A seq below {@link nextSeq} returns `{ status: 'duplicate' }` without looking
   * at the bytes; a seq above it throws `chunk.gap`. Other failures: `chunk.size`,
   * `chunk.digest_mismatch`, `chunk.decrypt_failed` (another run, another position, another key or
   * altered bytes), `chunk.inflate_limit`, `chunk.unsupported_format`, `chunk.corrupt`.
   *
   * `sha256` is the digest the sender announced. Leave it out only for bytes that were checked
   * against it when they arrived and kept in authenticated storage since: hashing them again would
   * only compare the digest with itself (decryption still authenticates every byte).
   */
  open(seq: number, bytes: Uint8Array, sha256?: string): OpenedChunk {
    const body = this.openBody(seq, bytes, sha256);
    if (body === undefined) return { status: 'duplicate', seq };
    const decoded = unpackBody(body, seq === 0, this.columnNames?.length);
    this.commit(seq, bytes, body, decoded.rows.length, decoded.columns);
    if (decoded.columns) return { status: 'opened', seq, rows: decoded.rows, columns: decoded.columns };
    return { status: 'opened', seq, rows: decoded.rows };
  }

  /**
   * {@link open} with the rows as {@link RowCells}: the same checks, errors and values, but read
   * straight from the msgpack body, without a JS value per cell (several times cheaper for a large
   * result). A body holding anything the direct read does not take (int64, float32, a string that is
   * not well-formed UTF-8 or starts with a byte-order mark…) is decoded as by `open` and turned into
   * cells. The cells' arrays are reused by the next `openCells`: use them before calling it again.
   */
  openCells(seq: number, bytes: Uint8Array, sha256?: string): OpenedCells {
    const body = this.openBody(seq, bytes, sha256);
    if (body === undefined) return { status: 'duplicate', seq };
    const isFirst = seq === 0;
    let decoded = scanCells(body, isFirst, this.columnNames?.length, this.cellArrays);
    if (decoded === undefined) {
      const { columns, rows } = unpackBody(body, isFirst, this.columnNames?.length);
      const columnCount = columns?.length ?? this.columnNames!.length;
      decoded = { columns, cells: rowsToCells(rows, columnCount, this.cellArrays) };
    }
    const { columns, cells } = decoded;
    this.commit(seq, bytes, body, cells.rowCount, columns);
    if (columns) return { status: 'opened', seq, cells, columns };
    return { status: 'opened', seq, cells };
  }

  /**
   * The checked, inflated body of chunk `seq`, or undefined for a duplicate (see {@link open} for
   * the checks). Changes nothing: {@link commit} does once the body is decoded.
   */
  private openBody(seq: number, bytes: Uint8Array, sha256: string | undefined): Buffer | undefined {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'seq is a non-negative integer');
    }
    if (seq < this.next) return undefined;
    if (this.finished) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidState, 'the result is already finished');
    }
    if (seq > this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkGap,
        `chunk ${seq} arrived while chunk ${this.next} is expected`,
      );
    }
    if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_CHUNK_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkSize,
        `a chunk is 1 to ${MAX_CHUNK_BYTES} bytes`,
      );
    }
    if (sha256 !== undefined && (typeof sha256 !== 'string' || sha256Hex(bytes) !== sha256.toLowerCase())) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkDigestMismatch,
        `chunk ${seq} does not match its sha256`,
      );
    }
    let plaintext: Buffer;
    try {
      plaintext = decryptChunk(bytes, this.dataKey, { runId: this.runId, seq });
    } catch (cause) {
      if (!(cause instanceof CryptoError)) throw cause;
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkDecryptFailed,
        `chunk ${seq} did not authenticate for this run and position`,
        { cause },
      );
    }
    return this.inflate(seq, plaintext);
  }

  /** Everything checked: takes chunk `seq` into the stream. */
  private commit(seq: number, bytes: Uint8Array, body: Buffer, rows: number, columns: string[] | null): void {
    this.digest.update(body);
    this.next = seq + 1;
    this.rows += rows;
    this.bytes += bytes.length;
    if (columns) this.columnNames = columns;
  }

  /**
   * Checks the stream against the agent's `run.complete` figures: `result.incomplete` while chunks
   * are missing (wait for them, then call again), `result.chunk_count_mismatch`,
   * `result.row_count_mismatch`, `result.byte_count_mismatch`, `result.digest_mismatch`. A failed
   * check changes nothing; after a successful one the decoder accepts no more chunks.
   */
  finish(summary: ResultSummary): VerifiedResult {
    const { rowCount, chunkCount, byteCount, resultSha256 } = summary;
    if (this.next === 0 || this.columnNames === undefined) {
      if (Number.isSafeInteger(chunkCount) && chunkCount > 0) {
        throw new ResultStreamError(ResultStreamErrorCode.Incomplete, `0 of ${chunkCount} chunks opened`);
      }
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkCountMismatch,
        'a result has at least one chunk (chunk 0 carries the columns)',
      );
    }
    if (chunkCount > this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.Incomplete,
        `${this.next} of ${chunkCount} chunks opened`,
      );
    }
    if (chunkCount !== this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkCountMismatch,
        `${this.next} chunks opened, the summary says ${chunkCount}`,
      );
    }
    if (rowCount !== this.rows) {
      throw new ResultStreamError(
        ResultStreamErrorCode.RowCountMismatch,
        `${this.rows} rows decoded, the summary says ${rowCount}`,
      );
    }
    if (byteCount !== this.bytes) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ByteCountMismatch,
        `${this.bytes} chunk bytes received, the summary says ${byteCount}`,
      );
    }
    const digest = this.digest.copy().digest('hex');
    if (typeof resultSha256 !== 'string' || resultSha256.toLowerCase() !== digest) {
      throw new ResultStreamError(ResultStreamErrorCode.DigestMismatch, 'the result digest does not match');
    }
    this.finished = true;
    this.dataKey.fill(0);
    return { rowCount, chunkCount, byteCount, resultSha256: digest, columns: this.columnNames };
  }

  private inflate(seq: number, plaintext: Buffer): Buffer {
    const codec = plaintext[0];
    const data = plaintext.subarray(1);
    if (codec === CODEC_STORED) {
      if (data.length > this.maxPlaintext) {
        throw new ResultStreamError(
          ResultStreamErrorCode.ChunkInflateLimit,
          `chunk ${seq} is over the limit`,
        );
      }
      return data;
    }
    if (codec !== CODEC_DEFLATE_RAW) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkUnsupportedFormat,
        `chunk ${seq} has unknown codec ${String(codec)}`,
      );
    }
    try {
      return inflateRawSync(data, { maxOutputLength: this.maxPlaintext });
    } catch (cause) {
      if ((cause as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ResultStreamError(
          ResultStreamErrorCode.ChunkInflateLimit,
          `chunk ${seq} inflates beyond ${this.maxPlaintext} bytes`,
          { cause },
        );
      }
      throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, `chunk ${seq} does not inflate`, {
        cause,
      });
    }
  }
}

/**
 * The arrays of a decoder's {@link RowCells}, reused from chunk to chunk (a large result would
 * otherwise allocate hundreds of megabytes of them). Every cell's kind is written as it is read;
 * `numbers`, `starts` and `ends` only where its kind uses them.
 */
class CellArrays {
  kinds = new Uint8Array(0);
  numbers = new Float64Array(0);
  starts = new Int32Array(0);
  ends = new Int32Array(0);

  /** Room for `count` cells. */
  reserve(count: number): this {
    if (this.kinds.length < count) {
      const n = Math.max(count, 2 * this.kinds.length);
      this.kinds = new Uint8Array(n);
      this.numbers = new Float64Array(n);
      this.starts = new Int32Array(n);
      this.ends = new Int32Array(n);
    }
    return this;
  }
}

const CELL_NULL = 0;
const CELL_FALSE = 1;
const CELL_TRUE = 2;
const CELL_NUMBER = 3;
const CELL_STRING = 4;

/** Where the header just read by {@link arrayHeader} or {@link stringHeader} ends. */
let headerEnd = 0;

/** The length of the msgpack array whose header is at body[p], or -1 if there is none. */
function arrayHeader(body: Buffer, p: number): number {
  const t = body[p];
  if (t === undefined) return -1;
  if (t >= 0x90 && t <= 0x9f) {
    headerEnd = p + 1;
    return t & 0x0f;
  }
  if (t === 0xdc && p + 3 <= body.length) {
    headerEnd = p + 3;
    return body.readUInt16BE(p + 1);
  }
  if (t === 0xdd && p + 5 <= body.length) {
    headerEnd = p + 5;
    return body.readUInt32BE(p + 1);
  }
  return -1;
}

/** The byte length of the msgpack string whose header is at body[p], or -1 if there is none. */
function stringHeader(body: Buffer, p: number): number {
  const t = body[p];
  if (t === undefined) return -1;
  if (t >= 0xa0 && t <= 0xbf) {
    headerEnd = p + 1;
    return t & 0x1f;
  }
  if (t === 0xd9 && p + 2 <= body.length) {
    headerEnd = p + 2;
    return body[p + 1]!;
  }
  if (t === 0xda && p + 3 <= body.length) {
    headerEnd = p + 3;
    return body.readUInt16BE(p + 1);
  }
  if (t === 0xdb && p + 5 <= body.length) {
    headerEnd = p + 5;
    return body.readUInt32BE(p + 1);
  }
  return -1;
}

/**
 * True when body[start, end) decodes to the same string whichever way msgpackr reads it, and that
 * string's UTF-8 is these bytes: ASCII, or well-formed UTF-8 not starting with a byte-order mark
 * (which a TextDecoder would drop).
 */
function plainUtf8(body: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (body[i]! >= 0x80) {
      const bom = body[start] === 0xef && body[start + 1] === 0xbb && body[start + 2] === 0xbf;
      return !bom && isUtf8(body.subarray(start, end));
    }
  }
  return true;
}

/**
 * Reads a chunk body `[1, columns | null, rows]` (see `unpackBody`) straight into cells, for the
 * bodies whose every value it reads exactly as msgpackr does: nil, booleans, integers up to 32 bits,
 * float64, and strings that {@link plainUtf8} accepts; column names in ASCII. Anything else — other
 * types, and every malformed body — gives undefined, for `unpackBody` to decode or refuse.
 */
function scanCells(
  body: Buffer,
  isFirst: boolean,
  columnCount: number | undefined,
  arrays: CellArrays,
): { columns: string[] | null; cells: RowCells } | undefined {
  const end = body.length;
  if (end < 3 || body[0] !== 0x93 || body[1] !== RESULT_FORMAT_VERSION) return undefined;
  let p = 2;
  let columns: string[] | null = null;
  let count: number;
  if (isFirst) {
    const n = arrayHeader(body, p);
    if (n <= 0) return undefined;
    p = headerEnd;
    columns = [];
    for (let i = 0; i < n; i++) {
      const length = stringHeader(body, p);
      if (length < 0 || headerEnd + length > end) return undefined;
      for (let j = headerEnd; j < headerEnd + length; j++) if (body[j]! >= 0x80) return undefined;
      columns.push(body.toString('latin1', headerEnd, headerEnd + length));
      p = headerEnd + length;
    }
    count = n;
  } else {
    if (body[p] !== 0xc0 || columnCount === undefined) return undefined;
    p++;
    count = columnCount;
  }
  const rowCount = arrayHeader(body, p);
  // Each row takes a header byte and a byte per value at least.
  if (rowCount < 0 || rowCount * (1 + count) > end - headerEnd) return undefined;
  p = headerEnd;
  const { kinds, numbers, starts, ends } = arrays.reserve(rowCount * count);
  const fixRow = count < 16 ? 0x90 | count : -1;
  let cell = 0;
  for (let r = 0; r < rowCount; r++) {
    if (body[p] === fixRow) p++;
    else if (arrayHeader(body, p) === count) p = headerEnd;
    else return undefined;
    for (let c = 0; c < count; c++, cell++) {
      if (p >= end) return undefined;
      const b = body[p]!;
      let length = -1;
      if (b <= 0x7f) {
        kinds[cell] = CELL_NUMBER;
        numbers[cell] = b;
        p++;
      } else if (b >= 0xe0) {
        kinds[cell] = CELL_NUMBER;
        numbers[cell] = b - 0x100;
        p++;
      } else if (b >= 0xa0 && b <= 0xbf) {
        length = b & 0x1f;
        p++;
      } else {
        let size: number;
        switch (b) {
          case 0xc0:
            kinds[cell] = CELL_NULL;
            size = 1;
            break;
          case 0xc2:
            kinds[cell] = CELL_FALSE;
            size = 1;
            break;
          case 0xc3:
            kinds[cell] = CELL_TRUE;
            size = 1;
            break;
          case 0xcc:
          case 0xd0:
            size = 2;
            break;
          case 0xcd:
          case 0xd1:
            size = 3;
            break;
          case 0xce:
          case 0xd2:
            size = 5;
            break;
          case 0xcb:
            size = 9;
            break;
          case 0xd9:
          case 0xda:
          case 0xdb:
            length = stringHeader(body, p);
            size = headerEnd - p;
            break;
          default:
            return undefined;
        }
        if (p + size > end) return undefined;
        if (b >= 0xcb && b <= 0xd2) {
          kinds[cell] = CELL_NUMBER;
          numbers[cell] =
            b === 0xcc
              ? body[p + 1]!
              : b === 0xcd
                ? body.readUInt16BE(p + 1)
                : b === 0xce
                  ? body.readUInt32BE(p + 1)
                  : b === 0xd0
                    ? body.readInt8(p + 1)
                    : b === 0xd1
                      ? body.readInt16BE(p + 1)
                      : b === 0xd2
                        ? body.readInt32BE(p + 1)
                        : body.readDoubleBE(p + 1);
        }
        p += size;
      }
      if (length >= 0) {
        if (p + length > end || !plainUtf8(body, p, p + length)) return undefined;
        kinds[cell] = CELL_STRING;
        starts[cell] = p;
        p += length;
        ends[cell] = p;
      }
    }
  }
  if (p !== end) return undefined;
  return { columns, cells: { rowCount, columnCount: count, kinds, numbers, starts, ends, bytes: body } };
}

/** Decoded rows (checked by `unpackBody`) as cells. */
function rowsToCells(rows: WireValue[][], columnCount: number, arrays: CellArrays): RowCells {
  const { kinds, numbers, starts, ends } = arrays.reserve(rows.length * columnCount);
  let size = 0;
  for (const row of rows)
    for (const v of row) if (typeof v === 'string') size += Buffer.byteLength(v, 'utf8');
  const bytes = Buffer.allocUnsafe(size);
  let at = 0;
  let cell = 0;
  for (const row of rows) {
    for (const v of row) {
      if (typeof v === 'string') {
        kinds[cell] = CELL_STRING;
        starts[cell] = at;
        at += bytes.write(v, at, 'utf8');
        ends[cell] = at;
      } else if (typeof v === 'number') {
        kinds[cell] = CELL_NUMBER;
        numbers[cell] = v;
      } else {
        kinds[cell] = v === null ? CELL_NULL : v ? CELL_TRUE : CELL_FALSE;
      }
      cell++;
    }
  }
  return { rowCount: rows.length, columnCount, kinds, numbers, starts, ends, bytes };
}
