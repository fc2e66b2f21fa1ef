import { corrupt, skipValue } from './encoding.js';
import { SnapshotReader } from './format.js';

/**
 * How {@link SnapshotJsonRows} lays out each row: `parts[0]`, the value of column `columns[0]`,
 * `parts[1]`, …, the value of column `columns[n - 1]`, `parts[n]` — so `parts` has one more entry
 * than `columns`. Column numbers index the snapshot's columns (0-based); a column may appear more
 * than once (a key column in a key and in the row) or not at all.
 */
export interface RowTemplate {
  readonly parts: readonly string[];
  readonly columns: readonly number[];
  /** Written between two rows (not before the first or after the last). Default none. */
  readonly separator?: string;
}

const READ_BYTES = 1024 * 1024;
/** Bytes handed out per chunk, at most (unless one row is larger). */
const CHUNK_BYTES = 256 * 1024;
/** Most bytes a number takes as JSON (`-1.2345678901234567e-308`). */
const NUMBER_BYTES = 25;

// Row encoding tags (see encoding.ts).
const V_NULL = 0x00;
const V_FALSE = 0x01;
const V_TRUE = 0x02;
const V_INT32 = 0x03;
const V_FLOAT64 = 0x04;

const NULL = Buffer.from('null');
const FALSE = Buffer.from('false');
const TRUE = Buffer.from('true');
const HEX = Buffer.from('0123456789abcdef');
/** JSON.stringify's short escapes, by byte (0 where there is none). */
const SHORT_ESCAPE = new Uint8Array(128);
SHORT_ESCAPE[0x08] = 0x62; // \b
SHORT_ESCAPE[0x09] = 0x74; // \t
SHORT_ESCAPE[0x0a] = 0x6e; // \n
SHORT_ESCAPE[0x0c] = 0x66; // \f
SHORT_ESCAPE[0x0d] = 0x72; // \r
SHORT_ESCAPE[0x22] = 0x22; // \"
SHORT_ESCAPE[0x5c] = 0x5c; // \\

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The rows of a snapshot file, in key order, as text laid out by a {@link RowTemplate}, with every
 * value written exactly as `JSON.stringify` writes the value `diffSnapshots` would decode: straight
 * from the stored bytes, without a value or row object per row. This is how a full load (every row
 * an insert) is encoded as NDJSON or JSON cheaply. The file is checked as it is read, as by a diff.
 *
 * Iterate once; `rowCount` is the number of rows written so far (all of them once the iteration
 * ends without throwing). Chunks are up to 256 KiB (or one row), each a Buffer of its own.
 */
export class SnapshotJsonRows implements AsyncIterable<Buffer> {
  rowCount = 0;
  private readonly parts: Buffer[];
  private readonly columns: Int32Array;
  private readonly separator: Buffer;
  /** Bytes of one row's literal text (separator included). */
  private readonly literalBytes: number;
  /** Most times one column appears in the template. */
  private readonly maxUses: number;
  private started = false;
  /** The output chunk being filled, up to `o`. */
  private out = Buffer.allocUnsafe(CHUNK_BYTES);
  private o = 0;
  /** The reader's current record is not written yet (it did not fit `out`); it needs `bound` bytes. */
  private pending = false;
  private bound = 0;

  constructor(
    private readonly path: string,
    template: RowTemplate,
  ) {
    if (template.parts.length !== template.columns.length + 1) {
      throw new TypeError('a row template has one part more than it has columns');
    }
    this.parts = template.parts.map((p) => Buffer.from(p, 'utf8'));
    this.columns = Int32Array.from(template.columns);
    this.separator = Buffer.from(template.separator ?? '', 'utf8');
    this.literalBytes = this.parts.reduce((n, p) => n + p.length, this.separator.length);
    const uses = new Map<number, number>();
    for (const c of template.columns) uses.set(c, (uses.get(c) ?? 0) + 1);
    this.maxUses = Math.max(0, ...uses.values());
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.started) throw new TypeError('the rows of a snapshot can be iterated once');
    this.started = true;
    const reader = await SnapshotReader.open(this.path, READ_BYTES, true);
    try {
      const columnCount = reader.info.columns.length;
      for (const c of this.columns) {
        if (!(c >= 0 && c < columnCount)) throw new TypeError(`the snapshot has no column ${c}`);
      }
      /** Where each column's encoded value starts in the current record, and where the row ends. */
      const starts = new Int32Array(columnCount + 1);
      for (;;) {
        if (this.fill(reader, starts)) {
          if (this.o > 0) yield this.out.subarray(0, this.o);
          this.out = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, this.bound));
          this.o = 0;
        } else if (!(await reader.nextBlock())) {
          break;
        }
      }
      if (this.o > 0) yield this.out.subarray(0, this.o);
    } finally {
      await reader.close();
    }
  }

  /**
   * Writes the rest of the reader's current block into `out`: false once the block is used up, true
   * when `out` has no room for the next row (which stays pending).
   */
  private fill(reader: SnapshotReader, starts: Int32Array): boolean {
    const { parts, columns, separator } = this;
    const columnCount = starts.length - 1;
    const out = this.out;
    let o = this.o;
    try {
      for (;;) {
        if (!this.pending) {
          if (!reader.next()) return false;
          const buf = reader.buf;
          const recEnd = reader.recEnd;
          let p = reader.keyEnd;
          for (let i = 0; i < columnCount; i++) {
            if (p >= recEnd) throw corrupt(`${this.path}: a row has fewer values than columns`);
            starts[i] = p;
            p = skipValue(buf, p, recEnd);
          }
          if (p !== recEnd) throw corrupt(`${this.path}: a row has more values than columns`);
          starts[columnCount] = p;
          // A JSON value takes at most 6 bytes per stored byte (a control character as \u00XX).
          this.bound =
            this.literalBytes + 6 * this.maxUses * (recEnd - reader.keyEnd) + NUMBER_BYTES * columns.length;
          this.pending = true;
        }
        if (o + this.bound > out.length) return true;
        const buf = reader.buf;
        if (this.rowCount > 0) o = put(out, o, separator);
        o = put(out, o, parts[0]!);
        for (let s = 0; s < columns.length; s++) {
          const c = columns[s]!;
          o = writeJsonValue(out, o, buf, starts[c]!, starts[c + 1]!);
          o = put(out, o, parts[s + 1]!);
        }
        this.pending = false;
        this.rowCount++;
      }
    } finally {
      this.o = o;
    }
  }
}

/** Copies `bytes` to out[o]; returns the end. A short copy is a loop: a call costs more. */
function put(out: Buffer, o: number, bytes: Buffer): number {
  const n = bytes.length;
  if (n < 16) {
    for (let i = 0; i < n; i++) out[o + i] = bytes[i]!;
  } else {
    out.set(bytes, o);
  }
  return o + n;
}

/** Writes the row-encoded value buf[p, end) as JSON at out[o]; returns the end offset. */
function writeJsonValue(out: Buffer, o: number, buf: Buffer, p: number, end: number): number {
  switch (buf[p]) {
    case V_NULL:
      return put(out, o, NULL);
    case V_FALSE:
      return put(out, o, FALSE);
    case V_TRUE:
      return put(out, o, TRUE);
    case V_INT32:
      return writeInt(out, o, buf[p + 1]! | (buf[p + 2]! << 8) | (buf[p + 3]! << 16) | (buf[p + 4]! << 24));
    case V_FLOAT64: {
      for (let i = 0; i < 8; i++) f64b[LE ? i : 7 - i] = buf[p + 1 + i]!;
      const v = f64[0]!;
      // JSON.stringify writes a finite number as String() does (and anything else as null).
      return o + out.write(Number.isFinite(v) ? String(v) : 'null', o, 'latin1');
    }
    default:
      return writeJsonString(out, o, buf, p, end);
  }
}

function writeInt(out: Buffer, o: number, v: number): number {
  if (v < 0) {
    if (v === -2147483648) return o + out.write('-2147483648', o, 'latin1');
    out[o++] = 0x2d;
    v = -v;
  }
  if (v < 10) {
    out[o] = 0x30 + v;
    return o + 1;
  }
  let digits = 1;
  for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
  let q = o + digits;
  for (let x = v; q > o; x = (x / 10) | 0) out[--q] = 0x30 + (x % 10);
  return o + digits;
}

/**
 * Writes the row-encoded string at buf[p, end) as a JSON string. ASCII is escaped byte by byte
 * the way JSON.stringify escapes it; a string with other characters goes through JSON.stringify
 * itself (decoding as `diffSnapshots` decodes), which keeps the output identical for any bytes.
 */
function writeJsonString(out: Buffer, o: number, buf: Buffer, p: number, end: number): number {
  let s = p + 1;
  while (buf[s]! >= 0x80) s++;
  s++;
  const start = o;
  out[o++] = 0x22;
  for (let i = s; i < end; i++) {
    const b = buf[i]!;
    if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
      if (b >= 0x80) return start + out.write(JSON.stringify(buf.toString('utf8', s, end)), start, 'utf8');
      out[o++] = b;
    } else if (SHORT_ESCAPE[b] !== 0) {
      out[o++] = 0x5c;
      out[o++] = SHORT_ESCAPE[b]!;
    } else {
      out[o++] = 0x5c;
      out[o++] = 0x75; // u
      out[o++] = 0x30;
      out[o++] = 0x30;
      out[o++] = HEX[b >> 4]!;
      out[o++] = HEX[b & 15]!;
    }
  }
  out[o++] = 0x22;
  return o;
}
