import { hash } from 'node:crypto';
import { type BytesLike, toBytes } from './encoding.js';

/**
 * SHA-256 of `data` as 64 lowercase hex characters; strings are hashed as UTF-8. This is the form
 * used for SQL text hashes, token hashes and chunk digests across Keystage, so that a hash computed
 * by the agent and one computed by the control plane compare as plain strings.
 */
export function sha256Hex(data: BytesLike): string {
  return hash('sha256', toBytes(data), 'hex');
}

/** SHA-256 of `data` as 32 raw bytes; strings are hashed as UTF-8. */
export function sha256(data: BytesLike): Buffer {
  return hash('sha256', toBytes(data), 'buffer');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** True when `value` looks like a {@link sha256Hex} result (64 lowercase hex characters). */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}
