import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateSigningKeyPair,
  importSigningPublicKey,
  sign,
  signingPublicKeyOf,
  verify,
} from './ed25519.js';
import { CryptoError } from './errors.js';
import { generateWrappingKeyPair } from './key-wrap.js';
import { exportPrivateKey, exportPublicKey, publicKeyFingerprint } from './keys.js';

const hex = (text: string) => Buffer.from(text, 'hex');

// RFC 8032 §7.1, TEST 1: empty message.
const RFC8032_TEST1 = {
  secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

function rfcKeys() {
  const jwk = {
    kty: 'OKP',
    crv: 'Ed25519',
    d: hex(RFC8032_TEST1.secretKey).toString('base64url'),
    x: hex(RFC8032_TEST1.publicKey).toString('base64url'),
  };
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return {
    privateKey: exportPrivateKey(privateKey),
    publicKey: exportPublicKey(createPublicKey(privateKey)),
  };
}

describe('Ed25519', () => {
  it('matches RFC 8032 test vector 1 through the stored key format', () => {
    const { privateKey, publicKey } = rfcKeys();
    // SPKI DER of an Ed25519 key is a fixed 12-byte header followed by the raw 32-byte key.
    expect(Buffer.from(publicKey, 'base64').subarray(12).toString('hex')).toBe(RFC8032_TEST1.publicKey);
    const signature = sign(new Uint8Array(0), privateKey);
    expect(Buffer.from(signature, 'base64').toString('hex')).toBe(RFC8032_TEST1.signature);
    expect(verify(new Uint8Array(0), signature, publicKey)).toBe(true);
  });

  it('round-trips strings and bytes, and derives the public key from the private key', () => {
    const keys = generateSigningKeyPair();
    expect(signingPublicKeyOf(keys.privateKey)).toBe(keys.publicKey);
    const text = 'job for run 42 — £ ünïcode';
    expect(verify(text, sign(text, keys.privateKey), keys.publicKey)).toBe(true);
    // A string is signed as its UTF-8 bytes.
    expect(verify(Buffer.from(text, 'utf8'), sign(text, keys.privateKey), keys.publicKey)).toBe(true);
  });

  it('refuses a changed message, another key, and a tampered signature', () => {
    const keys = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    const signature = sign('hello', keys.privateKey);
    expect(verify('hellO', signature, keys.publicKey)).toBe(false);
    expect(verify('hello', signature, other.publicKey)).toBe(false);
    const bytes = Buffer.from(signature, 'base64');
    for (const index of [0, 31, 32, 63]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= 0x01;
      expect(verify('hello', tampered.toString('base64'), keys.publicKey)).toBe(false);
    }
  });

  it('returns false (does not throw) for malformed signatures', () => {
    const keys = generateSigningKeyPair();
    const good = sign('x', keys.privateKey);
    for (const bad of [
      '',
      'not base64!',
      good.slice(0, -4),
      `${good}AAAA`,
      good.replace(/=+$/, ''),
      ` ${good}`,
    ]) {
      expect(verify('x', bad, keys.publicKey)).toBe(false);
    }
    expect(verify('x', 42 as unknown as string, keys.publicKey)).toBe(false);
  });

  it('throws crypto.invalid_key for keys of the wrong kind or encoding', () => {
    const keys = generateSigningKeyPair();
    const x25519 = generateWrappingKeyPair();
    const signature = sign('x', keys.privateKey);
    for (const key of [x25519.publicKey, keys.privateKey, 'AAAA', 'not base64', '']) {
      expect(() => verify('x', signature, key)).toThrow(CryptoError);
    }
    expect(() => sign('x', keys.publicKey)).toThrowError(
      expect.objectContaining({ code: 'crypto.invalid_key' }),
    );
    expect(() => importSigningPublicKey(x25519.publicKey)).toThrowError(/expected an ed25519 public key/);
  });

  it('fingerprints a public key as sha256 of its SPKI DER, the same from text or KeyObject', () => {
    const keys = generateSigningKeyPair();
    const fingerprint = publicKeyFingerprint(keys.publicKey);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(publicKeyFingerprint(importSigningPublicKey(keys.publicKey))).toBe(fingerprint);
    expect(publicKeyFingerprint(generateSigningKeyPair().publicKey)).not.toBe(fingerprint);
    const { publicKey } = rfcKeys();
    expect(publicKeyFingerprint(publicKey)).toBe(
      createHash('sha256')
        .update(Buffer.concat([hex('302a300506032b6570032100'), hex(RFC8032_TEST1.publicKey)]))
        .digest('hex'),
    );
  });
});
