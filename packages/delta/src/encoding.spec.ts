import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type DeltaValue, encodeKey, type Row, rowDigest } from './encoding.js';
import { DeltaError, DeltaErrorCode } from './errors.js';
import { compareTuples, identity, mulberry32, randomKeyValue } from './test-support/fixtures.js';

const hex = (b: Buffer) => b.toString('hex');

describe('rowDigest', () => {
  it('is the first 16 bytes of SHA-256 over the canonical value encoding', () => {
    // Built by hand from the definition in the README.
    const encoding = Buffer.concat([
      Buffer.from([0x03, 0x01, 0x00, 0x00, 0x00]), // 1: int32 little-endian
      Buffer.from([0x05, 0x01, 0x31]), // "1": length, UTF-8
      Buffer.from([0x02]), // true
      Buffer.from([0x00]), // null
      Buffer.from([0x04, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]), // 1.5: float64 little-endian
      Buffer.from([0x01]), // false
      Buffer.from([0x05, 0x02, 0xc3, 0xa9]), // "é"
      Buffer.from([0x03, 0xff, 0xff, 0xff, 0xff]), // -1
      Buffer.from([0x04, 0, 0, 0, 0, 0, 0, 0xe0, 0x41]), // 2^31: outside int32, so float64
    ]);
    const expected = createHash('sha256').update(encoding).digest().subarray(0, 16);
    const digest = rowDigest([1, '1', true, null, 1.5, false, 'é', -1, 2 ** 31]);
    expect(digest).toHaveLength(16);
    expect(hex(digest)).toBe(hex(expected));
  });

  it('keeps types apart: 1, "1", true, null, "", 0 and false all differ', () => {
    const values: DeltaValue[] = [1, '1', true, 'true', null, 'null', '', 0, false, '0', 1.5, '1.5'];
    const digests = values.map((v) => hex(rowDigest([v])));
    expect(new Set(digests).size).toBe(values.length);
  });

  it('keeps value boundaries apart and depends on column order', () => {
    expect(hex(rowDigest(['ab', 'c']))).not.toBe(hex(rowDigest(['a', 'bc'])));
    expect(hex(rowDigest([1, 2]))).not.toBe(hex(rowDigest([2, 1])));
    expect(hex(rowDigest([null, 'x']))).not.toBe(hex(rowDigest(['x', null])));
    // A big integer arrives as a string and stays distinct from the nearest double.
    expect(hex(rowDigest(['9007199254740993']))).not.toBe(hex(rowDigest([9007199254740992])));
  });

  it('treats equal numbers as equal (1 and 1.0; -0 and 0)', () => {
    expect(hex(rowDigest([1.0]))).toBe(hex(rowDigest([1])));
    expect(hex(rowDigest([-0]))).toBe(hex(rowDigest([0])));
    expect(hex(rowDigest([0.1 + 0.2]))).not.toBe(hex(rowDigest([0.3])));
  });

  it('takes long and non-ASCII strings (multi-byte lengths)', () => {
    const long = 'é'.repeat(200); // 400 bytes: a 2-byte length
    const encoding = Buffer.concat([Buffer.from([0x05, 0x90, 0x03]), Buffer.from(long, 'utf8')]);
    expect(hex(rowDigest([long]))).toBe(hex(createHash('sha256').update(encoding).digest().subarray(0, 16)));
  });

  it('refuses values it cannot encode', () => {
    for (const bad of [undefined, Number.NaN, Number.POSITIVE_INFINITY, {}, [], 1n, () => 1]) {
      let error: unknown;
      try {
        rowDigest([bad as DeltaValue]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DeltaError);
      expect((error as DeltaError).code).toBe(DeltaErrorCode.InvalidRow);
    }
  });
});

describe('encodeKey', () => {
  it('orders by bytes exactly as the key tuples order (types, numbers, UTF-8 strings)', () => {
    const rand = mulberry32(7);
    const seen = new Map<string, Row>();
    while (seen.size < 600) {
      const key = [randomKeyValue(rand), randomKeyValue(rand)];
      seen.set(identity(key), key);
    }
    const keys = [...seen.values()];
    const byBytes = [...keys].sort((a, b) => Buffer.compare(encodeKey(a), encodeKey(b)));
    const byReference = [...keys].sort(compareTuples);
    expect(byBytes.map(identity)).toEqual(byReference.map(identity));
  });

  it('handles the edge cases of the order', () => {
    const ordered: Row[] = [
      [null],
      [false],
      [true],
      [-1e300],
      [-1],
      [-0.5],
      [0],
      [0.5],
      [1],
      [2 ** 31],
      [2 ** 53],
      [''],
      ['\0'],
      ['a'],
      ['a\0'],
      ['a\0b'],
      ['ab'],
      ['é'],
      ['😀'],
    ];
    for (let i = 1; i < ordered.length; i++) {
      expect(Buffer.compare(encodeKey(ordered[i - 1]!), encodeKey(ordered[i]!))).toBe(-1);
    }
    // A string that is a prefix of another sorts first even when more key columns follow.
    expect(Buffer.compare(encodeKey(['a', 'zzz']), encodeKey(['a\0', '']))).toBe(-1);
    expect(Buffer.compare(encodeKey(['a', 'zzz']), encodeKey(['ab', '']))).toBe(-1);
    expect(encodeKey([-0]).equals(encodeKey([0]))).toBe(true);
    expect(encodeKey([1]).equals(encodeKey(['1']))).toBe(false);
  });
});
