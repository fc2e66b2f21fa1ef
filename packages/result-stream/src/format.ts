import { Packr, Unpackr } from 'msgpackr';
import { ResultStreamError, ResultStreamErrorCode } from './errors.js';

/**
 * Largest encrypted chunk in bytes. The same value as `MAX_CHUNK_BYTES` in `@keystage/protocol`
 * (kept in step by a test; this package does not depend on the protocol package, which pulls zod).
 */
export const MAX_CHUNK_BYTES = 524_288;
/** Most chunks the cloud may let one run have in flight; `MAX_CHUNK_CREDITS` of the protocol. */
export const MAX_CHUNK_CREDITS = 256;

/** Version of the chunk content (the first element of every chunk's msgpack array). */
export const RESULT_FORMAT_VERSION = 1;
/** Codec byte: the msgpack body follows as is. */
export const CODEC_STORED = 0x00;
/** Codec byte: the msgpack body follows compressed with raw DEFLATE (RFC 1951, no zlib/gzip header). */
export const CODEC_DEFLATE_RAW = 0x01;

/**
 * Uncompressed size the encoder aims for per chunk (fewer, larger chunks: each costs the control
 * plane a frame, a write, a flush and two statements — ≈ 6 ms here). 3 MiB of typical MIS rows
 * deflates to ≈ 0.45 MiB, just under a chunk's limit (the encoder aims lower for rows that compress
 * worse); a million attendance marks are 15 chunks rather than 42.
 */
export const DEFAULT_TARGET_CHUNK_BYTES = 3 * 1024 * 1024;
/**
 * Largest uncompressed body of one chunk. The decoder refuses to inflate beyond it (zip bomb guard)
 * and the encoder never produces more, so one row can be at most this large.
 */
export const MAX_CHUNK_PLAINTEXT_BYTES = 16 * 1024 * 1024;
/** zlib level used by default; level 1 vs 6 is measured in docs/benchmarks-result-stream.md. */
export const DEFAULT_COMPRESSION_LEVEL = 1;

/** A value as it travels in a chunk, after {@link normalizeRow}. */
export type WireValue = string | number | boolean | null;

/** What the encoder accepts in a row. See {@link normalizeRow} for how each is carried. */
export type RowValue = string | number | boolean | null | undefined | bigint | Date | Uint8Array;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * Normalises one row in place of a copy and returns it together with a size estimate in bytes
 * (UTF-16 code units for strings, so it undercounts non-ASCII text; the encoder corrects the scale
 * from each sealed chunk). The row is copied only when a value has to change.
 *
 * - string, boolean, null: as is (a string with lone surrogates gets U+FFFD for each, as UTF-8 can
 *   not carry them); undefined becomes null;
 * - number: as is (msgpack int or float64; NaN and ±Infinity survive, -0 becomes 0);
 * - bigint: a number when within ±(2^53 − 1), otherwise its decimal string;
 * - Date: its ISO 8601 string (`toISOString()`, UTC, milliseconds); an invalid Date is refused;
 * - Buffer / Uint8Array: standard base64 string with padding;
 * - anything else (objects, arrays, symbols, functions) is refused with `result.invalid_value`.
 */
export function normalizeRow(row: unknown, columnCount: number): { row: WireValue[]; estimate: number } {
  if (!Array.isArray(row)) {
    throw new ResultStreamError(ResultStreamErrorCode.InvalidValue, 'a row is an array of values');
  }
  if (row.length !== columnCount) {
    throw new ResultStreamError(
      ResultStreamErrorCode.InvalidValue,
      `a row has ${row.length} values for ${columnCount} columns`,
    );
  }
  let out: unknown[] = row;
  let estimate = 3;
  for (let i = 0; i < columnCount; i++) {
    const value: unknown = out[i];
    switch (typeof value) {
      case 'string':
        estimate += value.length + 3;
        if (!(value as WellFormed).isWellFormed()) {
          if (out === row) out = row.slice();
          out[i] = (value as WellFormed).toWellFormed();
        }
        break;
      case 'number':
        estimate += 9;
        break;
      case 'boolean':
        estimate += 1;
        break;
      case 'undefined':
        estimate += 1;
        if (out === row) out = row.slice();
        out[i] = null;
        break;
      case 'bigint': {
        estimate += 21;
        if (out === row) out = row.slice();
        out[i] = value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
        break;
      }
      case 'object': {
        if (value === null) {
          estimate += 1;
          break;
        }
        if (out === row) out = row.slice();
        if (value instanceof Date) {
          if (Number.isNaN(value.getTime())) {
            throw new ResultStreamError(ResultStreamErrorCode.InvalidValue, `column ${i}: invalid Date`);
          }
          out[i] = value.toISOString();
          estimate += 27;
        } else if (value instanceof Uint8Array) {
          const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
          out[i] = text;
          estimate += text.length + 5;
        } else {
          throw new ResultStreamError(
            ResultStreamErrorCode.InvalidValue,
            `column ${i}: unsupported value type ${value.constructor?.name ?? 'object'}`,
          );
        }
        break;
      }
      default:
        throw new ResultStreamError(
          ResultStreamErrorCode.InvalidValue,
          `column ${i}: unsupported value type ${typeof value}`,
        );
    }
  }
  return { row: out as WireValue[], estimate };
}

// Plain msgpack only: no records/structures extension, nothing msgpackr-specific on the wire.
const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * The msgpack body of one chunk: `[RESULT_FORMAT_VERSION, columns | null, rows]`. `columns` is the
 * array of column names in chunk 0 and nil in every later chunk.
 */
export function packBody(columns: readonly string[] | null, rows: readonly WireValue[][]): Buffer {
  return packr.pack([RESULT_FORMAT_VERSION, columns, rows]);
}

/**
 * The same body as {@link packBody} for rows already packed one by one (each a msgpack array of
 * wire values, as `packr` writes them), given back to back in `rows`.
 */
export function packBodyOfPacked(
  columns: readonly string[] | null,
  rowCount: number,
  rows: Uint8Array,
): Buffer {
  // `[version, columns]` packed, its header then widened from 2 elements to 3.
  const head = packr.pack([RESULT_FORMAT_VERSION, columns]);
  const count = rowCount < 16 ? 1 : rowCount < 0x10000 ? 3 : 5;
  const body = Buffer.allocUnsafe(head.length + count + rows.length);
  head.copy(body, 0);
  body[0] = 0x93;
  let o = head.length;
  if (count === 1) body[o++] = 0x90 | rowCount;
  else if (count === 3) {
    body[o++] = 0xdc;
    body.writeUInt16BE(rowCount, o);
    o += 2;
  } else {
    body[o++] = 0xdd;
    body.writeUInt32BE(rowCount, o);
    o += 4;
  }
  body.set(rows, o);
  return body;
}

/** The parts of a decoded and checked body. */
export interface DecodedBody {
  columns: string[] | null;
  rows: WireValue[][];
}

/**
 * Decodes and checks a chunk body: the format version, column names in chunk 0 only, every row an
 * array of `columnCount` strings, numbers, booleans or nulls. `columnCount` is undefined for chunk 0
 * (it is read from the body).
 */
export function unpackBody(body: Uint8Array, isFirst: boolean, columnCount: number | undefined): DecodedBody {
  let value: unknown;
  try {
    value = unpackr.unpack(body);
  } catch (cause) {
    throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, 'chunk body is not msgpack', { cause });
  }
  if (!Array.isArray(value) || value.length !== 3) {
    throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, 'chunk body is not a 3-element array');
  }
  const [version, columns, rows] = value as [unknown, unknown, unknown];
  if (version !== RESULT_FORMAT_VERSION) {
    throw new ResultStreamError(
      ResultStreamErrorCode.ChunkUnsupportedFormat,
      `unknown result format version ${String(version)}`,
    );
  }
  let count = columnCount;
  if (isFirst) {
    if (
      !Array.isArray(columns) ||
      columns.length === 0 ||
      !columns.every((name) => typeof name === 'string')
    ) {
      throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, 'chunk 0 must carry the column names');
    }
    count = columns.length;
  } else if (columns !== null) {
    throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, 'only chunk 0 carries column names');
  }
  if (!Array.isArray(rows)) {
    throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, 'chunk rows are not an array');
  }
  for (let r = 0; r < rows.length; r++) {
    const row: unknown = rows[r];
    if (!Array.isArray(row) || row.length !== count) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkCorrupt,
        `row ${r} does not have ${count} values`,
      );
    }
    for (let c = 0; c < row.length; c++) {
      const v: unknown = row[c];
      const t = typeof v;
      if (v !== null && t !== 'string' && t !== 'number' && t !== 'boolean') {
        throw new ResultStreamError(
          ResultStreamErrorCode.ChunkCorrupt,
          `row ${r} column ${c}: unexpected ${t}`,
        );
      }
    }
  }
  return { columns: isFirst ? (columns as string[]) : null, rows: rows as WireValue[][] };
}
