import { describe, expect, it } from 'vitest';
import { sha256Hex } from './hash.js';
import {
  constantTimeEqual,
  generateToken,
  hashToken,
  hasTokenPrefix,
  TokenPrefix,
  verifyToken,
} from './tokens.js';

describe('tokens', () => {
  it('carry the prefix and at least 32 random bytes in base64url', () => {
    const token = generateToken(TokenPrefix.Enrolment);
    expect(token).toMatch(/^ks_enr_[A-Za-z0-9_-]{43}$/);
    expect(hasTokenPrefix(token, 'ks_enr')).toBe(true);
    expect(hasTokenPrefix(token, 'ks_api')).toBe(false);
    expect(Buffer.from(token.slice('ks_enr_'.length), 'base64url')).toHaveLength(32);
    expect(generateToken('ks_x', 48).slice('ks_x_'.length)).toHaveLength(64);
  });

  it('do not repeat, and their bytes look uniformly random', () => {
    const tokens = Array.from({ length: 2000 }, () => generateToken('ks_enr'));
    expect(new Set(tokens).size).toBe(tokens.length);
    // 64,000 random bytes: each bit position should be set about half the time (a broken
    // generator — a constant, a counter, a short seed — fails this by a wide margin).
    const bytes = Buffer.concat(tokens.map((t) => Buffer.from(t.slice(7), 'base64url')));
    for (let bit = 0; bit < 8; bit++) {
      let ones = 0;
      for (const byte of bytes) ones += (byte >> bit) & 1;
      expect(ones / bytes.length).toBeGreaterThan(0.48);
      expect(ones / bytes.length).toBeLessThan(0.52);
    }
    expect(new Set(bytes).size).toBe(256);
  });

  it('refuse weak sizes and odd prefixes', () => {
    expect(() => generateToken('ks_enr', 16)).toThrowError(
      expect.objectContaining({ code: 'crypto.invalid_input' }),
    );
    for (const prefix of ['', 'KS', 'ks_', '_ks', 'ks enr', 'ks-enr']) {
      expect(() => generateToken(prefix)).toThrowError(/prefix/);
    }
  });

  it('are stored as sha256 hex and verified against the hash', () => {
    const token = generateToken('ks_enr');
    const stored = hashToken(token);
    expect(stored).toBe(sha256Hex(token));
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyToken(token, stored)).toBe(true);
    expect(verifyToken(`${token}x`, stored)).toBe(false);
    expect(verifyToken(generateToken('ks_enr'), stored)).toBe(false);
    expect(verifyToken(undefined as unknown as string, stored)).toBe(false);
  });

  it('compare in constant time and handle unequal lengths', () => {
    const a = sha256Hex('a');
    expect(constantTimeEqual(a, sha256Hex('a'))).toBe(true);
    expect(constantTimeEqual(a, sha256Hex('b'))).toBe(false);
    expect(constantTimeEqual(a, a.slice(0, 63))).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
    // Same number of UTF-16 units, different number of bytes.
    expect(constantTimeEqual('é', 'e')).toBe(false);
    expect(constantTimeEqual(a, null as unknown as string)).toBe(false);
  });
});
