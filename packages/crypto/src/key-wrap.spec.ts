import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encrypt, generateDataKey } from './aead.js';
import { generateSigningKeyPair } from './ed25519.js';
import {
  deriveKey,
  generateWrappingKeyPair,
  importWrappingPrivateKey,
  importWrappingPublicKey,
  RECIPIENT_WRAPPED_KEY_BYTES,
  unwrapKey,
  unwrapKeyForRecipient,
  WRAPPED_KEY_BYTES,
  wrapKey,
  wrapKeyForRecipient,
} from './key-wrap.js';

const hex = (text: string) => Buffer.from(text, 'hex');
const decryptFailed = expect.objectContaining({ code: 'crypto.decrypt_failed' });

function flip(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index]! ^= 0x01;
  return copy;
}

describe('wrapKeyForRecipient / unwrapKeyForRecipient (X25519 + HKDF-SHA256 + AES-256-GCM)', () => {
  const controlPlane = generateWrappingKeyPair();
  const runId = '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d10';

  it('round-trips a data key for the recipient', () => {
    const dataKey = generateDataKey();
    const wrapped = wrapKeyForRecipient(dataKey, controlPlane.publicKey, runId);
    expect(wrapped).toHaveLength(RECIPIENT_WRAPPED_KEY_BYTES);
    expect(wrapped.includes(dataKey)).toBe(false);
    expect(unwrapKeyForRecipient(wrapped, controlPlane.privateKey, runId)).toEqual(dataKey);
    // Pre-imported KeyObjects work the same.
    const again = wrapKeyForRecipient(dataKey, importWrappingPublicKey(controlPlane.publicKey));
    expect(unwrapKeyForRecipient(again, importWrappingPrivateKey(controlPlane.privateKey))).toEqual(dataKey);
  });

  it('uses a fresh ephemeral key per wrap, so two wraps of one key look unrelated', () => {
    const dataKey = generateDataKey();
    const a = wrapKeyForRecipient(dataKey, controlPlane.publicKey);
    const b = wrapKeyForRecipient(dataKey, controlPlane.publicKey);
    expect(a.subarray(1, 33)).not.toEqual(b.subarray(1, 33));
    expect(a.subarray(33)).not.toEqual(b.subarray(33));
  });

  it('opens only with the recipient private key', () => {
    const wrapped = wrapKeyForRecipient(generateDataKey(), controlPlane.publicKey, runId);
    const someoneElse = generateWrappingKeyPair();
    expect(() => unwrapKeyForRecipient(wrapped, someoneElse.privateKey, runId)).toThrowError(decryptFailed);
  });

  it('opens only with the same associated data (a key wrapped for one run stays with it)', () => {
    const wrapped = wrapKeyForRecipient(generateDataKey(), controlPlane.publicKey, runId);
    expect(() => unwrapKeyForRecipient(wrapped, controlPlane.privateKey, 'another-run')).toThrowError(
      decryptFailed,
    );
    expect(() => unwrapKeyForRecipient(wrapped, controlPlane.privateKey)).toThrowError(decryptFailed);
  });

  it('fails on any tampered byte, including the ephemeral public key', () => {
    const wrapped = wrapKeyForRecipient(generateDataKey(), controlPlane.publicKey, runId);
    for (let index = 1; index < wrapped.length; index++) {
      expect(() => unwrapKeyForRecipient(flip(wrapped, index), controlPlane.privateKey, runId)).toThrowError(
        decryptFailed,
      );
    }
    expect(() => unwrapKeyForRecipient(flip(wrapped, 0), controlPlane.privateKey, runId)).toThrowError(
      expect.objectContaining({ code: 'crypto.unsupported_format' }),
    );
    expect(() => unwrapKeyForRecipient(wrapped.subarray(1), controlPlane.privateKey, runId)).toThrowError(
      decryptFailed,
    );
  });

  it('treats a low-order (all-zero) ephemeral point as a forgery, not a crash', () => {
    const wrapped = wrapKeyForRecipient(generateDataKey(), controlPlane.publicKey);
    wrapped.fill(0, 1, 33);
    expect(() => unwrapKeyForRecipient(wrapped, controlPlane.privateKey)).toThrowError(decryptFailed);
  });

  it('refuses Ed25519 keys and data keys that are not 32 bytes', () => {
    const signing = generateSigningKeyPair();
    expect(() => wrapKeyForRecipient(generateDataKey(), signing.publicKey)).toThrowError(
      expect.objectContaining({ code: 'crypto.invalid_key' }),
    );
    expect(() => wrapKeyForRecipient(Buffer.alloc(16), controlPlane.publicKey)).toThrowError(/32 bytes/);
  });

  it('computes the RFC 7748 §6.1 X25519 shared secret from keys in the stored format', () => {
    // The stored private key form is PKCS#8 DER: a fixed 16-byte header, then the raw scalar.
    const pkcs8 = (scalar: string) =>
      Buffer.concat([hex('302e020100300506032b656e04220420'), hex(scalar)]).toString('base64');
    const alice = importWrappingPrivateKey(
      pkcs8('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
    );
    const bob = importWrappingPrivateKey(
      pkcs8('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'),
    );
    const raw = (key: ReturnType<typeof createPrivateKey>) =>
      Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url').toString('hex');
    expect(raw(alice)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(raw(bob)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = diffieHellman({ privateKey: alice, publicKey: createPublicKey(bob) });
    expect(shared.toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });
});

describe('wrapKey / unwrapKey (AES-256-GCM key-encryption key)', () => {
  it('round-trips and binds the associated data', () => {
    const kek = generateDataKey();
    const dataKey = generateDataKey();
    const wrapped = wrapKey(dataKey, kek, 'snapshots/school-1/run-1');
    expect(wrapped).toHaveLength(WRAPPED_KEY_BYTES);
    expect(unwrapKey(wrapped, kek, 'snapshots/school-1/run-1')).toEqual(dataKey);
    expect(() => unwrapKey(wrapped, kek, 'snapshots/school-2/run-1')).toThrowError(decryptFailed);
    expect(() => unwrapKey(wrapped, generateDataKey(), 'snapshots/school-1/run-1')).toThrowError(
      decryptFailed,
    );
  });

  it('fails on any tampered byte', () => {
    const kek = generateDataKey();
    const wrapped = wrapKey(generateDataKey(), kek);
    for (let index = 1; index < wrapped.length; index++) {
      expect(() => unwrapKey(flip(wrapped, index), kek)).toThrowError(decryptFailed);
    }
  });

  it('does not unwrap a plain encrypted message, even of 32 bytes (domain separation)', () => {
    const kek = generateDataKey();
    expect(() => unwrapKey(encrypt(generateDataKey(), kek), kek)).toThrowError(decryptFailed);
  });
});

describe('deriveKey (HKDF-SHA256 with a purpose label)', () => {
  const master = Buffer.alloc(32, 0x42);

  it('is deterministic per (master, purpose, salt) and different across them', () => {
    const a = deriveKey(master, 'tenant-kek:partner-1');
    expect(a).toHaveLength(32);
    expect(deriveKey(master, 'tenant-kek:partner-1')).toEqual(a);
    expect(deriveKey(master, 'tenant-kek:partner-2')).not.toEqual(a);
    expect(deriveKey(Buffer.alloc(32, 0x43), 'tenant-kek:partner-1')).not.toEqual(a);
    expect(deriveKey(master, 'tenant-kek:partner-1', { salt: 'v2' })).not.toEqual(a);
    expect(deriveKey(master, 'tenant-kek:partner-1', { length: 64 }).subarray(0, 32)).toEqual(a);
  });

  it('yields keys that work as AES-256 keys', () => {
    const kek = deriveKey(master, 'tenant-kek:partner-1');
    const dataKey = generateDataKey();
    expect(unwrapKey(wrapKey(dataKey, kek), deriveKey(master, 'tenant-kek:partner-1'))).toEqual(dataKey);
  });

  it('refuses short master secrets, empty purposes and odd lengths', () => {
    expect(() => deriveKey(Buffer.alloc(16), 'x')).toThrowError(
      expect.objectContaining({ code: 'crypto.invalid_key' }),
    );
    expect(() => deriveKey(master, '')).toThrowError(
      expect.objectContaining({ code: 'crypto.invalid_input' }),
    );
    expect(() => deriveKey(master, 'x', { length: 8 })).toThrowError(/16 to 64/);
  });
});
