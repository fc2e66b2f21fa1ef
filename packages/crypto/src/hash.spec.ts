import { describe, expect, it } from 'vitest';
import { isSha256Hex, sha256, sha256Hex } from './hash.js';

describe('sha256', () => {
  it('matches the FIPS 180-2 known answers', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(Buffer.from('abc')).toString('hex')).toBe(sha256Hex('abc'));
  });

  it('hashes strings as UTF-8, so SQL text hashes agree across agent and cloud', () => {
    const sql = "SELECT forename FROM pupils WHERE surname = 'Ó Súilleabháin'";
    expect(sha256Hex(sql)).toBe(sha256Hex(Buffer.from(sql, 'utf8')));
    expect(sha256Hex(sql)).not.toBe(sha256Hex(Buffer.from(sql, 'latin1')));
    expect(sha256Hex(new Uint8Array(Buffer.from(sql)).subarray(0))).toBe(sha256Hex(sql));
  });

  it('recognises its own output format only', () => {
    expect(isSha256Hex(sha256Hex('x'))).toBe(true);
    expect(isSha256Hex(sha256Hex('x').toUpperCase())).toBe(false);
    expect(isSha256Hex('abc')).toBe(false);
  });
});
