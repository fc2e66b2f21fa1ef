import { createPublicKey, type KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { type BytesLike, decodeBase64Strict, toBytes } from './encoding.js';
import {
  exportPublicKey,
  generateDerKeyPair,
  importKey,
  type PrivateKeyInput,
  type PublicKeyInput,
} from './keys.js';

/**
 * An Ed25519 key pair as text. Keys are DER, base64-encoded (standard alphabet, padded):
 * the public key as SubjectPublicKeyInfo (SPKI), the private key as PKCS#8. This is the form the
 * `agents.public_key` column stores, it survives JSON and environment variables, and any X.509-aware
 * tool can read it (`openssl pkey -inform DER`).
 */
export interface SigningKeyPair {
  /** SPKI DER, base64. Safe to publish. */
  publicKey: string;
  /** PKCS#8 DER, base64. Secret. */
  privateKey: string;
}

/** Length of an Ed25519 signature in bytes. */
export const ED25519_SIGNATURE_BYTES = 64;

/**
 * Generates a fresh Ed25519 key pair from the operating system's CSPRNG. The agent calls this at
 * enrolment (its identity key never leaves the school); the control plane uses one for job signing.
 */
export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateDerKeyPair('ed25519');
  return { publicKey: publicKey.toString('base64'), privateKey: privateKey.toString('base64') };
}

/**
 * Parses an Ed25519 public key (SPKI DER base64) once, so hot paths (the gateway verifying many
 * agents) can keep the KeyObject. Throws `crypto.invalid_key` for anything else, including keys of
 * other algorithms: a pinned key of the wrong type must fail loudly, not verify nothing.
 */
export function importSigningPublicKey(key: PublicKeyInput): KeyObject {
  return importKey(key, 'public', 'ed25519');
}

/** As {@link importSigningPublicKey}, for the private key (PKCS#8 DER base64). */
export function importSigningPrivateKey(key: PrivateKeyInput): KeyObject {
  return importKey(key, 'private', 'ed25519');
}

/** The public half of an Ed25519 private key, as SPKI DER base64 (e.g. for `agent status`). */
export function signingPublicKeyOf(privateKey: PrivateKeyInput): string {
  return exportPublicKey(createPublicKey(importSigningPrivateKey(privateKey)));
}

/**
 * Signs `data` (strings as UTF-8) with Ed25519 and returns the 64-byte signature in base64.
 * Ed25519 is deterministic: the same key and data always give the same signature.
 */
export function sign(data: BytesLike, privateKey: PrivateKeyInput): string {
  return nodeSign(null, toBytes(data), importSigningPrivateKey(privateKey)).toString('base64');
}

/**
 * True only if `signature` (base64, canonical encoding, 64 bytes) is a valid Ed25519 signature of
 * `data` by `publicKey`. A malformed signature is simply `false`, never an exception, so callers can
 * treat attacker input uniformly; a malformed *key* throws `crypto.invalid_key`, because that is a
 * configuration fault the operator must see.
 */
export function verify(data: BytesLike, signature: string, publicKey: PublicKeyInput): boolean {
  const key = importSigningPublicKey(publicKey);
  if (typeof signature !== 'string') return false;
  const bytes = decodeBase64Strict(signature);
  if (!bytes || bytes.length !== ED25519_SIGNATURE_BYTES) return false;
  return nodeVerify(null, toBytes(data), key, bytes);
}
