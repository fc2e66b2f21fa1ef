import { createCipheriv, createDecipheriv } from 'node:crypto';

// The raw AES-256-GCM primitive, kept apart from the framing in aead.ts so it can be checked
// against published test vectors. Not exported from the package: callers use aead.ts.

export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export function gcmEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const ciphertext = tail.length === 0 ? head : Buffer.concat([head, tail]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** Throws (OpenSSL's "Unsupported state or unable to authenticate data") when anything was altered. */
export function gcmDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const head = decipher.update(ciphertext);
  const tail = decipher.final();
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}
