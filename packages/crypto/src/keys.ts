import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { decodeBase64Strict } from './encoding.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sha256Hex } from './hash.js';

// Asymmetric keys (Ed25519 for signing, X25519 for key agreement) travel and rest as DER,
// base64-encoded (standard alphabet, padded): public keys as SubjectPublicKeyInfo (SPKI), private
// keys as PKCS#8. A KeyObject is accepted wherever a key is, so hot paths parse once.

/** A public key as stored (SPKI DER base64) or already imported. */
export type PublicKeyInput = string | KeyObject;
/** A private key as stored (PKCS#8 DER base64) or already imported. */
export type PrivateKeyInput = string | KeyObject;

/** Writes a public key (Ed25519 or X25519) as SPKI DER base64. */
export function exportPublicKey(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** Writes a private key (Ed25519 or X25519) as PKCS#8 DER base64. */
export function exportPrivateKey(key: KeyObject): string {
  return key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

/**
 * A short, stable name for a public key: sha256 of its SPKI DER bytes, 64 lowercase hex characters.
 * Signed envelopes carry it as `keyId` so a verifier can tell "signed by another key" (rotation,
 * wrong environment) from "tampered". Works for any public key this package produces.
 */
export function publicKeyFingerprint(publicKey: PublicKeyInput): string {
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  if (key.type !== 'public') {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'a fingerprint needs a public key');
  }
  return sha256Hex(key.export({ format: 'der', type: 'spki' }));
}

/** Shared by the Ed25519 and X25519 modules: parse DER base64 (or check a KeyObject) strictly. */
export function importKey(
  key: string | KeyObject,
  kind: 'public' | 'private',
  algorithm: 'ed25519' | 'x25519',
): KeyObject {
  const object =
    key instanceof KeyObject ? key : kind === 'public' ? parsePublicKey(key) : parsePrivateKey(key);
  if (object.type !== kind || object.asymmetricKeyType !== algorithm) {
    throw new CryptoError(
      CryptoErrorCode.InvalidKey,
      `expected an ${algorithm} ${kind} key, got ${object.asymmetricKeyType ?? 'a secret'} ${object.type} key`,
    );
  }
  return object;
}

function parsePublicKey(text: unknown): KeyObject {
  const der = typeof text === 'string' ? decodeBase64Strict(text) : undefined;
  if (!der || der.length === 0) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'public key is not canonical base64 (SPKI DER)');
  }
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'public key is not valid SPKI DER', { cause });
  }
}

function parsePrivateKey(text: unknown): KeyObject {
  const der = typeof text === 'string' ? decodeBase64Strict(text) : undefined;
  if (!der || der.length === 0) {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'private key is not canonical base64 (PKCS#8 DER)');
  }
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    // The cause from OpenSSL never contains the key bytes.
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'private key is not valid PKCS#8 DER', { cause });
  }
}

/**
 * A fresh key pair as DER (SPKI, PKCS#8), encoded by the generation itself. Never export a key
 * object fresh from `generateKeyPairSync`: Node 20 can deadlock for good when a garbage collection
 * runs during the export (exporting holds the key's lock while it allocates; the collection then
 * finalizes the generation job, whose destructor takes the same lock). An agent stopped that way in
 * the middle of a run (seen here once, in `wrapKeyForRecipient`: its main thread in
 * `ExportJWKEdKey` → GC → `~KeyGenJob` → mutex).
 */
export function generateDerKeyPair(type: 'ed25519' | 'x25519'): { publicKey: Buffer; privateKey: Buffer } {
  return generateKeyPairSync(type as 'ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
}
