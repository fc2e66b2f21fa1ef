/**
 * Stable codes for everything this package refuses. Callers map them to their own domain codes
 * (for example `crypto.decrypt_failed` on a chunk becomes the ingest's `chunk.corrupt`).
 */
export const CryptoErrorCode = {
  /** A key has the wrong type, length or encoding. Usually configuration, not an attack. */
  InvalidKey: 'crypto.invalid_key',
  /** An argument is outside what the function accepts (empty purpose, bad prefix, negative sequence…). */
  InvalidInput: 'crypto.invalid_input',
  /** Authenticated decryption failed: wrong key, wrong associated data, or tampered bytes. */
  DecryptFailed: 'crypto.decrypt_failed',
  /** The sealed data starts with a format version this code does not know. */
  UnsupportedFormat: 'crypto.unsupported_format',
  /** A value cannot be written as canonical JSON (undefined, bigint, NaN, cycles, class instances…). */
  NotCanonicalizable: 'crypto.not_canonicalizable',
} as const;
export type CryptoErrorCode = (typeof CryptoErrorCode)[keyof typeof CryptoErrorCode];

/** The one error type thrown by this package. Messages never contain key material or plaintext. */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';

  constructor(
    readonly code: CryptoErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
