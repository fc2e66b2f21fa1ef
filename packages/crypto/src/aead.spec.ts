import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decrypt,
  decryptChunk,
  encrypt,
  encryptChunk,
  generateDataKey,
  SEALED_FORMAT_V1,
  SEALED_OVERHEAD_BYTES,
} from './aead.js';
import { CryptoError } from './errors.js';
import { gcmDecrypt, gcmEncrypt } from './gcm.js';

const hex = (text: string) => Buffer.from(text, 'hex');

/** Flips one bit of one byte: the smallest possible tampering. */
function flip(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index]! ^= 0x01;
  return copy;
}

const decryptFailed = expect.objectContaining({ code: 'crypto.decrypt_failed' });

describe('AES-256-GCM primitive (known answers)', () => {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 96-bit IV, AAD).
  const tc16 = {
    key: hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'),
    iv: hex('cafebabefacedbaddecaf888'),
    plaintext: hex(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    ),
    aad: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
    ciphertext: hex(
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    ),
    tag: hex('76fc6ece0f4e1768cddf8853bb2d551b'),
  };

  it('encrypts test case 16 to the published ciphertext and tag, and decrypts it back', () => {
    const { ciphertext, tag } = gcmEncrypt(tc16.key, tc16.iv, tc16.plaintext, tc16.aad);
    expect(ciphertext.toString('hex')).toBe(tc16.ciphertext.toString('hex'));
    expect(tag.toString('hex')).toBe(tc16.tag.toString('hex'));
    expect(gcmDecrypt(tc16.key, tc16.iv, tc16.ciphertext, tc16.tag, tc16.aad)).toEqual(tc16.plaintext);
  });

  it('matches test cases 13 and 14 (zero key and IV)', () => {
    const zeroKey = Buffer.alloc(32);
    const zeroIv = Buffer.alloc(12);
    expect(gcmEncrypt(zeroKey, zeroIv, Buffer.alloc(0), Buffer.alloc(0)).tag.toString('hex')).toBe(
      '530f8afbc74536b9a963b4f1c4cb738b',
    );
    const tc14 = gcmEncrypt(zeroKey, zeroIv, Buffer.alloc(16), Buffer.alloc(0));
    expect(tc14.ciphertext.toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18');
    expect(tc14.tag.toString('hex')).toBe('d0d1c8a799996bf0265b98b5d48ab919');
  });
});

describe('encrypt / decrypt', () => {
  it('round-trips bytes and strings, with and without associated data', () => {
    const key = generateDataKey();
    expect(key).toHaveLength(32);
    const plaintext = Buffer.from('pupil rows… ünïcode ✓');
    expect(decrypt(encrypt(plaintext, key), key)).toEqual(plaintext);
    expect(decrypt(encrypt('text', key, 'run-1'), key, 'run-1').toString()).toBe('text');
    expect(decrypt(encrypt(Buffer.alloc(0), key), key)).toHaveLength(0);
    const large = Buffer.alloc(1 << 20, 0xab);
    expect(decrypt(encrypt(large, key), key).equals(large)).toBe(true);
  });

  it('writes version | iv | tag | ciphertext, with the version byte authenticated', () => {
    const key = generateDataKey();
    const plaintext = Buffer.from('hello');
    const sealed = encrypt(plaintext, key, 'ctx');
    expect(sealed).toHaveLength(SEALED_OVERHEAD_BYTES + plaintext.length);
    expect(sealed[0]).toBe(SEALED_FORMAT_V1);
    // Recompute with node:crypto directly from the documented layout: AAD = version byte ‖ aad.
    const iv = sealed.subarray(1, 13);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.concat([Buffer.from([SEALED_FORMAT_V1]), Buffer.from('ctx')]));
    const expected = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    expect(sealed.subarray(29)).toEqual(expected);
    expect(sealed.subarray(13, 29)).toEqual(cipher.getAuthTag());
  });

  it('uses a fresh IV every time', () => {
    const key = generateDataKey();
    const a = encrypt('same', key);
    const b = encrypt('same', key);
    expect(a.subarray(1, 13)).not.toEqual(b.subarray(1, 13));
    expect(a).not.toEqual(b);
  });

  it('fails on any tampered byte: iv, tag or ciphertext', () => {
    const key = generateDataKey();
    const sealed = encrypt('attendance marks', key, 'aad');
    for (let index = 1; index < sealed.length; index++) {
      expect(() => decrypt(flip(sealed, index), key, 'aad')).toThrowError(decryptFailed);
    }
  });

  it('fails for an unknown version byte, truncation or extension', () => {
    const key = generateDataKey();
    const sealed = encrypt('x', key);
    expect(() => decrypt(flip(sealed, 0), key)).toThrowError(
      expect.objectContaining({ code: 'crypto.unsupported_format' }),
    );
    expect(() => decrypt(sealed.subarray(0, sealed.length - 1), key)).toThrowError(decryptFailed);
    expect(() => decrypt(sealed.subarray(0, 10), key)).toThrowError(decryptFailed);
    expect(() => decrypt(Buffer.concat([sealed, Buffer.from([0])]), key)).toThrowError(decryptFailed);
  });

  it('fails with the wrong key or wrong associated data', () => {
    const key = generateDataKey();
    const sealed = encrypt('x', key, 'run-1');
    expect(() => decrypt(sealed, generateDataKey(), 'run-1')).toThrowError(decryptFailed);
    expect(() => decrypt(sealed, key, 'run-2')).toThrowError(decryptFailed);
    expect(() => decrypt(sealed, key)).toThrowError(decryptFailed);
    expect(() => decrypt(encrypt('x', key), key, 'run-1')).toThrowError(decryptFailed);
  });

  it('refuses keys that are not exactly 32 bytes', () => {
    for (const key of [
      Buffer.alloc(16),
      Buffer.alloc(31),
      Buffer.alloc(33),
      'k'.repeat(32) as unknown as Buffer,
    ]) {
      expect(() => encrypt('x', key)).toThrowError(expect.objectContaining({ code: 'crypto.invalid_key' }));
      expect(() => decrypt(Buffer.alloc(40), key)).toThrowError(CryptoError);
    }
  });
});

describe('encryptChunk / decryptChunk', () => {
  const runId = '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d10';

  it('round-trips numbered chunks of a run', () => {
    const key = generateDataKey();
    const chunks = ['a', 'b', 'c'].map((text, seq) => encryptChunk(text, key, { runId, seq }));
    expect(chunks.map((sealed, seq) => decryptChunk(sealed, key, { runId, seq }).toString())).toEqual([
      'a',
      'b',
      'c',
    ]);
    const far = Number.MAX_SAFE_INTEGER;
    expect(
      decryptChunk(encryptChunk('z', key, { runId, seq: far }), key, { runId, seq: far }).toString(),
    ).toBe('z');
  });

  it('fails when the chunk is presented under another number or another run', () => {
    const key = generateDataKey();
    const sealed = encryptChunk('rows', key, { runId, seq: 5 });
    expect(() => decryptChunk(sealed, key, { runId, seq: 4 })).toThrowError(decryptFailed);
    expect(() => decryptChunk(sealed, key, { runId, seq: 6 })).toThrowError(decryptFailed);
    expect(() => decryptChunk(sealed, key, { runId: `${runId.slice(0, -1)}1`, seq: 5 })).toThrowError(
      decryptFailed,
    );
    // Nor does a chunk open as a plain message, or a plain message as a chunk.
    expect(() => decrypt(sealed, key)).toThrowError(decryptFailed);
    expect(() => decryptChunk(encrypt('rows', key), key, { runId, seq: 5 })).toThrowError(decryptFailed);
  });

  it('fails on any tampered byte of a chunk', () => {
    const key = generateDataKey();
    const sealed = encryptChunk('rows', key, { runId, seq: 0 });
    for (let index = 0; index < sealed.length; index++) {
      expect(() => decryptChunk(flip(sealed, index), key, { runId, seq: 0 })).toThrowError(CryptoError);
    }
  });

  it('refuses invalid chunk numbers and empty run ids', () => {
    const key = generateDataKey();
    for (const seq of [-1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => encryptChunk('x', key, { runId, seq })).toThrowError(
        expect.objectContaining({ code: 'crypto.invalid_input' }),
      );
    }
    expect(() => encryptChunk('x', key, { runId: '', seq: 0 })).toThrowError(/run id/);
  });
});
