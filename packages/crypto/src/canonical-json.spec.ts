import { describe, expect, it } from 'vitest';
import { CANONICAL_JSON_MAX_DEPTH, canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every level and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  it('is independent of the order properties were inserted in', () => {
    const one = { runId: 'r', sql: 'SELECT 1', parameters: [{ name: 'a', value: 1 }], deadline: 'd' };
    const two = { deadline: 'd', parameters: [{ value: 1, name: 'a' }], sql: 'SELECT 1', runId: 'r' };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
    // …but array order is data and is kept.
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  it('matches the RFC 8785 (JCS) example for numbers, strings and literals', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('orders keys by UTF-16 code units, as RFC 8785 does', () => {
    // U+1F600 is a surrogate pair starting 0xD83D, which sorts before U+FB01 (0xFB01).
    expect(canonicalJson({ '\uFB01': 1, '😀': 2, a: 3, B: 4 })).toBe('{"B":4,"a":3,"😀":2,"ﬁ":1}');
  });

  it('writes -0 as 0 and survives a parse/serialise round trip unchanged', () => {
    expect(canonicalJson(-0)).toBe('0');
    const value = { n: 0.1 + 0.2, big: 2 ** 53 - 1, tiny: 5e-324, s: 'line\nbreak\u2028', nested: [[], {}] };
    const once = canonicalJson(value);
    expect(canonicalJson(JSON.parse(once))).toBe(once);
  });

  it.each([
    ['undefined', undefined],
    ['an undefined property', { a: undefined }],
    ['an undefined array element', [1, undefined]],
    ['a sparse array', new Array(3)],
    ['a function', { f: () => 1 }],
    ['a symbol', Symbol('s')],
    ['a symbol-keyed property', { [Symbol('s')]: 1 }],
    ['a bigint', { n: 10n }],
    ['NaN', Number.NaN],
    ['Infinity', { n: Number.POSITIVE_INFINITY }],
    ['-Infinity', [Number.NEGATIVE_INFINITY]],
    ['a Date', { at: new Date(0) }],
    ['a Map', new Map()],
    ['a Buffer', Buffer.from('x')],
    ['a class instance', new (class Thing {})()],
  ])('rejects %s', (_label, value) => {
    expect(() => canonicalJson(value)).toThrowError(
      expect.objectContaining({ code: 'crypto.not_canonicalizable' }),
    );
  });

  it('rejects cycles but allows the same object twice in different branches', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrowError(/cycle/);
  });

  it('accepts objects without a prototype and refuses nesting past the limit', () => {
    const bare = Object.assign(Object.create(null) as object, { b: 1, a: 2 });
    expect(canonicalJson(bare)).toBe('{"a":2,"b":1}');
    let deep: unknown = 1;
    for (let i = 0; i < CANONICAL_JSON_MAX_DEPTH; i++) deep = [deep];
    expect(() => canonicalJson(deep)).not.toThrow();
    expect(() => canonicalJson([deep])).toThrowError(/nesting deeper/);
  });
});
