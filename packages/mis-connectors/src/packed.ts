/**
 * Rows already encoded for the result stream. An engine that can read its rows as raw text
 * (PostgreSQL `COPY … TO STDOUT`) turns them straight into msgpack here, without making a JS value
 * per cell: each row is a msgpack array of its values, in the form the result stream's encoder would
 * give the same row read through the driver (`normalizeRow`, then msgpack as `msgpackr` writes it:
 * the shortest int form up to 32 bits, float64 otherwise, the shortest str header). Byte for byte
 * the same, so a chunk's digest does not depend on which way its rows were read (a test holds the
 * two paths against each other).
 */

/** A batch of rows encoded as msgpack arrays, back to back. */
export interface PackedBatch {
  readonly packed: true;
  readonly rowCount: number;
  /** The rows' msgpack, concatenated. */
  readonly bytes: Buffer;
  /** Where each row ends in `bytes` (`ends[rowCount - 1] === bytes.length`). */
  readonly ends: Uint32Array;
}

export function isPackedBatch(batch: unknown): batch is PackedBatch {
  return (batch as { packed?: unknown } | null)?.packed === true;
}

const INITIAL_BYTES = 64 * 1024;

/** A growing msgpack output with the value forms `msgpackr` (no records, no bundles) would write. */
export class MsgpackOut {
  buf: Buffer;
  /** Bytes written. */
  o = 0;
  private ends: Uint32Array = new Uint32Array(1024);
  private count = 0;

  constructor(private readonly initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.o + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.o + n));
    this.buf.copy(next, 0, 0, this.o);
    this.buf = next;
  }

  /** Rows ended since the last `take()`. */
  get rowCount(): number {
    return this.count;
  }

  /** Marks the end of a row. */
  endRow(): void {
    if (this.count === this.ends.length) {
      const more = new Uint32Array(this.ends.length * 2);
      more.set(this.ends);
      this.ends = more;
    }
    this.ends[this.count++] = this.o;
  }

  /** The complete rows so far (the output moves on to a new buffer); a partial row stays. */
  take(): PackedBatch | null {
    const count = this.count;
    if (count === 0) return null;
    const end = this.ends[count - 1] as number;
    const bytes = this.buf.subarray(0, end);
    const ends = this.ends.slice(0, count);
    const rest = this.o - end;
    const next = Buffer.allocUnsafe(Math.max(this.initialBytes, rest));
    if (rest > 0) this.buf.copy(next, 0, end, this.o);
    this.buf = next;
    this.o = rest;
    this.count = 0;
    return { packed: true, rowCount: count, bytes, ends };
  }

  arrayHeader(n: number): void {
    this.room(5);
    const b = this.buf;
    if (n < 16) b[this.o++] = 0x90 | n;
    else if (n < 0x10000) {
      b[this.o++] = 0xdc;
      b[this.o++] = n >> 8;
      b[this.o++] = n & 0xff;
    } else {
      b[this.o++] = 0xdd;
      b.writeUInt32BE(n, this.o);
      this.o += 4;
    }
  }

  nil(): void {
    this.room(1);
    this.buf[this.o++] = 0xc0;
  }

  /** A number as msgpackr writes it (`useRecords: false`). */
  number(value: number): void {
    this.room(9);
    const b = this.buf;
    if (value >>> 0 === value) {
      if (value < 0x80) b[this.o++] = value;
      else if (value < 0x100) {
        b[this.o++] = 0xcc;
        b[this.o++] = value;
      } else if (value < 0x10000) {
        b[this.o++] = 0xcd;
        b[this.o++] = value >> 8;
        b[this.o++] = value & 0xff;
      } else {
        b[this.o++] = 0xce;
        b.writeUInt32BE(value, this.o);
        this.o += 4;
      }
    } else if (value >> 0 === value) {
      if (value >= -0x20) b[this.o++] = 0x100 + value;
      else if (value >= -0x80) {
        b[this.o++] = 0xd0;
        b[this.o++] = value + 0x100;
      } else if (value >= -0x8000) {
        b[this.o++] = 0xd1;
        b.writeInt16BE(value, this.o);
        this.o += 2;
      } else {
        b[this.o++] = 0xd2;
        b.writeInt32BE(value, this.o);
        this.o += 4;
      }
    } else {
      b[this.o++] = 0xcb;
      b.writeDoubleBE(value, this.o);
      this.o += 8;
    }
  }

  /** A str header for `length` UTF-8 bytes (room for them is made too). */
  strHeader(length: number): void {
    this.room(5 + length);
    const b = this.buf;
    if (length < 0x20) b[this.o++] = 0xa0 | length;
    else if (length < 0x100) {
      b[this.o++] = 0xd9;
      b[this.o++] = length;
    } else if (length < 0x10000) {
      b[this.o++] = 0xda;
      b[this.o++] = length >> 8;
      b[this.o++] = length & 0xff;
    } else {
      b[this.o++] = 0xdb;
      b.writeUInt32BE(length, this.o);
      this.o += 4;
    }
  }

  /** A str of UTF-8 bytes `src[start, end)` (valid UTF-8: the caller makes sure). */
  strBytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    this.strHeader(n);
    if (n < 64) {
      // A byte loop: cheaper than Buffer#copy for values this short (most are).
      const b = this.buf;
      let o = this.o;
      for (let i = start; i < end; i++) b[o++] = src[i] as number;
      this.o = o;
    } else {
      src.copy(this.buf, this.o, start, end);
      this.o += n;
    }
  }

  str(value: string): void {
    const n = Buffer.byteLength(value, 'utf8');
    this.strHeader(n);
    this.o += this.buf.write(value, this.o, 'utf8');
  }
}
