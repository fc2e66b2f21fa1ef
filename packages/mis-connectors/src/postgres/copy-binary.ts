/**
 * PostgreSQL `COPY … TO STDOUT (FORMAT binary)` → packed rows (see ../packed.ts), for results
 * whose every column has a type listed in {@link binaryKindOf}. Byte for byte the packing the
 * text path (copy-text.ts) and the cursor give the same rows: integers → numbers (int8 beyond 2^53
 * → its digits), bool → 0/1, bytea → base64, uuid → its lowercase text, date and timestamps → the
 * text PostgreSQL writes with `DateStyle=ISO` and `TimeZone=UTC` (a finite timestamptz AD ends
 * in `Z` instead of `+00`), text-like values → their bytes.
 *
 * Why: the server writes binary values without formatting them (≈ 20–30 % less of its CPU for a
 * COPY of dates and timestamps) and this side finds each value by its length instead of scanning
 * every byte for tabs, newlines and backslashes.
 *
 * The stream: an 11-byte signature, flags (u32), a header extension (u32 length + bytes), then per
 * row a field count (i16) and per field a length (i32, -1 for NULL) and its bytes; -1 as a field
 * count ends it.
 */
import { MisError } from '../errors.js';
import { MsgpackOut, type PackedBatch } from '../packed.js';

/** How a column's binary value becomes a packed value. */
export const BinaryKind = {
  Text: 0,
  Int2: 1,
  Int4: 2,
  Oid: 3,
  Int8: 4,
  Bool: 5,
  Bytea: 6,
  Date: 7,
  Timestamp: 8,
  Timestamptz: 9,
  Uuid: 10,
  Jsonb: 11,
} as const;
export type BinaryKind = (typeof BinaryKind)[keyof typeof BinaryKind];

/**
 * The conversion for a PostgreSQL type OID, or undefined for a type this module does not read
 * (numeric, floats — their text may be rounded by `extra_float_digits` —, time, interval, arrays,
 * "char", extension types …): a result with any such column is copied as text.
 */
export function binaryKindOf(oid: number): BinaryKind | undefined {
  switch (oid) {
    case 16:
      return BinaryKind.Bool;
    case 17:
      return BinaryKind.Bytea;
    case 20:
      return BinaryKind.Int8;
    case 21:
      return BinaryKind.Int2;
    case 23:
      return BinaryKind.Int4;
    case 26:
      return BinaryKind.Oid;
    case 19: // name
    case 25: // text
    case 114: // json
    case 1042: // bpchar (sent padded, as its text)
    case 1043: // varchar
      return BinaryKind.Text;
    case 1082:
      return BinaryKind.Date;
    case 1114:
      return BinaryKind.Timestamp;
    case 1184:
      return BinaryKind.Timestamptz;
    case 2950:
      return BinaryKind.Uuid;
    case 3802:
      return BinaryKind.Jsonb;
    default:
      return undefined;
  }
}

/** Room the packed rows start with (the connector takes a batch at about 1 MiB). */
const COPY_OUT_BYTES = 1200 * 1024;
/** Least of the next data joined to a carried row at a time. */
const JOIN_BYTES = 64 * 1024;
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 8;
/** Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const PG_EPOCH_DAYS = 10957;
const US_PER_DAY = 86_400_000_000;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

function corrupt(message: string): MisError {
  return new MisError('mis.query_failed', `PostgreSQL binary COPY output: ${message}`);
}

function i32(b: Buffer, p: number): number {
  return (
    ((b[p] as number) << 24) |
    ((b[p + 1] as number) << 16) |
    ((b[p + 2] as number) << 8) |
    (b[p + 3] as number)
  );
}

function u32(b: Buffer, p: number): number {
  return i32(b, p) >>> 0;
}

/** The fixed byte length of a kind's values, or -1 for variable. */
function fixedLength(kind: number): number {
  switch (kind) {
    case BinaryKind.Int2:
      return 2;
    case BinaryKind.Int4:
    case BinaryKind.Oid:
    case BinaryKind.Date:
      return 4;
    case BinaryKind.Int8:
    case BinaryKind.Timestamp:
    case BinaryKind.Timestamptz:
      return 8;
    case BinaryKind.Bool:
      return 1;
    case BinaryKind.Uuid:
      return 16;
    default:
      return -1;
  }
}

// The calendar date of a day count (days since 1970-01-01, proleptic Gregorian; year 0 is 1 BC),
// as PostgreSQL's j2date gives it. Howard Hinnant's civil_from_days.
let civilYear = 0;
let civilMonth = 0;
let civilDay = 0;
function civil(days: number): void {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  civilDay = doy - Math.floor((153 * mp + 2) / 5) + 1;
  civilMonth = mp < 10 ? mp + 3 : mp - 9;
  civilYear = yoe + era * 400 + (civilMonth <= 2 ? 1 : 0);
}

/**
 * Feeds on binary COPY data as it arrives (any split) and packs every complete row. One packer per
 * COPY: it expects the signature first.
 */
export class CopyBinaryPacker {
  private readonly out = new MsgpackOut(COPY_OUT_BYTES);
  private readonly kinds: Uint8Array;
  private readonly fixed: Int32Array;
  /** The start of a row (or of the header) the last `write` did not finish, in pieces. */
  private pieces: Buffer[] = [];
  private carried = 0;
  /** Bytes (from its start) the carried unit needs before it can be read further. */
  private need = 0;
  private headerRead = false;
  private trailerRead = false;
  /** Scratch for a formatted date or timestamp (at most "-294277-01-01 00:00:00.000001+00 BC"). */
  private readonly text = Buffer.allocUnsafe(48);
  /** The day whose `YYYY-MM-DD` starts `text` (see `day()`), its length, and whether it is BC. */
  private lastDay = Number.NaN;
  private dayLength = 0;
  private dayBC = false;

  constructor(kinds: readonly BinaryKind[]) {
    if (kinds.length === 0) throw new TypeError('a COPY row has at least one column');
    this.kinds = Uint8Array.from(kinds);
    this.fixed = Int32Array.from(kinds, fixedLength);
  }

  /** Bytes of complete rows waiting for `take()`. */
  get packedBytes(): number {
    return this.out.o;
  }

  /** Rows packed and not taken yet. */
  get pendingRows(): number {
    return this.out.rowCount;
  }

  /** The rows packed since the last call, or null. */
  take(): PackedBatch | null {
    return this.out.take();
  }

  /** The COPY ended: a row cut short, or no end marker, is an error. */
  end(): void {
    if (this.carried > 0) throw corrupt('the data ended inside a row');
    if (!this.trailerRead) throw corrupt('the data ended without its end marker');
  }

  write(data: Buffer): void {
    let from = 0;
    // A carried unit (the header or a row) is joined with more data only once that data holds the
    // bytes it needs to be read further (a large value arriving in many pieces is joined once),
    // then with at least 64 KiB of it (a wide row is joined once per socket read, not per field).
    while (this.carried > 0) {
      const missing = this.need - this.carried;
      if (data.length - from < missing) {
        if (from < data.length) this.pieces.push(Buffer.from(data.subarray(from)));
        this.carried += data.length - from;
        return;
      }
      // At least 64 KiB more when there is: a wide row is joined once per 64 KiB, not per field.
      const take = Math.min(data.length - from, Math.max(missing, JOIN_BYTES));
      const joined = Buffer.concat([...this.pieces, data.subarray(from, from + take)]);
      from += take;
      const used = this.scan(joined, 0);
      this.pieces = used < joined.length ? [joined.subarray(used)] : [];
      this.carried = joined.length - used;
    }
    const used = this.scan(data, from);
    if (used < data.length) {
      this.pieces = [Buffer.from(data.subarray(used))];
      this.carried = data.length - used;
    }
  }

  /**
   * Reads what is complete in buf[from…]; returns where the first incomplete unit starts, with
   * `need` set to the bytes that unit needs (from its start) before it can be read further.
   */
  private scan(buf: Buffer, from: number): number {
    const n = buf.length;
    let p = from;
    if (!this.headerRead) {
      if (n - p < HEADER_BYTES) {
        this.need = HEADER_BYTES;
        return p;
      }
      if (!buf.subarray(p, p + SIGNATURE.length).equals(SIGNATURE)) throw corrupt('no PGCOPY signature');
      // Bit 16: rows carry OIDs; the other high bits are reserved — a reader must stop at any.
      if ((u32(buf, p + SIGNATURE.length) & 0xffff0000) !== 0) throw corrupt('unexpected header flags');
      const extension = u32(buf, p + SIGNATURE.length + 4);
      if (n - p < HEADER_BYTES + extension) {
        this.need = HEADER_BYTES + extension;
        return p;
      }
      p += HEADER_BYTES + extension;
      this.headerRead = true;
    }
    const columns = this.kinds.length;
    const fixed = this.fixed;
    while (p + 2 <= n) {
      if (this.trailerRead) throw corrupt('data after the end marker');
      const count = ((((buf[p] as number) << 8) | (buf[p + 1] as number)) << 16) >> 16;
      if (count === -1) {
        this.trailerRead = true;
        p += 2;
        continue;
      }
      if (count !== columns) throw corrupt(`a row has ${count} values for ${columns} columns`);
      // A row is packed only once it is all here.
      let q = p + 2;
      for (let c = 0; c < columns; c++) {
        if (q + 4 > n) {
          this.need = q + 4 - p;
          return p;
        }
        const length = i32(buf, q);
        q += 4;
        if (length < 0) {
          if (length !== -1) throw corrupt('a value has a negative length');
          continue;
        }
        const f = fixed[c] as number;
        if (f >= 0 && length !== f) throw corrupt(`a value of ${length} bytes where ${f} were expected`);
        q += length;
        if (q > n) {
          this.need = q - p;
          return p;
        }
      }
      this.row(buf, p + 2, q - p);
      p = q;
    }
    if (p < n) {
      if (this.trailerRead) throw corrupt('data after the end marker');
      this.need = 2;
    }
    return p;
  }

  private row(buf: Buffer, p: number, length: number): void {
    const kinds = this.kinds;
    const columns = kinds.length;
    const out = this.out;
    // A value packs to at most ≈ 4/3 of its bytes + 5, or 40 for a date or timestamp.
    out.room(5 + columns * 45 + 2 * length);
    out.arrayHeader(columns);
    for (let c = 0; c < columns; c++) {
      const n = i32(buf, p);
      p += 4;
      if (n < 0) out.nil();
      else this.value(kinds[c] as number, buf, p, n);
      if (n > 0) p += n;
    }
    out.endRow();
  }

  private value(kind: number, buf: Buffer, s: number, n: number): void {
    const out = this.out;
    switch (kind) {
      case BinaryKind.Int4:
        out.number(i32(buf, s));
        return;
      case BinaryKind.Int2:
        out.number(((((buf[s] as number) << 8) | (buf[s + 1] as number)) << 16) >> 16);
        return;
      case BinaryKind.Oid:
        out.number(u32(buf, s));
        return;
      case BinaryKind.Int8: {
        const hi = i32(buf, s);
        const lo = u32(buf, s + 4);
        const v = hi * 0x100000000 + lo;
        // Exact for |hi| < 2^21; the text path keeps anything beyond ±(2^53 - 1) as its digits.
        if (hi >= -0x200000 && hi < 0x200000 && Number.isSafeInteger(v)) out.number(v);
        else out.str(((BigInt(hi) << 32n) + BigInt(lo)).toString());
        return;
      }
      case BinaryKind.Bool:
        out.number(buf[s] === 0 ? 0 : 1);
        return;
      case BinaryKind.Bytea:
        out.str(buf.toString('base64', s, s + n));
        return;
      case BinaryKind.Date:
        this.date(i32(buf, s));
        return;
      case BinaryKind.Timestamp:
      case BinaryKind.Timestamptz:
        this.timestamp(i32(buf, s), u32(buf, s + 4), kind === BinaryKind.Timestamptz);
        return;
      case BinaryKind.Uuid: {
        out.strHeader(36);
        const b = out.buf;
        let o = out.o;
        for (let i = 0; i < 16; i++) {
          if (i === 4 || i === 6 || i === 8 || i === 10) b[o++] = 0x2d;
          const x = buf[s + i] as number;
          b[o++] = HEX[x >> 4] as number;
          b[o++] = HEX[x & 15] as number;
        }
        out.o = o;
        return;
      }
      case BinaryKind.Jsonb:
        if (n < 1 || buf[s] !== 1) throw corrupt('a jsonb value of an unknown version');
        out.strBytes(buf, s + 1, s + n);
        return;
      default:
        out.strBytes(buf, s, s + n);
    }
  }

  private date(days: number): void {
    if (days === INT32_MAX || days === INT32_MIN) {
      this.ascii(days === INT32_MAX ? 'infinity' : '-infinity');
      return;
    }
    const t = this.text;
    let o = this.day(days);
    if (this.dayBC) o = this.bc(t, o);
    this.packText(o);
  }

  /** A timestamp: µs since 2000-01-01 as its two 32-bit halves. */
  private timestamp(hi: number, lo: number, utc: boolean): void {
    let days: number;
    let time: number;
    if (hi >= -0x100000 && hi < 0x100000) {
      // |µs| < 2^52: exact in a double.
      const us = hi * 0x100000000 + lo;
      days = Math.floor(us / US_PER_DAY);
      time = us - days * US_PER_DAY;
    } else {
      if ((hi === 0x7fffffff && lo === 0xffffffff) || (hi === INT32_MIN && lo === 0)) {
        this.ascii(hi > 0 ? 'infinity' : '-infinity');
        return;
      }
      const us = (BigInt(hi) << 32n) + BigInt(lo);
      const day = BigInt(US_PER_DAY);
      let d = us / day;
      if (us % day < 0n) d -= 1n;
      days = Number(d);
      time = Number(us - d * day);
    }
    const t = this.text;
    let o = this.day(days);
    // 0 ≤ time < 86,400,000,000: seconds and the fraction fit int32.
    const seconds = (time / 1_000_000) | 0;
    let fraction = time - seconds * 1_000_000;
    const minutes = (seconds / 60) | 0;
    t[o++] = 0x20;
    o = two(t, o, (minutes / 60) | 0);
    t[o++] = 0x3a;
    o = two(t, o, minutes % 60);
    t[o++] = 0x3a;
    o = two(t, o, seconds - minutes * 60);
    if (fraction !== 0) {
      // Six digits, trailing zeros dropped (as AppendTimestampSeconds writes them).
      t[o++] = 0x2e;
      let digits = 6;
      while (fraction % 10 === 0) {
        fraction /= 10;
        digits--;
      }
      for (let i = digits - 1; i >= 0; i--) {
        t[o + i] = 0x30 + (fraction % 10);
        fraction = Math.floor(fraction / 10);
      }
      o += digits;
    }
    if (this.dayBC) {
      if (utc) {
        t[o++] = 0x2b;
        t[o++] = 0x30;
        t[o++] = 0x30;
      }
      o = this.bc(t, o);
    } else if (utc) {
      // The text path's `…+00` → `…Z`.
      t[o++] = 0x5a;
    }
    this.packText(o);
  }

  /**
   * Writes `YYYY-MM-DD` of a day (days since 2000-01-01) at the start of `text`; returns its length.
   * Rows in order often share their day: the last one is kept there (nothing else writes over it).
   */
  private day(days: number): number {
    if (days !== this.lastDay) {
      civil(days + PG_EPOCH_DAYS);
      this.dayLength = this.ymd(this.text, 0);
      this.dayBC = civilYear <= 0;
      this.lastDay = days;
    }
    return this.dayLength;
  }

  /** `YYYY-MM-DD` of the civil date (the year of a BC date as 1 - year, at least four digits). */
  private ymd(t: Buffer, o: number): number {
    const year = civilYear > 0 ? civilYear : 1 - civilYear;
    if (year >= 10000) {
      const digits = String(year);
      for (let i = 0; i < digits.length; i++) t[o++] = digits.charCodeAt(i);
    } else {
      o = two(t, o, Math.floor(year / 100));
      o = two(t, o, year % 100);
    }
    t[o++] = 0x2d;
    o = two(t, o, civilMonth);
    t[o++] = 0x2d;
    return two(t, o, civilDay);
  }

  private bc(t: Buffer, o: number): number {
    t[o++] = 0x20;
    t[o++] = 0x42;
    t[o++] = 0x43;
    return o;
  }

  private packText(length: number): void {
    this.out.strBytes(this.text, 0, length);
  }

  private ascii(text: string): void {
    this.out.str(text);
  }
}

/** Two decimal digits of 0 ≤ v < 100. */
function two(t: Buffer, o: number, v: number): number {
  t[o] = 0x30 + ((v / 10) | 0);
  t[o + 1] = 0x30 + (v % 10);
  return o + 2;
}
