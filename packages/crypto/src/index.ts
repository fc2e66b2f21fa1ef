export {
  AEAD_KEY_BYTES,
  type ChunkContext,
  decrypt,
  decryptChunk,
  encrypt,
  encryptChunk,
  generateDataKey,
  SEALED_FORMAT_V1,
  SEALED_OVERHEAD_BYTES,
} from './aead.js';
export { CANONICAL_JSON_MAX_DEPTH, canonicalJson } from './canonical-json.js';
export {
  ED25519_SIGNATURE_BYTES,
  generateSigningKeyPair,
  importSigningPrivateKey,
  importSigningPublicKey,
  type SigningKeyPair,
  sign,
  signingPublicKeyOf,
  verify,
} from './ed25519.js';
export type { BytesLike } from './encoding.js';
export { CryptoError, CryptoErrorCode } from './errors.js';
export { isSha256Hex, sha256, sha256Hex } from './hash.js';
export {
  type DeriveKeyOptions,
  deriveKey,
  generateWrappingKeyPair,
  importWrappingPrivateKey,
  importWrappingPublicKey,
  RECIPIENT_WRAP_FORMAT_V1,
  RECIPIENT_WRAPPED_KEY_BYTES,
  unwrapKey,
  unwrapKeyForRecipient,
  WRAPPED_KEY_BYTES,
  type WrappingKeyPair,
  wrapKey,
  wrapKeyForRecipient,
} from './key-wrap.js';
export {
  exportPrivateKey,
  exportPublicKey,
  type PrivateKeyInput,
  type PublicKeyInput,
  publicKeyFingerprint,
} from './keys.js';
export {
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_ENVELOPE_TTL_MS,
  DEFAULT_MAX_ENVELOPE_LIFETIME_MS,
  EnvelopeRejection,
  envelopeSigningInput,
  type SignEnvelopeOptions,
  type SignedEnvelope,
  signEnvelope,
  type UnsignedEnvelope,
  type VerifyEnvelopeOptions,
  type VerifyEnvelopeResult,
  verifyEnvelope,
} from './signed-envelope.js';
export {
  constantTimeEqual,
  DEFAULT_TOKEN_BYTES,
  generateToken,
  hashToken,
  hasTokenPrefix,
  TokenPrefix,
  verifyToken,
} from './tokens.js';
