import { hash } from 'node:crypto';
import { DeltaError, DeltaErrorCode } from './errors.js';

/**
 * One cell as the cloud receives it: dates and datetimes are ISO strings, integers beyond 2^53 are
 * strings. `1`, `"1"`, `true` and `null` are different values everywhere in this package.
 */
export type DeltaValue = string | number | boolean | null;

/** One row: the values in column order. */
export type Row = readonly DeltaValue[];

// --- Record layout (inside a snapshot block) -------------------------------------------------------
//   u32 LE record length (all bytes of the record, this field included)
//   u16 LE key length
//   16 bytes digest
//   key bytes (byte-comparable key encoding)
//   row bytes (canonical value encoding of every column, in column order)

export const KEY_LENGTH_OFFSET = 4;
export const DIGEST_OFFSET = 6;
export const DIGEST_BYTES = 16;
export const KEY_OFFSET = DIGEST_OFFSET + DIGEST_BYTES;
export const MAX_KEY_BYTES = 0xffff;

/** Name of the digest written in snapshot headers: SHA-256 of the row encoding, first 16 bytes. */
export const DIGEST_ALGORITHM = 'sha256-128';

// --- Canonical row value encoding (also the digest input) -----------------------------------------
const V_NULL = 0x00;
const V_FALSE = 0x01;
const V_TRUE = 0x02;
/** An integer in [-2^31, 2^31): 4 bytes two's complement, little-endian. -0 is written as 0. */
const V_INT32 = 0x03;
/** Any other finite number: IEEE 754 float64, little-endian. */
const V_FLOAT64 = 0x04;
/** LEB128 byte length, then UTF-8 bytes. */
const V_STRING = 0x05;

// --- Byte-comparable key encoding: comparing the bytes compares the key tuples ----------------------
const K_NULL = 0x01;
const K_FALSE = 0x02;
const K_TRUE = 0x03;
/** float64, big-endian, sign bit flipped for >= 0 and every bit flipped for < 0 (so bytes sort numerically). */
const K_NUMBER = 0x04;
/** UTF-8 bytes with 0x00 written as 0x00 0xFF, then a 0x00 terminator (so "a" < "a\0" < "ab"). */
const K_STRING = 0x05;

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// f64b index of byte i of the little-endian representation.
const X0 = LE ? 0 : 7;
const X1 = LE ? 1 : 6;
const X2 = LE ? 2 : 5;
const X3 = LE ? 3 : 4;
const X4 = LE ? 4 : 3;
const X5 = LE ? 5 : 2;
const X6 = LE ? 6 : 1;
const X7 = LE ? 7 : 0;

function invalidRow(message: string): DeltaError {
  return new DeltaError(DeltaErrorCode.InvalidRow, message);
}

/** Upper bound of the bytes one value takes in the row encoding, and in the key encoding. */
function valueBound(v: unknown, columns: readonly string[], i: number): number {
  switch (typeof v) {
    case 'string':
      return 3 * v.length + 6;
    case 'number':
      if (!Number.isFinite(v))
        throw invalidRow(`column ${JSON.stringify(columns[i])}: ${v} is not a finite number`);
      return 9;
    case 'boolean':
      return 1;
    default:
      if (v === null) return 1;
      throw invalidRow(
        `column ${JSON.stringify(columns[i])}: a value of type ${v === undefined ? 'undefined' : typeof v} ` +
          'is not supported (string | number | boolean | null)',
      );
  }
}

/**
 * Validates `row` and returns an upper bound of its encoded record size. Throws
 * `delta.invalid_row` for a row of the wrong length or with a value it cannot encode.
 */
export function recordBound(row: Row, columns: readonly string[], keyMask: Uint8Array): number {
  const n = columns.length;
  if (!Array.isArray(row) || row.length !== n) {
    throw invalidRow(
      Array.isArray(row)
        ? `a row has ${row.length} values; expected ${n}`
        : 'a row must be an array of values',
    );
  }
  let bound = KEY_OFFSET;
  for (let i = 0; i < n; i++) {
    const b = valueBound(row[i], columns, i);
    bound += keyMask[i] === 1 ? 2 * b : b;
  }
  return bound;
}

function writeVarint(out: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[p] = n;
  return p + 1;
}

function writeRowString(out: Buffer, p: number, s: string): number {
  out[p] = V_STRING;
  const n = s.length;
  if (n < 0x80) {
    // ASCII fast path: one byte per character, and the length fits one varint byte.
    let q = p + 2;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[q++] = c;
    }
    if (i === n) {
      out[p + 1] = n;
      return q;
    }
  }
  const len = Buffer.byteLength(s, 'utf8');
  const q = writeVarint(out, p + 1, len);
  out.write(s, q, len, 'utf8');
  return q + len;
}

/** Writes one value in the canonical row encoding at `p`; returns the end offset. */
export function writeRowValue(out: Buffer, p: number, v: DeltaValue): number {
  switch (typeof v) {
    case 'string':
      return writeRowString(out, p, v);
    case 'number':
      return writeRowNumber(out, p, v);
    case 'boolean':
      out[p] = v ? V_TRUE : V_FALSE;
      return p + 1;
    default:
      out[p] = V_NULL;
      return p + 1;
  }
}

function writeRowNumber(out: Buffer, p: number, v: number): number {
  if ((v | 0) === v) {
    out[p] = V_INT32;
    out[p + 1] = v & 0xff;
    out[p + 2] = (v >> 8) & 0xff;
    out[p + 3] = (v >> 16) & 0xff;
    out[p + 4] = (v >>> 24) & 0xff;
    return p + 5;
  }
  out[p] = V_FLOAT64;
  f64[0] = v;
  out[p + 1] = f64b[X0]!;
  out[p + 2] = f64b[X1]!;
  out[p + 3] = f64b[X2]!;
  out[p + 4] = f64b[X3]!;
  out[p + 5] = f64b[X4]!;
  out[p + 6] = f64b[X5]!;
  out[p + 7] = f64b[X6]!;
  out[p + 8] = f64b[X7]!;
  return p + 9;
}

function writeKeyStringSlow(out: Buffer, p: number, s: string, from: number): number {
  const bytes = Buffer.from(s.slice(from), 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) {
      out[p++] = 0;
      out[p++] = 0xff;
    } else {
      out[p++] = b;
    }
  }
  out[p] = 0;
  return p + 1;
}

/** Writes one value in the byte-comparable key encoding at `p`; returns the end offset. */
export function writeKeyValue(out: Buffer, p: number, v: DeltaValue): number {
  if (typeof v === 'string') {
    out[p++] = K_STRING;
    const n = v.length;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) return writeKeyStringSlow(out, p, v, i);
      if (c === 0) {
        out[p++] = 0;
        out[p++] = 0xff;
      } else {
        out[p++] = c;
      }
    }
    out[p] = 0;
    return p + 1;
  }
  if (typeof v === 'number') {
    out[p] = K_NUMBER;
    f64[0] = v === 0 ? 0 : v; // -0 and 0 are one key
    if ((f64b[X7]! & 0x80) !== 0) {
      out[p + 1] = ~f64b[X7]! & 0xff;
      out[p + 2] = ~f64b[X6]! & 0xff;
      out[p + 3] = ~f64b[X5]! & 0xff;
      out[p + 4] = ~f64b[X4]! & 0xff;
      out[p + 5] = ~f64b[X3]! & 0xff;
      out[p + 6] = ~f64b[X2]! & 0xff;
      out[p + 7] = ~f64b[X1]! & 0xff;
      out[p + 8] = ~f64b[X0]! & 0xff;
    } else {
      out[p + 1] = f64b[X7]! | 0x80;
      out[p + 2] = f64b[X6]!;
      out[p + 3] = f64b[X5]!;
      out[p + 4] = f64b[X4]!;
      out[p + 5] = f64b[X3]!;
      out[p + 6] = f64b[X2]!;
      out[p + 7] = f64b[X1]!;
      out[p + 8] = f64b[X0]!;
    }
    return p + 9;
  }
  if (v === null) {
    out[p] = K_NULL;
  } else {
    out[p] = v ? K_TRUE : K_FALSE;
  }
  return p + 1;
}

/**
 * Encodes one record (see the layout above) at `o` in `out`, computes the row digest (unless
 * `digest` is false: the digest bytes are then left for `fillDigests`), and returns the end offset —
 * or -1 when the record might not fit before `limit` (nothing is then valid; make room for
 * {@link recordBound} bytes and call again). Throws `delta.invalid_row` for a row of the wrong
 * length or with a value it cannot encode, before anything is committed.
 */
export function encodeRecord(
  out: Buffer,
  o: number,
  limit: number,
  row: Row,
  columns: readonly string[],
  keyIndexes: Int32Array,
  digest = true,
): number {
  const n = columns.length;
  if (!Array.isArray(row) || row.length !== n) recordBound(row, columns, new Uint8Array(n)); // throws
  let p = o + KEY_OFFSET;
  for (let k = 0; k < keyIndexes.length; k++) {
    const v = row[keyIndexes[k]!];
    if (p + (typeof v === 'string' ? 3 * v.length + 2 : 9) > limit) return -1;
    p = writeKeyValue(out, p, v as DeltaValue);
  }
  const keyLength = p - o - KEY_OFFSET;
  if (keyLength > MAX_KEY_BYTES) {
    throw invalidRow(`a key takes ${keyLength} bytes once encoded; at most ${MAX_KEY_BYTES} are supported`);
  }
  const rowStart = p;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (typeof v === 'string') {
      if (p + 3 * v.length + 6 > limit) return -1;
      p = writeRowString(out, p, v);
    } else {
      if (p + 9 > limit) return -1;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) valueBound(v, columns, i); // throws
        p = writeRowNumber(out, p, v);
      } else if (v === null) {
        out[p++] = V_NULL;
      } else if (typeof v === 'boolean') {
        out[p++] = v ? V_TRUE : V_FALSE;
      } else {
        valueBound(v, columns, i); // throws
      }
    }
  }
  // Key values were written before their type was checked: a bad key value is caught here.
  return sealRecord(out, o, rowStart, p, keyLength, digest);
}

/**
 * Writes the record's lengths and, if `digest`, the digest of its row encoding out[rowStart, p);
 * returns `p`.
 */
function sealRecord(
  out: Buffer,
  o: number,
  rowStart: number,
  p: number,
  keyLength: number,
  digest: boolean,
): number {
  if (digest) {
    // One-shot hash of a plain Uint8Array view, with a binary-string result: the cheapest per call.
    const bytes = hash(
      'sha256',
      new Uint8Array(out.buffer, out.byteOffset + rowStart, p - rowStart),
      'binary',
    );
    const d = o + DIGEST_OFFSET;
    for (let i = 0; i < DIGEST_BYTES; i++) out[d + i] = bytes.charCodeAt(i);
  }
  const length = p - o;
  out[o] = length & 0xff;
  out[o + 1] = (length >>> 8) & 0xff;
  out[o + 2] = (length >>> 16) & 0xff;
  out[o + 3] = length >>> 24;
  out[o + 4] = keyLength & 0xff;
  out[o + 5] = keyLength >>> 8;
  return p;
}

/** What a cell of {@link RowCells} holds. */
export const CellKind = { Null: 0, False: 1, True: 2, Number: 3, String: 4 } as const;

/**
 * Rows as raw cells rather than values: what a decoder can hand over without making a JS value per
 * cell (`ResultDecoder.openCells` of `@keystage/result-stream` gives this shape). Cell `r *
 * columnCount + c` is column `c` of row `r`; its kind (see {@link CellKind}) says where its value is:
 * a number in `numbers`, a string as UTF-8 in `bytes[starts[i], ends[i])` (well-formed: the bytes
 * `Buffer.from(string, 'utf8')` would give).
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

/**
 * {@link recordBound} for row `r` of `cells`: column i is cell `select[i]` of the row, or the number
 * `rowNumber` where `select[i]` is negative.
 */
export function cellsRecordBound(
  cells: RowCells,
  r: number,
  select: Int32Array,
  keyMask: Uint8Array,
): number {
  const base = r * cells.columnCount;
  let bound = KEY_OFFSET;
  for (let i = 0; i < select.length; i++) {
    const s = select[i]!;
    const cell = base + s;
    const b =
      s < 0 || cells.kinds[cell] === CellKind.Number
        ? 9
        : cells.kinds[cell] === CellKind.String
          ? cells.ends[cell]! - cells.starts[cell]! + 6
          : 1;
    bound += keyMask[i] === 1 ? 2 * b : b;
  }
  return bound;
}

/**
 * {@link encodeRecord} for row `r` of `cells` (columns as {@link cellsRecordBound}): the same bytes
 * as for the row of those values, and the same errors, without a value per cell.
 */
export function encodeCellsRecord(
  out: Buffer,
  o: number,
  limit: number,
  cells: RowCells,
  r: number,
  select: Int32Array,
  rowNumber: number,
  columns: readonly string[],
  keyIndexes: Int32Array,
  digest: boolean,
): number {
  const { kinds, numbers, starts, ends, bytes } = cells;
  const base = r * cells.columnCount;
  let p = o + KEY_OFFSET;
  for (let k = 0; k < keyIndexes.length; k++) {
    const s = select[keyIndexes[k]!]!;
    const cell = base + s;
    const kind = s < 0 ? CellKind.Number : kinds[cell];
    if (kind === CellKind.String) {
      const end = ends[cell]!;
      let q = starts[cell]!;
      if (p + 2 * (end - q) + 2 > limit) return -1;
      out[p++] = K_STRING;
      for (; q < end; q++) {
        const b = bytes[q]!;
        out[p++] = b;
        if (b === 0) out[p++] = 0xff;
      }
      out[p++] = 0;
    } else {
      if (p + 9 > limit) return -1;
      if (kind === CellKind.Number) p = writeKeyValue(out, p, s < 0 ? rowNumber : numbers[cell]!);
      else out[p++] = kind === CellKind.Null ? K_NULL : kind === CellKind.True ? K_TRUE : K_FALSE;
    }
  }
  const keyLength = p - o - KEY_OFFSET;
  if (keyLength > MAX_KEY_BYTES) {
    throw invalidRow(`a key takes ${keyLength} bytes once encoded; at most ${MAX_KEY_BYTES} are supported`);
  }
  const rowStart = p;
  for (let i = 0; i < select.length; i++) {
    const s = select[i]!;
    const cell = base + s;
    const kind = s < 0 ? CellKind.Number : kinds[cell];
    if (kind === CellKind.String) {
      const start = starts[cell]!;
      const length = ends[cell]! - start;
      if (p + length + 6 > limit) return -1;
      out[p] = V_STRING;
      p = writeVarint(out, p + 1, length);
      if (length <= 64) {
        for (let j = 0; j < length; j++) out[p + j] = bytes[start + j]!;
      } else {
        out.set(bytes.subarray(start, start + length), p);
      }
      p += length;
    } else {
      if (p + 9 > limit) return -1;
      if (kind === CellKind.Number) {
        const v = s < 0 ? rowNumber : numbers[cell]!;
        if (!Number.isFinite(v)) valueBound(v, columns, i); // throws
        p = writeRowNumber(out, p, v);
      } else {
        out[p++] = kind === CellKind.Null ? V_NULL : kind === CellKind.True ? V_TRUE : V_FALSE;
      }
    }
  }
  return sealRecord(out, o, rowStart, p, keyLength, digest);
}

/** Reads the u32 record length at `o`. */
export function recordLength(buf: Buffer, o: number): number {
  return (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16)) + buf[o + 3]! * 0x1000000;
}

/** Reads the u16 key length of the record at `o`. */
export function keyLength(buf: Buffer, o: number): number {
  return buf[o + KEY_LENGTH_OFFSET]! | (buf[o + KEY_LENGTH_OFFSET + 1]! << 8);
}

/** Unsigned byte-wise comparison of a[as, ae) with b[bs, be): < 0, 0 or > 0. */
export function compareBytes(
  a: Uint8Array,
  as: number,
  ae: number,
  b: Uint8Array,
  bs: number,
  be: number,
): number {
  const la = ae - as;
  const lb = be - bs;
  const n = Math.min(la, lb);
  for (let i = 0; i < n; i++) {
    const x = a[as + i]!;
    const y = b[bs + i]!;
    if (x !== y) return x - y;
  }
  return la - lb;
}

/** True when the `n` bytes at a[as] and b[bs] are equal. */
export function equalBytes(a: Uint8Array, as: number, b: Uint8Array, bs: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[as + i] !== b[bs + i]) return false;
  return true;
}

export function corrupt(message: string): DeltaError {
  return new DeltaError(DeltaErrorCode.CorruptSnapshot, message);
}

/** End offset of the row-encoded value at `p` (bounded by `end`). */
export function skipValue(buf: Buffer, p: number, end: number): number {
  let q: number;
  switch (buf[p]) {
    case V_NULL:
    case V_FALSE:
    case V_TRUE:
      q = p + 1;
      break;
    case V_INT32:
      q = p + 5;
      break;
    case V_FLOAT64:
      q = p + 9;
      break;
    case V_STRING: {
      let len = 0;
      let shift = 1;
      q = p + 1;
      for (;;) {
        if (q >= end || shift > 2 ** 28) throw corrupt('bad string length in a row');
        const b = buf[q++]!;
        len += (b & 0x7f) * shift;
        if (b < 0x80) break;
        shift *= 128;
      }
      q += len;
      break;
    }
    default:
      throw corrupt(`unknown value tag ${buf[p]} in a row`);
  }
  if (q > end) throw corrupt('a row value runs past its record');
  return q;
}

/** Decodes the row encoding buf[start, end) into `columnCount` values. */
export function decodeRow(buf: Buffer, start: number, end: number, columnCount: number): DeltaValue[] {
  const row = new Array<DeltaValue>(columnCount);
  let p = start;
  for (let i = 0; i < columnCount; i++) {
    if (p >= end) throw corrupt('a row has fewer values than columns');
    const q = skipValue(buf, p, end);
    switch (buf[p]) {
      case V_NULL:
        row[i] = null;
        break;
      case V_FALSE:
        row[i] = false;
        break;
      case V_TRUE:
        row[i] = true;
        break;
      case V_INT32:
        row[i] = buf[p + 1]! | (buf[p + 2]! << 8) | (buf[p + 3]! << 16) | (buf[p + 4]! << 24);
        break;
      case V_FLOAT64:
        f64b[X0] = buf[p + 1]!;
        f64b[X1] = buf[p + 2]!;
        f64b[X2] = buf[p + 3]!;
        f64b[X3] = buf[p + 4]!;
        f64b[X4] = buf[p + 5]!;
        f64b[X5] = buf[p + 6]!;
        f64b[X6] = buf[p + 7]!;
        f64b[X7] = buf[p + 8]!;
        row[i] = f64[0]!;
        break;
      default: {
        // V_STRING: skip the varint to find the bytes.
        let s = p + 1;
        while (buf[s]! >= 0x80) s++;
        row[i] = buf.toString('utf8', s + 1, q);
      }
    }
    p = q;
  }
  if (p !== end) throw corrupt('a row has more values than columns');
  return row;
}

/**
 * The digest of a row: the first 16 bytes of SHA-256 over its canonical encoding (every column in
 * order; see the README). Equal digests mean equal rows, types included. Throws `delta.invalid_row`
 * for a value it cannot encode.
 */
export function rowDigest(row: Row): Buffer {
  const columns = row.map((_, i) => String(i));
  const bound = recordBound(row, columns, new Uint8Array(row.length));
  const buf = Buffer.allocUnsafe(bound);
  let p = 0;
  for (let i = 0; i < row.length; i++) p = writeRowValue(buf, p, row[i] as DeltaValue);
  return hash('sha256', buf.subarray(0, p), 'buffer').subarray(0, DIGEST_BYTES);
}

/**
 * The byte-comparable encoding of a key (its values in key-column order). Comparing two encodings
 * byte-wise (`Buffer.compare`) orders keys by type (null < false < true < numbers < strings), then
 * numbers numerically and strings by UTF-8 bytes (= code points), column by column. Snapshot entries
 * are sorted by this encoding.
 */
export function encodeKey(values: Row): Buffer {
  const columns = values.map((_, i) => String(i));
  const bound = recordBound(values, columns, new Uint8Array(values.length).fill(1));
  const buf = Buffer.allocUnsafe(bound);
  let p = 0;
  for (let i = 0; i < values.length; i++) p = writeKeyValue(buf, p, values[i] as DeltaValue);
  return Buffer.from(buf.subarray(0, p));
}
