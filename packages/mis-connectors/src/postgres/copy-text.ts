/**
 * PostgreSQL `COPY … TO STDOUT` text → packed rows (see ../packed.ts). Each line is one row, values
 * separated by tabs, `\N` for NULL, backslash escapes for backslash, tab, newline and the other
 * control characters. The values are the types' text output — the same text the cursor's rows
 * carry — so each is converted as `pgTypeParsers` would, then packed as the result stream would
 * pack it: int2/int4/oid/float4/float8 → numbers, int8 → a number when safe (else its digits),
 * bool → 0/1, bytea → base64, timestamptz `…+00` → `…Z`, everything else its text.
 */
import { MisError } from '../errors.js';
import { MsgpackOut, type PackedBatch } from '../packed.js';

/** How a column's text becomes a value. */
export const CopyKind = {
  Text: 0,
  Number: 1,
  Int8: 2,
  Bool: 3,
  Bytea: 4,
  Timestamptz: 5,
} as const;
export type CopyKind = (typeof CopyKind)[keyof typeof CopyKind];

/** The conversion for a PostgreSQL type OID (the same split as `pgTypeParsers`). */
export function copyKindOf(oid: number): CopyKind {
  switch (oid) {
    case 16:
      return CopyKind.Bool;
    case 17:
      return CopyKind.Bytea;
    case 20:
      return CopyKind.Int8;
    case 21:
    case 23:
    case 26:
    case 700:
    case 701:
      return CopyKind.Number;
    case 1184:
      return CopyKind.Timestamptz;
    default:
      return CopyKind.Text;
  }
}

/** Room the packed rows start with (the connector takes a batch at about 1 MiB). */
const COPY_OUT_BYTES = 1200 * 1024;
const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function corrupt(message: string): MisError {
  return new MisError('mis.query_failed', `PostgreSQL COPY output: ${message}`);
}

/**
 * Feeds on COPY text as it arrives (any split), packs every complete line. `bytea` text goes
 * through the driver's own parser (`parseBytea`), so both paths agree on it.
 */
export class CopyTextPacker {
  private readonly out = new MsgpackOut(COPY_OUT_BYTES);
  private readonly kinds: Uint8Array;
  /** The start of a line the last `write` did not finish. */
  private carry: Buffer | null = null;
  /** Where each value of the row being read starts and ends, and whether it holds an escape. */
  private readonly fs: Int32Array;
  private readonly fe: Int32Array;
  private readonly esc: Uint8Array;
  /** Scratch for unescaped values. */
  private scratch = Buffer.allocUnsafe(1024);

  constructor(
    kinds: readonly CopyKind[],
    private readonly parseBytea: (text: string) => Uint8Array,
  ) {
    if (kinds.length === 0) throw new TypeError('a COPY row has at least one column');
    this.kinds = Uint8Array.from(kinds);
    this.fs = new Int32Array(kinds.length);
    this.fe = new Int32Array(kinds.length);
    this.esc = new Uint8Array(kinds.length);
  }

  /** Bytes of complete rows waiting for `take()`. */
  get packedBytes(): number {
    return this.out.o;
  }

  /** Rows packed and not taken yet. */
  get pendingRows(): number {
    return this.out.rowCount;
  }

  write(data: Buffer): void {
    let from = 0;
    if (this.carry) {
      // The row begun in the last data ends in this one: put just that row together.
      const nl = data.indexOf(NL);
      if (nl < 0) {
        this.carry = Buffer.concat([this.carry, data]);
        return;
      }
      const line = Buffer.concat([this.carry, data.subarray(0, nl + 1)]);
      this.carry = null;
      this.scan(line, 0);
      from = nl + 1;
    }
    this.scan(data, from);
  }

  private scan(buf: Buffer, from: number): void {
    const columns = this.kinds.length;
    const { fs, fe, esc } = this;
    const length = buf.length;
    let rowStart = from;
    let fieldStart = from;
    let f = 0;
    // One pass over the bytes: tabs end values, newlines end rows. An escaped character is
    // skipped (COPY writes tab and newline inside a value as `\t` and `\n`, so a raw one never
    // follows a backslash).
    for (let i = from; i < length; i++) {
      const b = buf[i] as number;
      if (b > NL && b !== BACKSLASH) continue;
      if (b === TAB) {
        if (f < columns) {
          fs[f] = fieldStart;
          fe[f] = i;
        }
        f++;
        fieldStart = i + 1;
      } else if (b === NL) {
        if (f < columns) {
          fs[f] = fieldStart;
          fe[f] = i;
        }
        this.row(buf, f + 1, i - rowStart);
        f = 0;
        fieldStart = i + 1;
        rowStart = i + 1;
      } else if (b === BACKSLASH) {
        if (f < columns) esc[f] = 1;
        i++;
      }
    }
    esc.fill(0);
    // The last row is not complete: it is read again, whole, with the next data.
    if (rowStart < length) this.carry = Buffer.from(buf.subarray(rowStart));
  }

  /** The rows packed since the last call, or null. */
  take(): PackedBatch | null {
    return this.out.take();
  }

  /** The COPY ended: a row cut short is an error. */
  end(): void {
    if (this.carry) throw corrupt('the data ended inside a row');
  }

  private row(buf: Buffer, count: number, length: number): void {
    const kinds = this.kinds;
    const columns = kinds.length;
    if (count !== columns) {
      this.esc.fill(0);
      throw corrupt(`a row has ${count} values for ${columns} columns`);
    }
    const { fs, fe, esc } = this;
    const out = this.out;
    // A value packs to at most its text + 5 bytes, or 9 for a number.
    out.room(5 + columns * 14 + length);
    out.arrayHeader(columns);
    for (let c = 0; c < columns; c++) {
      this.value(kinds[c] as CopyKind, buf, fs[c] as number, fe[c] as number, esc[c] === 1);
      esc[c] = 0;
    }
    out.endRow();
  }

  private value(kind: CopyKind, buf: Buffer, s: number, e: number, escaped: boolean): void {
    const out = this.out;
    if (escaped && e - s === 2 && buf[s] === BACKSLASH && buf[s + 1] === 0x4e) {
      out.nil();
      return;
    }
    switch (kind) {
      case CopyKind.Number: {
        const n = parseSmallInt(buf, s, e);
        out.number(n !== undefined ? n : Number(buf.toString('latin1', s, e)));
        return;
      }
      case CopyKind.Int8: {
        const n = parseSmallInt(buf, s, e);
        if (n !== undefined) {
          out.number(n);
          return;
        }
        const v = Number(buf.toString('latin1', s, e));
        if (Number.isSafeInteger(v) && v >= -MAX_SAFE && v <= MAX_SAFE) out.number(v);
        else out.strBytes(buf, s, e);
        return;
      }
      case CopyKind.Bool:
        out.number(e - s === 1 && buf[s] === 0x74 ? 1 : 0);
        return;
      case CopyKind.Bytea: {
        const text = escaped ? this.unescape(buf, s, e).toString('utf8') : buf.toString('utf8', s, e);
        out.str(Buffer.from(this.parseBytea(text)).toString('base64'));
        return;
      }
      case CopyKind.Timestamptz: {
        let src = buf;
        let us = s;
        let ue = e;
        if (escaped) {
          src = this.unescape(buf, s, e);
          us = 0;
          ue = src.length;
        }
        if (ue - us >= 3 && src[ue - 3] === 0x2b && src[ue - 2] === 0x30 && src[ue - 1] === 0x30) {
          out.strHeader(ue - us - 2);
          const b = out.buf;
          let o = out.o;
          // A byte loop: cheaper than Buffer#copy for a value this short.
          for (let i = us; i < ue - 3; i++) b[o++] = src[i] as number;
          b[o++] = 0x5a;
          out.o = o;
        } else {
          out.strBytes(src, us, ue);
        }
        return;
      }
      default:
        if (escaped) {
          const u = this.unescape(buf, s, e);
          out.strBytes(u, 0, u.length);
        } else {
          out.strBytes(buf, s, e);
        }
    }
  }

  /** The value's bytes with COPY's backslash escapes undone (a view of a scratch buffer). */
  private unescape(buf: Buffer, s: number, e: number): Buffer {
    if (this.scratch.length < e - s)
      this.scratch = Buffer.allocUnsafe(Math.max(e - s, this.scratch.length * 2));
    const t = this.scratch;
    let o = 0;
    for (let i = s; i < e; i++) {
      const b = buf[i] as number;
      if (b !== BACKSLASH) {
        t[o++] = b;
        continue;
      }
      if (++i >= e) throw corrupt('a value ends in a lone backslash');
      const x = buf[i] as number;
      switch (x) {
        case 0x62: // b
          t[o++] = 0x08;
          break;
        case 0x66: // f
          t[o++] = 0x0c;
          break;
        case 0x6e: // n
          t[o++] = 0x0a;
          break;
        case 0x72: // r
          t[o++] = 0x0d;
          break;
        case 0x74: // t
          t[o++] = 0x09;
          break;
        case 0x76: // v
          t[o++] = 0x0b;
          break;
        case 0x78: {
          // \xHH: one or two hex digits
          let v = 0;
          let digits = 0;
          while (digits < 2 && i + 1 < e && hex(buf[i + 1] as number) >= 0) {
            v = v * 16 + hex(buf[++i] as number);
            digits++;
          }
          t[o++] = digits === 0 ? 0x78 : v;
          break;
        }
        default:
          if (x >= 0x30 && x <= 0x37) {
            // \NNN: one to three octal digits
            let v = x - 0x30;
            let digits = 1;
            while (
              digits < 3 &&
              i + 1 < e &&
              (buf[i + 1] as number) >= 0x30 &&
              (buf[i + 1] as number) <= 0x37
            ) {
              v = v * 8 + ((buf[++i] as number) - 0x30);
              digits++;
            }
            t[o++] = v & 0xff;
          } else {
            // Any other escaped character stands for itself (`\\` → `\`).
            t[o++] = x;
          }
      }
    }
    return t.subarray(0, o);
  }
}

function hex(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

/** An integer of at most 9 digits (optionally `-`), or undefined for anything else. */
function parseSmallInt(buf: Buffer, s: number, e: number): number | undefined {
  let i = s;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  const digits = e - i;
  if (digits < 1 || digits > 9) return undefined;
  let v = 0;
  for (; i < e; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}
