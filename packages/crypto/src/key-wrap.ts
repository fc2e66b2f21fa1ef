import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { AEAD_KEY_BYTES, decrypt, encrypt, SEALED_OVERHEAD_BYTES } from './aead.js';
import { type BytesLike, toBytes } from './encoding.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { gcmDecrypt, gcmEncrypt, IV_BYTES, TAG_BYTES } from './gcm.js';
import { generateDerKeyPair, importKey, type PrivateKeyInput, type PublicKeyInput } from './keys.js';

/**
 * An X25519 key pair for receiving wrapped keys, in the same text form as signing keys: public key
 * SPKI DER base64, private key PKCS#8 DER base64. The control plane holds one so agents can wrap each
 * run's data key for it.
 */
export interface WrappingKeyPair {
  publicKey: string;
  privateKey: string;
}

/** Format version of a key wrapped for a recipient. */
export const RECIPIENT_WRAP_FORMAT_V1 = 0x01;
const X25519_PUBLIC_BYTES = 32;
const RECIPIENT_INFO = Buffer.from('keystage.wrap-for-recipient.v1', 'utf8');
const RECIPIENT_HEADER = Buffer.from([RECIPIENT_WRAP_FORMAT_V1]);
const RECIPIENT_AAD = Buffer.from('keystage.wrap-for-recipient.v1\0', 'utf8');
const SYMMETRIC_AAD = Buffer.from('keystage.wrap.v1\0', 'utf8');
// The same info layout as the control plane's first deriveKey (apps/cloud/src/common/secrets.ts), so
// keys derived there stay derivable here when it moves to this package.
const KDF_INFO_PREFIX = 'keystage:';

/** The DER (SPKI) of an X25519 public key before its 32 raw bytes. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** Length of a data key wrapped by {@link wrapKeyForRecipient}. */
export const RECIPIENT_WRAPPED_KEY_BYTES = 1 + X25519_PUBLIC_BYTES + IV_BYTES + TAG_BYTES + AEAD_KEY_BYTES;
/** Length of a data key wrapped by {@link wrapKey}. */
export const WRAPPED_KEY_BYTES = SEALED_OVERHEAD_BYTES + AEAD_KEY_BYTES;

/** Generates an X25519 key pair from the operating system's CSPRNG. */
export function generateWrappingKeyPair(): WrappingKeyPair {
  const { publicKey, privateKey } = generateDerKeyPair('x25519');
  return { publicKey: publicKey.toString('base64'), privateKey: privateKey.toString('base64') };
}

/** Parses an X25519 public key once (SPKI DER base64); throws `crypto.invalid_key` otherwise. */
export function importWrappingPublicKey(key: PublicKeyInput): KeyObject {
  return importKey(key, 'public', 'x25519');
}

/** Parses an X25519 private key once (PKCS#8 DER base64); throws `crypto.invalid_key` otherwise. */
export function importWrappingPrivateKey(key: PrivateKeyInput): KeyObject {
  return importKey(key, 'private', 'x25519');
}

/**
 * Wraps a 32-byte data key so that only the holder of `recipientPublicKey`'s private key can unwrap
 * it ("sealed box"): a fresh ephemeral X25519 key pair per call, ECDH with the recipient, HKDF-SHA256
 * (salt: both public keys) to a one-time key, AES-256-GCM over the data key. The sender keeps no
 * secret that could open it later, and two wraps of the same key look unrelated.
 *
 * Format (93 bytes): version (0x01) | ephemeral public key (32, raw) | iv (12) | tag (16) |
 * encrypted key (32). The GCM associated data is the version byte, a context label and `aad`:
 * pass the run id as `aad` to bind the wrap to its run (unwrapping needs the same bytes).
 */
export function wrapKeyForRecipient(
  dataKey: Uint8Array,
  recipientPublicKey: PublicKeyInput,
  aad: BytesLike = '',
): Buffer {
  checkDataKey(dataKey);
  const recipient = importWrappingPublicKey(recipientPublicKey);
  // The ephemeral pair as DER straight from its generation (see generateDerKeyPair: exporting the
  // fresh key object can deadlock); its raw public key is the SPKI's last 32 bytes.
  const ephemeral = generateDerKeyPair('x25519');
  if (
    ephemeral.publicKey.length !== X25519_SPKI_PREFIX.length + X25519_PUBLIC_BYTES ||
    !ephemeral.publicKey.subarray(0, X25519_SPKI_PREFIX.length).equals(X25519_SPKI_PREFIX)
  ) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'unexpected X25519 public key encoding');
  }
  const ephemeralRaw = ephemeral.publicKey.subarray(X25519_SPKI_PREFIX.length);
  const ephemeralPrivate = createPrivateKey({ key: ephemeral.privateKey, format: 'der', type: 'pkcs8' });
  const kek = recipientKek(ephemeralPrivate, recipient, ephemeralRaw, rawPublicKey(recipient));
  const iv = randomBytes(IV_BYTES);
  const { ciphertext, tag } = gcmEncrypt(kek, iv, dataKey, recipientAad(aad));
  return Buffer.concat([RECIPIENT_HEADER, ephemeralRaw, iv, tag, ciphertext]);
}

/**
 * Reverses {@link wrapKeyForRecipient} with the recipient's private key. Throws
 * `crypto.decrypt_failed` for any other private key, other `aad`, or any altered byte.
 */
export function unwrapKeyForRecipient(
  wrapped: Uint8Array,
  recipientPrivateKey: PrivateKeyInput,
  aad: BytesLike = '',
): Buffer {
  const privateKey = importWrappingPrivateKey(recipientPrivateKey);
  const bytes = toBytes(wrapped);
  if (bytes.length !== RECIPIENT_WRAPPED_KEY_BYTES) {
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'wrapped key has the wrong length');
  }
  if (bytes[0] !== RECIPIENT_WRAP_FORMAT_V1) {
    throw new CryptoError(CryptoErrorCode.UnsupportedFormat, `unknown wrapped key version ${bytes[0]}`);
  }
  const ephemeralRaw = bytes.subarray(1, 1 + X25519_PUBLIC_BYTES);
  let kek: Buffer;
  try {
    const ephemeral = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, ephemeralRaw]),
      format: 'der',
      type: 'spki',
    });
    kek = recipientKek(privateKey, ephemeral, ephemeralRaw, rawPublicKey(createPublicKey(privateKey)));
  } catch (cause) {
    if (cause instanceof CryptoError) throw cause;
    // A low-order or otherwise unusable ephemeral point: treat like any forgery.
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'wrapped key is not valid', { cause });
  }
  const ivAt = 1 + X25519_PUBLIC_BYTES;
  const tagAt = ivAt + IV_BYTES;
  const keyAt = tagAt + TAG_BYTES;
  try {
    return gcmDecrypt(
      kek,
      bytes.subarray(ivAt, tagAt),
      bytes.subarray(keyAt),
      bytes.subarray(tagAt, keyAt),
      recipientAad(aad),
    );
  } catch (cause) {
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'authentication failed', { cause });
  }
}

/**
 * Wraps a 32-byte data key under a 32-byte key-encryption key with AES-256-GCM, e.g. a snapshot's
 * data key under its tenant's key for storage at rest. `aad` binds it to its context (the object id).
 * Format: the sealed format of `encrypt` (version | iv | tag | ciphertext).
 */
export function wrapKey(dataKey: Uint8Array, kek: Uint8Array, aad: BytesLike = ''): Buffer {
  checkDataKey(dataKey);
  return encrypt(dataKey, kek, Buffer.concat([SYMMETRIC_AAD, toBytes(aad)]));
}

/** Reverses {@link wrapKey}; throws `crypto.decrypt_failed` for a wrong key, wrong aad or altered byte. */
export function unwrapKey(wrapped: Uint8Array, kek: Uint8Array, aad: BytesLike = ''): Buffer {
  const dataKey = decrypt(wrapped, kek, Buffer.concat([SYMMETRIC_AAD, toBytes(aad)]));
  checkDataKey(dataKey);
  return dataKey;
}

export interface DeriveKeyOptions {
  /** Optional HKDF salt (non-secret); empty by default. */
  salt?: BytesLike;
  /** Output length in bytes; 32 by default. */
  length?: number;
}

/**
 * Derives an independent key from a master secret with HKDF-SHA256 (RFC 5869). The `purpose` label
 * (e.g. `tenant-kek:<partnerId>`, `agent-credentials`) goes into HKDF's info, so keys for different
 * purposes are unrelated even from one master secret, and learning one reveals nothing about another.
 * The master secret must be at least 32 bytes of real entropy (a random key, not a password: HKDF
 * does not stretch passwords).
 */
export function deriveKey(masterSecret: Uint8Array, purpose: string, options: DeriveKeyOptions = {}): Buffer {
  if (!(masterSecret instanceof Uint8Array) || masterSecret.length < 32) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'a master secret is at least 32 bytes');
  }
  if (typeof purpose !== 'string' || purpose.length === 0 || purpose.length > 256) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'a key purpose is 1 to 256 characters');
  }
  const length = options.length ?? 32;
  if (!Number.isInteger(length) || length < 16 || length > 64) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'a derived key is 16 to 64 bytes');
  }
  const salt = toBytes(options.salt ?? '');
  return Buffer.from(hkdfSync('sha256', masterSecret, salt, `${KDF_INFO_PREFIX}${purpose}`, length));
}

function recipientKek(
  privateKey: KeyObject,
  publicKey: KeyObject,
  ephemeralRaw: Buffer,
  recipientRaw: Buffer,
): Buffer {
  const shared = diffieHellman({ privateKey, publicKey });
  if (shared.every((byte) => byte === 0)) {
    throw new CryptoError(CryptoErrorCode.DecryptFailed, 'key agreement produced the zero secret');
  }
  const salt = Buffer.concat([ephemeralRaw, recipientRaw]);
  return Buffer.from(hkdfSync('sha256', shared, salt, RECIPIENT_INFO, AEAD_KEY_BYTES));
}

function recipientAad(aad: BytesLike): Buffer {
  return Buffer.concat([RECIPIENT_HEADER, RECIPIENT_AAD, toBytes(aad)]);
}

/**
 * The raw 32 bytes of an X25519 public key, from its SPKI DER (not its JWK: exporting a JWK takes
 * the key's lock while it allocates, which can deadlock with a garbage collection — see
 * generateDerKeyPair).
 */
function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  if (
    der.length !== X25519_SPKI_PREFIX.length + X25519_PUBLIC_BYTES ||
    !der.subarray(0, X25519_SPKI_PREFIX.length).equals(X25519_SPKI_PREFIX)
  ) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'not an X25519 public key');
  }
  return der.subarray(X25519_SPKI_PREFIX.length);
}

function checkDataKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_BYTES) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, `a data key is ${AEAD_KEY_BYTES} bytes`);
  }
}
