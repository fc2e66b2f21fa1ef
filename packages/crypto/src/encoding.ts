import { Buffer } from 'node:buffer';

/** Bytes, or a string taken as its UTF-8 encoding. */
export type BytesLike = string | Uint8Array;

/** UTF-8 for strings; a zero-copy view for byte arrays. */
export function toBytes(data: BytesLike): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Decodes standard base64 (with padding) and returns undefined unless `text` is the one canonical
 * encoding of the result. Node's own decoder skips invalid characters, which would let many strings
 * stand for the same signature or key; this refuses them.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** As {@link decodeBase64Strict}, for unpadded base64url. */
export function decodeBase64UrlStrict(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}
