import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sha256Hex } from './hash.js';

/**
 * Token prefixes in use. A prefix tells a human (and secret scanners) what a leaked token is; it
 * carries no security. Add new kinds here so they stay unique.
 */
export const TokenPrefix = {
  /** One-time enrolment token for a school's agent. */
  Enrolment: 'ks_enr',
} as const;

/** Random bytes in a token unless asked for more: 256 bits, beyond any guessing. */
export const DEFAULT_TOKEN_BYTES = 32;
const PREFIX = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

/**
 * A fresh bearer token: `<prefix>_<base64url of ≥ 32 random bytes>`, e.g. `ks_enr_3q2-…` (43
 * characters after the prefix for 32 bytes). URL- and header-safe. Show it once; store only
 * {@link hashToken} of it.
 */
export function generateToken(prefix: string, bytes: number = DEFAULT_TOKEN_BYTES): string {
  if (!PREFIX.test(prefix)) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'a token prefix is lowercase words joined by _');
  }
  if (!Number.isInteger(bytes) || bytes < DEFAULT_TOKEN_BYTES || bytes > 1024) {
    throw new CryptoError(
      CryptoErrorCode.InvalidInput,
      `a token has ${DEFAULT_TOKEN_BYTES} to 1024 random bytes`,
    );
  }
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}

/** True when `token` was made by {@link generateToken} with `prefix` (cheap pre-check before lookup). */
export function hasTokenPrefix(token: string, prefix: string): boolean {
  return typeof token === 'string' && token.startsWith(`${prefix}_`) && token.length > prefix.length + 1;
}

/**
 * The form a token is stored in: sha256 of its UTF-8, 64 lowercase hex characters. A plain hash is
 * enough (no salt, no slow KDF) because tokens are 256-bit random, not guessable passwords; it makes
 * the database useless to a thief while still allowing lookup by hash.
 */
export function hashToken(token: string): string {
  return sha256Hex(token);
}

/**
 * Compares two strings (typically two hex hashes) in time that does not depend on where they differ,
 * so response timing leaks nothing about a stored hash. Strings of different byte length compare
 * unequal at once: the length of a hash is public.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** True when `token` hashes to `storedHash`, compared in constant time. */
export function verifyToken(token: string, storedHash: string): boolean {
  if (typeof token !== 'string') return false;
  return constantTimeEqual(hashToken(token), storedHash);
}
