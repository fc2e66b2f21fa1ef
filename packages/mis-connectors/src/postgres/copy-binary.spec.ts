import { describe, expect, it } from 'vitest';
import { isMisError } from '../errors.js';
import type { PackedBatch } from '../packed.js';
import { unpackBatch } from '../test-support/packed-view.js';
import { BinaryKind, binaryKindOf, CopyBinaryPacker } from './copy-binary.js';

// A binary COPY stream built by hand (PostgreSQL's own output is held against the text path and
// the cursor in postgres.connector.spec.ts).
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function int(n: number, bytes: 2 | 4): Buffer {
  const b = Buffer.alloc(bytes);
  if (bytes === 2) b.writeInt16BE(n);
  else b.writeInt32BE(n);
  return b;
}

function field(value: Buffer | null): Buffer {
  return value === null ? int(-1, 4) : Buffer.concat([int(value.length, 4), value]);
}

function row(...values: (Buffer | null)[]): Buffer {
  return Buffer.concat([int(values.length, 2), ...values.map(field)]);
}

function stream(rows: Buffer[], { flags = 0, extension = Buffer.alloc(0), trailer = true } = {}): Buffer {
  return Buffer.concat([
    SIGNATURE,
    int(flags, 4),
    int(extension.length, 4),
    extension,
    ...rows,
    ...(trailer ? [int(-1, 2)] : []),
  ]);
}

const i4 = (n: number) => int(n, 4);
const i8 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const text = (s: string) => Buffer.from(s, 'utf8');
const KINDS: BinaryKind[] = [
  BinaryKind.Int4,
  BinaryKind.Text,
  BinaryKind.Date,
  BinaryKind.Timestamptz,
  BinaryKind.Int8,
];
const SAMPLE = stream(
  [
    row(i4(1), text('Zoë 😀'), i4(0), i8(0n), i8(1n)),
    row(i4(-2), null, i4(-730120), i8(-63082281600000000n - 1n), i8(2n ** 62n)),
    row(i4(3), text('x'.repeat(5000)), i4(0x7fffffff), i8(2n ** 63n - 1n), null),
  ],
  { extension: Buffer.from('ext') },
);

function pack(pieces: Buffer[], kinds = KINDS): PackedBatch[] {
  const packer = new CopyBinaryPacker(kinds);
  const out: PackedBatch[] = [];
  for (const piece of pieces) {
    packer.write(piece);
    const b = packer.take();
    if (b) out.push(b);
  }
  packer.end();
  const last = packer.take();
  if (last) out.push(last);
  return out;
}

const bytesOf = (batches: PackedBatch[]) => Buffer.concat(batches.map((b) => b.bytes));

function misCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMisError(err) ? `${err.code}: ${err.message}` : String(err);
  }
  return undefined;
}

describe('CopyBinaryPacker', () => {
  it('packs the values as the text path does', () => {
    const rows = pack([SAMPLE]).flatMap(unpackBatch);
    expect(rows).toEqual([
      [1, 'Zoë 😀', '2000-01-01', '2000-01-01 00:00:00Z', 1],
      [-2, null, '0001-12-31 BC', '0001-12-31 23:59:59.999999+00 BC', '4611686018427387904'],
      [3, 'x'.repeat(5000), 'infinity', 'infinity', null],
    ]);
  });

  it('gives the same bytes however the stream is split', () => {
    const whole = bytesOf(pack([SAMPLE]));
    for (let cut = 1; cut < SAMPLE.length; cut += 61) {
      expect(bytesOf(pack([SAMPLE.subarray(0, cut), SAMPLE.subarray(cut)]))).toEqual(whole);
    }
    const bytewise = Array.from({ length: SAMPLE.length }, (_, i) => SAMPLE.subarray(i, i + 1));
    expect(bytesOf(pack(bytewise))).toEqual(whole);
  });

  it('refuses a stream that is not well formed, with mis.query_failed', () => {
    const bad = (pieces: Buffer[], kinds = KINDS) => misCode(() => pack(pieces, kinds));
    expect(bad([Buffer.from('PGCOPY\nXXXXXXXXXXXXXXXX')])).toMatch(/query_failed.*no PGCOPY signature/);
    expect(bad([stream([], { flags: 0x10000 })])).toMatch(/unexpected header flags/);
    expect(bad([stream([], { flags: 0x40000000 })])).toMatch(/unexpected header flags/);
    expect(bad([stream([row(i4(1))])])).toMatch(/a row has 1 values for 5 columns/);
    expect(bad([stream([row(i4(1), null, text('ab'), null, null)])])).toMatch(/2 bytes where 4/);
    expect(bad([SAMPLE.subarray(0, SAMPLE.length - 2)])).toMatch(/without its end marker/);
    expect(bad([SAMPLE.subarray(0, SAMPLE.length - 9)])).toMatch(/ended inside a row/);
    expect(bad([Buffer.concat([SAMPLE, row(i4(1), null, null, null, null)])])).toMatch(
      /after the end marker/,
    );
    const negative = Buffer.concat([int(1, 2), int(-5, 4)]);
    expect(bad([stream([negative])], [BinaryKind.Text])).toMatch(/negative length/);
    expect(bad([stream([row(Buffer.from([2, 0x7b, 0x7d]))])], [BinaryKind.Jsonb])).toMatch(/jsonb/);
  });

  it('packs the other kinds as the text path does', () => {
    const uuid = Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex');
    const kinds = [
      BinaryKind.Int2,
      BinaryKind.Oid,
      BinaryKind.Bool,
      BinaryKind.Uuid,
      BinaryKind.Bytea,
      BinaryKind.Jsonb,
      BinaryKind.Timestamp,
    ];
    const data = stream([
      row(
        int(-2, 2),
        i4(-1),
        Buffer.from([1]),
        uuid,
        Buffer.from([0, 255, 16]),
        Buffer.from('\x01{"a": 1}', 'latin1'),
        i8(-1n),
      ),
      row(
        int(32767, 2),
        i4(7),
        Buffer.from([0]),
        Buffer.alloc(16),
        Buffer.alloc(0),
        Buffer.from([1]),
        i8(10n),
      ),
    ]);
    expect(pack([data], kinds).flatMap(unpackBatch)).toEqual([
      [
        -2,
        4294967295,
        1,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        'AP8Q',
        '{"a": 1}',
        '1999-12-31 23:59:59.999999',
      ],
      [32767, 7, 0, '00000000-0000-0000-0000-000000000000', '', '', '2000-01-01 00:00:00.00001'],
    ]);
  });

  it('joins a wide row arriving in socket-sized pieces once per piece, not once per field', () => {
    const wide = row(...Array.from({ length: 400 }, (_, i) => text(`${i}`.padEnd(1000, 'x'))));
    const data = stream([wide, wide]);
    const kinds = Array.from({ length: 400 }, () => BinaryKind.Text);
    const pieces = [];
    // pg-copy-streams hands over what each socket read brought: 64 KiB at most.
    for (let i = 0; i < data.length; i += 65536) pieces.push(data.subarray(i, i + 65536));
    const concat = Buffer.concat;
    let joined = 0;
    Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
      joined += list.reduce((n, b) => n + b.length, 0);
      return concat(list, length);
    }) as typeof Buffer.concat;
    try {
      expect(bytesOf(pack(pieces, kinds))).toEqual(bytesOf(pack([data], kinds)));
    } finally {
      Buffer.concat = concat;
    }
    // A row of ≈ 400 KB spans ≈ 7 pieces and is joined ≈ 7 times (once per field: ≈ 400 times).
    expect(joined).toBeLessThan(8 * data.length);
  });

  it('reads only the types whose binary form it knows', () => {
    expect(
      [16, 17, 19, 20, 21, 23, 25, 26, 114, 1042, 1043, 1082, 1114, 1184, 2950, 3802].map(binaryKindOf),
    ).not.toContain(undefined);
    // float4/float8 (text rounding follows extra_float_digits), numeric, "char", time, interval, arrays.
    for (const oid of [700, 701, 1700, 18, 1083, 1186, 1007]) expect(binaryKindOf(oid)).toBeUndefined();
  });
});
