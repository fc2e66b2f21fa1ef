import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from './errors.js';
import { ByteQueue } from './io.js';
import { isValidKey, MAX_KEY_LENGTH, validateKey, validatePrefix } from './keys.js';
import { INVALID_KEYS } from './testing/store-contract.js';

describe('validateKey', () => {
  it('accepts keys of safe segments', () => {
    for (const key of [
      'a',
      'runs/2024-09-01/run_1/results.msgpack',
      'tenant=42/part-00000.bin',
      '.hidden/..dots/...',
      'A-Z_a-z.0-9=',
      `${'s'.repeat(255)}/x`,
      `${'a/'.repeat(Math.floor((MAX_KEY_LENGTH - 1) / 2))}a`.slice(0, MAX_KEY_LENGTH),
    ]) {
      expect(validateKey(key), key).toEqual(key.split('/'));
    }
  });

  it('refuses traversal, absolute paths, empty segments and anything outside the charset', () => {
    for (const key of INVALID_KEYS) {
      expect(() => validateKey(key), JSON.stringify(key)).toThrow(InvalidKeyError);
      expect(isValidKey(key)).toBe(false);
    }
    expect(() => validateKey(42 as unknown as string)).toThrow(InvalidKeyError);
  });
});

describe('validatePrefix', () => {
  it('accepts the empty prefix, a directory and the start of a segment', () => {
    expect(validatePrefix('')).toEqual([]);
    expect(validatePrefix('runs/')).toEqual(['runs']);
    expect(validatePrefix('runs/2024')).toEqual(['runs']);
    expect(validatePrefix('a/b/c')).toEqual(['a', 'b']);
  });

  it('refuses what no key can start with', () => {
    for (const prefix of ['/', '/a', '../', '..', 'a/../', 'a//', 'a//b', 'a b', 'a\\b']) {
      expect(() => validatePrefix(prefix), prefix).toThrow(InvalidKeyError);
    }
  });
});

describe('ByteQueue', () => {
  it('hands out exact byte counts across chunk boundaries', () => {
    const queue = new ByteQueue();
    const input = Buffer.from('abcdefghijklmnopqrstuvwxyz');
    for (let at = 0; at < input.length; at += 3) queue.push(input.subarray(at, at + 3));
    queue.push(Buffer.alloc(0));
    expect(queue.length).toBe(26);
    expect(queue.take(2).toString()).toBe('ab');
    expect(queue.take(5).toString()).toBe('cdefg');
    expect(queue.take(0).length).toBe(0);
    expect(queue.take(10).toString()).toBe('hijklmnopq');
    expect(() => queue.take(10)).toThrow(RangeError);
    expect(queue.takeAll().toString()).toBe('rstuvwxyz');
    expect(queue.length).toBe(0);
  });

  it('stays linear with many tiny chunks', () => {
    const queue = new ByteQueue();
    for (let i = 0; i < 200_000; i++) queue.push(Buffer.from([i & 0xff]));
    let total = 0;
    while (queue.length > 0) total += queue.take(Math.min(65_536, queue.length)).length;
    expect(total).toBe(200_000);
  });
});
