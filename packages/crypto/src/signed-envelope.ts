import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { sign, verify } from './ed25519.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { importKey, type PrivateKeyInput, type PublicKeyInput, publicKeyFingerprint } from './keys.js';

/**
 * A payload signed by the control plane, e.g. a job for an agent. Every field except `signature` is
 * covered by the signature, so the expiry, the nonce and the kind cannot be changed either.
 *
 * The agent pins the control plane's public key at enrolment and refuses an envelope that is
 * unsigned, signed by another key, tampered, of another kind, expired, or whose nonce it has seen
 * before. Keeping the seen nonces is the agent's state: it needs to remember a nonce only until the
 * envelope's `expiresAt` has passed, which {@link VerifyEnvelopeOptions.maxLifetimeMs} bounds.
 *
 * (A type alias rather than an interface, so that it is assignable to index-signature types such as
 * the protocol's `SignedJob`.)
 */
export type SignedEnvelope<T, K extends string = string> = {
  /** Format version of the envelope itself. */
  v: 1;
  alg: 'Ed25519';
  /** What the payload is (`job`, …): an envelope signed for one purpose never verifies as another. */
  kind: K;
  /** {@link publicKeyFingerprint} of the signing key. */
  keyId: string;
  /** 32 random bytes, base64url: unique per envelope, the key of the verifier's replay check. */
  nonce: string;
  /** ISO 8601 UTC, millisecond precision. */
  issuedAt: string;
  /** ISO 8601 UTC: the envelope is refused after this instant. */
  expiresAt: string;
  payload: T;
  /** Ed25519 over {@link envelopeSigningInput} of all the other fields, base64. */
  signature: string;
};

/** An envelope minus its signature: exactly what is signed. */
export type UnsignedEnvelope<T, K extends string = string> = Omit<SignedEnvelope<T, K>, 'signature'>;

export const DEFAULT_ENVELOPE_TTL_MS = 10 * 60_000;
export const DEFAULT_MAX_ENVELOPE_LIFETIME_MS = 24 * 60 * 60_000;
export const DEFAULT_CLOCK_SKEW_MS = 2 * 60_000;

/** Domain separation: these bytes can never be mistaken for another signed Keystage message. */
const SIGNING_CONTEXT = 'keystage.signed-envelope.v1\n';

export interface SignEnvelopeOptions<K extends string = string> {
  /** What the payload is; the verifier must expect the same kind. */
  kind: K;
  /** How long the envelope stays valid; {@link DEFAULT_ENVELOPE_TTL_MS} by default. */
  ttlMs?: number;
  /** The clock; injectable for tests. */
  now?: Date;
  /** Only for tests and known-answer vectors: the nonce is otherwise 32 fresh random bytes. */
  nonce?: string;
}

/**
 * Signs `payload` into a {@link SignedEnvelope}. The payload must be canonical-JSON data (plain
 * objects, arrays, strings, finite numbers, booleans, null; no `undefined` properties), because the
 * signature covers its canonical JSON and the verifier will recompute it from the parsed wire form.
 */
// Deriving the public key and hashing it costs more than the signature itself; a signer that reuses
// one KeyObject (the control plane signs every job with the same key) pays for it once.
const fingerprints = new WeakMap<KeyObject, string>();
function fingerprintOf(privateKey: KeyObject): string {
  let id = fingerprints.get(privateKey);
  if (id === undefined) {
    id = publicKeyFingerprint(createPublicKey(privateKey));
    fingerprints.set(privateKey, id);
  }
  return id;
}

export function signEnvelope<T, K extends string>(
  payload: T,
  privateKey: PrivateKeyInput,
  options: SignEnvelopeOptions<K>,
): SignedEnvelope<T, K> {
  const key = importKey(privateKey, 'private', 'ed25519');
  const now = options.now ?? new Date();
  const ttlMs = options.ttlMs ?? DEFAULT_ENVELOPE_TTL_MS;
  if (!options.kind) throw new CryptoError(CryptoErrorCode.InvalidInput, 'signEnvelope needs a kind');
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new CryptoError(CryptoErrorCode.InvalidInput, 'signEnvelope needs a positive ttlMs');
  }
  const unsigned: UnsignedEnvelope<T, K> = {
    v: 1,
    alg: 'Ed25519',
    kind: options.kind,
    keyId: fingerprintOf(key),
    nonce: options.nonce ?? randomBytes(32).toString('base64url'),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    payload,
  };
  return { ...unsigned, signature: sign(envelopeSigningInput(unsigned), key) };
}

/**
 * The exact text an envelope's signature covers: a fixed context line, then the canonical JSON of
 * every field but `signature`. Exposed so other implementations can be checked against it.
 */
export function envelopeSigningInput(envelope: UnsignedEnvelope<unknown>): string {
  const { v, alg, kind, keyId, nonce, issuedAt, expiresAt, payload } = envelope;
  return SIGNING_CONTEXT + canonicalJson({ v, alg, kind, keyId, nonce, issuedAt, expiresAt, payload });
}

export const EnvelopeRejection = {
  /** Not an envelope at all: missing or mistyped fields, unknown version or algorithm. */
  Malformed: 'envelope.malformed',
  /** `keyId` names another key than the pinned one. */
  UnknownKey: 'envelope.unknown_key',
  /** The signature does not verify: tampered or forged. */
  BadSignature: 'envelope.bad_signature',
  /** Signed for another purpose than the one expected. */
  WrongKind: 'envelope.wrong_kind',
  /** `expiresAt` is in the past (beyond the allowed clock skew). */
  Expired: 'envelope.expired',
  /** `issuedAt` is in the future (beyond the allowed clock skew). */
  NotYetValid: 'envelope.not_yet_valid',
  /** `expiresAt` is before `issuedAt` or too far after it for the replay cache to cover. */
  BadLifetime: 'envelope.bad_lifetime',
} as const;
export type EnvelopeRejection = (typeof EnvelopeRejection)[keyof typeof EnvelopeRejection];

export interface VerifyEnvelopeOptions {
  /** The kind the caller expects (e.g. `job`). */
  kind: string;
  /** The clock; injectable for tests. */
  now?: Date;
  /** Tolerated difference between the signer's clock and ours; {@link DEFAULT_CLOCK_SKEW_MS}. */
  clockSkewMs?: number;
  /** Longest accepted `expiresAt - issuedAt`; {@link DEFAULT_MAX_ENVELOPE_LIFETIME_MS}. */
  maxLifetimeMs?: number;
}

export type VerifyEnvelopeResult<T> =
  | { ok: true; envelope: SignedEnvelope<T> }
  | { ok: false; code: EnvelopeRejection; message: string };

/**
 * Checks, in this order, that `envelope` is well formed, names and is signed by `publicKey`, is of
 * the expected kind, and is valid now. Untrusted input never throws: the outcome is a result with a
 * stable code (the agent maps it to `job.bad_signature`, `job.expired` …). Only a malformed
 * `publicKey` throws (`crypto.invalid_key`), because that is configuration, not input.
 *
 * It does not check the nonce for replay; the caller does, with `envelope.nonce`, after `ok: true`.
 * `T` is not validated here: validate the payload's shape with the protocol schemas.
 */
export function verifyEnvelope<T = unknown>(
  envelope: unknown,
  publicKey: PublicKeyInput,
  options: VerifyEnvelopeOptions,
): VerifyEnvelopeResult<T> {
  const key = importKey(publicKey, 'public', 'ed25519');
  const now = (options.now ?? new Date()).getTime();
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const maxLifetime = options.maxLifetimeMs ?? DEFAULT_MAX_ENVELOPE_LIFETIME_MS;

  const shape = checkShape(envelope);
  if (typeof shape === 'string') return reject(EnvelopeRejection.Malformed, shape);
  if (shape.keyId !== publicKeyFingerprint(key)) {
    return reject(EnvelopeRejection.UnknownKey, 'the envelope was signed by another key');
  }
  let input: string;
  try {
    input = envelopeSigningInput(shape);
  } catch {
    // The payload holds something JSON cannot (it came from a parser, so only in odd cases):
    // nothing canonical was signed, so nothing can verify.
    return reject(EnvelopeRejection.Malformed, 'the payload is not canonical JSON data');
  }
  if (!verify(input, shape.signature, key)) {
    return reject(EnvelopeRejection.BadSignature, 'the signature does not verify');
  }
  if (shape.kind !== options.kind) {
    return reject(EnvelopeRejection.WrongKind, `expected a ${options.kind} envelope, got ${shape.kind}`);
  }
  const issuedAt = Date.parse(shape.issuedAt);
  const expiresAt = Date.parse(shape.expiresAt);
  if (expiresAt <= issuedAt || expiresAt - issuedAt > maxLifetime) {
    return reject(EnvelopeRejection.BadLifetime, 'the validity window is empty or too long');
  }
  if (issuedAt > now + skew) return reject(EnvelopeRejection.NotYetValid, 'issued in the future');
  if (expiresAt + skew < now) return reject(EnvelopeRejection.Expired, `expired at ${shape.expiresAt}`);
  return { ok: true, envelope: shape as SignedEnvelope<T> };
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

function checkShape(value: unknown): SignedEnvelope<unknown> | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const e = value as Record<string, unknown>;
  if (e.v !== 1) return 'unknown envelope version';
  if (e.alg !== 'Ed25519') return 'unknown algorithm';
  for (const field of ['kind', 'keyId', 'nonce', 'issuedAt', 'expiresAt', 'signature'] as const) {
    if (typeof e[field] !== 'string' || e[field] === '') return `${field} missing`;
  }
  for (const field of ['issuedAt', 'expiresAt'] as const) {
    const text = e[field] as string;
    if (!ISO_UTC.test(text) || Number.isNaN(Date.parse(text))) return `${field} is not an ISO 8601 UTC time`;
  }
  if (!('payload' in e)) return 'payload missing';
  // Rebuilt from the known fields only: anything else at the top level is not signed.
  return {
    v: 1,
    alg: 'Ed25519',
    kind: e.kind as string,
    keyId: e.keyId as string,
    nonce: e.nonce as string,
    issuedAt: e.issuedAt as string,
    expiresAt: e.expiresAt as string,
    payload: e.payload,
    signature: e.signature as string,
  };
}

function reject(
  code: EnvelopeRejection,
  message: string,
): { ok: false; code: EnvelopeRejection; message: string } {
  return { ok: false, code, message };
}
