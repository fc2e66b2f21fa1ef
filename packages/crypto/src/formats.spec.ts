import { describe, expect, it } from 'vitest';
import { decrypt, decryptChunk } from './aead.js';
import { deriveKey, unwrapKey, unwrapKeyForRecipient } from './key-wrap.js';
import { signEnvelope, verifyEnvelope } from './signed-envelope.js';

// Frozen outputs of this package's own formats. Data encrypted or signed today is stored (snapshots,
// credentials, wrapped keys) or checked by agents of older versions, so a change to a format — a
// context label, the HKDF info, the byte layout, the signing input — must be a new version byte, not
// a silent change. If one of these fails, you changed a format: add a version instead.

const dataKey = Buffer.alloc(32, 0x11);
const kek = Buffer.alloc(32, 0x22);
// RFC 7748 §6.1 Bob's X25519 private key, PKCS#8 DER base64.
const recipientPrivateKey = Buffer.concat([
  Buffer.from('302e020100300506032b656e04220420', 'hex'),
  Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'),
]).toString('base64');
// RFC 8032 test 1 Ed25519 private key, PKCS#8 DER base64.
const signingPrivateKey = 'MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g';
const signingPublicKey = 'MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';

describe('frozen format vectors', () => {
  it('opens a v1 sealed message', () => {
    const sealed = Buffer.from('AehExojR+ubb/jbrBlIuHFXNaMc6xNFmGeCOV+UnBGrywu0phA==', 'base64');
    expect(decrypt(sealed, kek, 'ctx').toString()).toBe('keystage');
  });

  it('opens a v1 chunk', () => {
    const sealed = Buffer.from('AamprcF8J/Bdy0m95fCVJCEUbGfPFi60SaIWq9vYrTtV', 'base64');
    expect(decryptChunk(sealed, kek, { runId: 'run-1', seq: 3 }).toString()).toBe('rows');
  });

  it('unwraps a v1 key wrapped with a key-encryption key', () => {
    const wrapped = Buffer.from(
      'AQy+vPDri1RaMfKmhu+AxYCefBE/4U0zMF33UuhbJEXpeIfvcgBpweNqaowBiAZ/jAViY7baa2WueiRPTQ==',
      'base64',
    );
    expect(unwrapKey(wrapped, kek, 'obj-1')).toEqual(dataKey);
  });

  it('unwraps a v1 key wrapped for a recipient', () => {
    const wrapped = Buffer.from(
      'AWC0yh0F+HdxZZjXxwsiVD6zE1sbkCZyTpxCaRi2tiVBBTtVaKZgKM+lSpLrhCjEH7QQAh5A1i4mUOYV+K+ejTGsptf/fH8nDmNptSRL6S54pXqQdu1Gsbef4c5h',
      'base64',
    );
    expect(unwrapKeyForRecipient(wrapped, recipientPrivateKey, 'run-1')).toEqual(dataKey);
  });

  it('derives the same key from the same master secret and purpose (HKDF info `keystage:<purpose>`)', () => {
    expect(deriveKey(Buffer.alloc(32, 0x42), 'tenant-kek:partner-1').toString('hex')).toBe(
      '60dd0f279728747fb574684dedb470bd2e2fbfd9a61feab2074ffe023f319a08',
    );
  });

  it('signs a v1 envelope to the same bytes (Ed25519 is deterministic)', () => {
    const envelope = signEnvelope({ runId: 'run-1', sql: 'SELECT 1' }, signingPrivateKey, {
      kind: 'job',
      now: new Date('2025-01-01T00:00:00.000Z'),
      ttlMs: 60_000,
      nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    expect(envelope.keyId).toBe('06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9');
    expect(envelope.signature).toBe(
      'Ho1HW8kNAcHRBX83yXT7laLsXQgf7sc23H9rWyy8yl+8QSLqeDPH9Tp9YIxYKI+e+xb1qC6Vk0GXBMaPdyK0Cg==',
    );
    const now = new Date('2025-01-01T00:00:30.000Z');
    expect(verifyEnvelope(envelope, signingPublicKey, { kind: 'job', now }).ok).toBe(true);
  });
});
