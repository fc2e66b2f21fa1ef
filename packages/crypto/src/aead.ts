import { randomBytes } from 'node:crypto';
import { type BytesLike, toBytes } from './encoding.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { gcmDecrypt, gcmEncrypt, IV_BYTES, KEY_BYTES, TAG_BYTES } from './gcm.js';

/**
 * AES-256-GCM authenticated encryption in one compact, versioned byte format:
 *
 *     version (1 byte, 0x01) | iv (12 bytes) | tag (16 bytes) | ciphertext (same length as plaintext)
 *
 * The version byte is also fed to GCM as the first byte of the associated data, so it cannot be
 * swapped without failing authentication. The IV is 12 fresh random bytes per message, which is
 * safe for up to 2^32 messages under one key (NIST SP 800-38D); Keystage uses a key per run or per
 * tenant, far below that.
 */
export const SEALED_FORMAT_V1 = 0x01;
/** Bytes a sealed message adds to its plaintext. */
export const SEALED_OVERHEAD_BYTES = 1 + IV_BYTES + TAG_BYTES;
/** AES-256 keys are 32 bytes. */
export const AEAD_KEY_BYTES = KEY_BYTES;

const EMPTY = Buffer.alloc(0);
const HEADER_V1 = Buffer.from([SEALED_FORMAT_V1]);

/**
 * 32 bytes from the operating system's CSPRNG: a fresh data key (per run, per object) or key-encryption
 * key. Treat the result as secret; wrap it before storing or sending it.
 */
export function generateDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * Encrypts and authenticates `plaintext` (strings as UTF-8) under a 32-byte `key`. `aad` is data that
 * is not encrypted or included in the output but must be presented, byte for byte, to decrypt:
 * use it to bind the ciphertext to its context (a run id, an object path), so it cannot be moved.
 */
export function encrypt(plaintext: BytesLike, key: Uint8Array, aad: BytesLike = EMPTY): Buffer {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const { ciphertext, tag } = gcmEncrypt(key, iv, toBytes(plaintext), withHeader(toBytes(aad)));
  return Buffer.concat([HEADER_V1, iv, tag, ciphertext], SEALED_OVERHEAD_BYTES + ciphertext.length);
}

/**
 * Reverses {@link encrypt}. Throws `crypto.decrypt_failed` if the key or the associated data differ,
 * or if any byte of the sealed message was changed or cut; `crypto.unsupported_format` for an unknown
 * version byte. Nothing is returned unless the whole message authenticated.
 */
export function decrypt(sealed: Uint8Array, key: Uint8Array, aad: BytesLike = EMPTY): Buffer {
  checkKey(key);
  const bytes = toBytes(sealed);
  if (bytes.length < SEALED_OVERHEAD_BYTES) {
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'sealed message is too short');
  }
  if (bytes[0] !== SEALED_FORMAT_V1) {
    throw new CryptoError(CryptoErrorCode.UnsupportedFormat, `unknown sealed format version ${bytes[0]}`);
  }
  const iv = bytes.subarray(1, 1 + IV_BYTES);
  const tag = bytes.subarray(1 + IV_BYTES, SEALED_OVERHEAD_BYTES);
  const ciphertext = bytes.subarray(SEALED_OVERHEAD_BYTES);
  try {
    return gcmDecrypt(key, iv, ciphertext, tag, withHeader(toBytes(aad)));
  } catch (cause) {
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'authentication failed', { cause });
  }
}

/** Identifies one numbered chunk of one run's result stream. */
export interface ChunkContext {
  /** The run the chunk belongs to. */
  runId: string;
  /** The chunk's sequence number: 0, 1, 2 … (a safe non-negative integer). */
  seq: number;
}

const CHUNK_CONTEXT = Buffer.from('keystage.chunk.v1\0', 'utf8');

/**
 * Encrypts one chunk of a result stream with {@link encrypt}, binding its run id and sequence number
 * as associated data: a chunk replayed into another run, or moved to another position of the same
 * run, fails to decrypt. Each chunk gets its own random IV. Truncation (dropping the last chunks) is
 * not detectable per chunk; the final `run.complete` message's chunk count and digest cover it.
 */
export function encryptChunk(plaintext: BytesLike, key: Uint8Array, context: ChunkContext): Buffer {
  return encrypt(plaintext, key, chunkAad(context));
}

/** Reverses {@link encryptChunk}; throws `crypto.decrypt_failed` unless run id and seq match too. */
export function decryptChunk(sealed: Uint8Array, key: Uint8Array, context: ChunkContext): Buffer {
  return decrypt(sealed, key, chunkAad(context));
}

/**
 * The associated data of a chunk: a context label, the run id (length-prefixed, so no two
 * (runId, seq) pairs share an encoding) and the sequence number as a 64-bit big-endian integer.
 */
function chunkAad({ runId, seq }: ChunkContext): Buffer {
  if (typeof runId !== 'string' || runId.length === 0) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'a chunk needs a run id');
  }
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'a chunk sequence number is a non-negative integer');
  }
  const id = Buffer.from(runId, 'utf8');
  if (id.length > 0xffff) throw new CryptoError(CryptoErrorCode.InvalidInput, 'run id too long');
  const out = Buffer.alloc(CHUNK_CONTEXT.length + 2 + id.length + 8);
  let at = CHUNK_CONTEXT.copy(out, 0);
  at = out.writeUInt16BE(id.length, at);
  at += id.copy(out, at);
  out.writeBigUInt64BE(BigInt(seq), at);
  return out;
}

function withHeader(aad: Buffer): Buffer {
  return aad.length === 0 ? HEADER_V1 : Buffer.concat([HEADER_V1, aad]);
}

/** Refuses anything but exactly 32 bytes, before OpenSSL sees it. */
export function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, `an AES-256 key is ${KEY_BYTES} bytes`);
  }
}
