import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { decryptChunk, deriveKey, unwrapKey } from '@keystage/crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_SEGMENT_BYTES,
  ENCRYPTED_HEADER_BYTES,
  ENCRYPTED_OBJECT_FORMAT_V1,
  ENCRYPTED_SEGMENT_OVERHEAD_BYTES,
  EncryptedObjectStore,
  encryptedObjectSize,
} from './encrypted-store.js';
import { IntegrityError, InvalidKeyError, ObjectNotFoundError, ObjectStoreError } from './errors.js';
import { LocalDirectoryStore } from './local-store.js';
import { collect, pseudoRandomBody, sha256Of } from './testing/store-contract.js';

const SEGMENT = DEFAULT_SEGMENT_BYTES;
const SEALED_SEGMENT = SEGMENT + ENCRYPTED_SEGMENT_OVERHEAD_BYTES;
const MARKER = 'PUPIL-UPN-A123456789012-SURNAME-ZEBEDEE';

let base: string;
let inner: LocalDirectoryStore;
let masterKey: Buffer;
let store: EncryptedObjectStore;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'keystage-encrypted-store-'));
  inner = new LocalDirectoryStore(join(base, 'objects'));
  masterKey = randomBytes(32);
  store = new EncryptedObjectStore(inner, { masterKey });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Bytes of the object being written at positions (the store's one temp file), 0 when none. */
async function sealedAhead(): Promise<number> {
  const temps = (await readdir(join(base, 'objects'), { recursive: true })).filter((f) =>
    f.split('/').pop()!.startsWith('~tmp-'),
  );
  return temps.length === 1 ? (await stat(join(base, 'objects', temps[0]!))).size : 0;
}

/** Reads a tenant's object to the end: resolves with the plaintext or rejects with the first error. */
async function read(tenantId: string, key: string, from = store): Promise<Buffer> {
  return collect(await from.get(tenantId, key));
}

/** The raw stored bytes of a tenant's object. */
async function raw(tenantId: string, key: string): Promise<Buffer> {
  return readFile(inner.pathOf(store.innerKey(tenantId, key)));
}

async function writeRaw(tenantId: string, key: string, bytes: Buffer): Promise<void> {
  await inner.put(store.innerKey(tenantId, key), bytes);
}

/** The sealed segments of a stored object. */
function segmentsOf(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = ENCRYPTED_HEADER_BYTES; at < bytes.length; at += SEALED_SEGMENT) {
    out.push(bytes.subarray(at, at + SEALED_SEGMENT));
  }
  return out;
}

function flipBit(bytes: Buffer, index: number, bit = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[index]! ^= 1 << bit;
  return copy;
}

async function expectIntegrityError(promise: Promise<unknown>): Promise<IntegrityError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrityError);
  expect(error).toMatchObject({ code: 'object_store.integrity' });
  return error as IntegrityError;
}

describe('EncryptedObjectStore round trips', () => {
  it('round-trips a small object', async () => {
    expect(await store.put('school-1', 'runs/r1/results', Buffer.from('hello'))).toEqual({
      size: 5,
      storedSize: encryptedObjectSize(5),
    });
    expect((await read('school-1', 'runs/r1/results')).toString()).toBe('hello');
  });

  it('round-trips an empty object (one empty final segment)', async () => {
    expect(await store.put('school-1', 'empty', Buffer.alloc(0))).toEqual({
      size: 0,
      storedSize: ENCRYPTED_HEADER_BYTES + ENCRYPTED_SEGMENT_OVERHEAD_BYTES,
    });
    expect((await raw('school-1', 'empty')).length).toBe(
      ENCRYPTED_HEADER_BYTES + ENCRYPTED_SEGMENT_OVERHEAD_BYTES,
    );
    expect((await read('school-1', 'empty')).length).toBe(0);
  });

  it('round-trips a 5 MB multi-segment object streamed in odd-sized chunks', async () => {
    const size = 5 * 1000 * 1000;
    const expected = await collect(pseudoRandomBody(size, 77_777, 'five'));
    const result = await store.put('school-1', 'snapshots/5mb', pseudoRandomBody(size, 77_777, 'five'));
    expect(result).toEqual({ size, storedSize: encryptedObjectSize(size) });
    const stored = await raw('school-1', 'snapshots/5mb');
    expect(stored.length).toBe(encryptedObjectSize(size));
    expect(segmentsOf(stored)).toHaveLength(Math.ceil(size / SEGMENT));
    const plaintext = await read('school-1', 'snapshots/5mb');
    expect(plaintext.length).toBe(size);
    expect(sha256Of(plaintext)).toBe(sha256Of(expected));
  });

  it('round-trips sizes around segment boundaries', async () => {
    for (const size of [1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT - 1]) {
      const body = randomBytes(size);
      await store.put('t', `b/${size}`, Readable.from([body.subarray(0, 10), body.subarray(10)]));
      expect((await raw('t', `b/${size}`)).length, String(size)).toBe(encryptedObjectSize(size));
      expect((await read('t', `b/${size}`)).equals(body), String(size)).toBe(true);
    }
  });

  it('stores a local file as put stores its bytes, sizes around segment boundaries and empty', async () => {
    for (const size of [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT - 1]) {
      const body = randomBytes(size);
      const path = join(base, `file-${size}`);
      await writeFile(path, body);
      const result = await store.putFile('t', `f/${size}`, path);
      expect(result, String(size)).toEqual({ size, storedSize: encryptedObjectSize(size) });
      expect((await read('t', `f/${size}`)).equals(body), String(size)).toBe(true);
      // Segment for segment what put writes: the same sealed sizes, each authenticating in place.
      const put = await store.put('t', `p/${size}`, body);
      expect(put).toEqual(result);
    }
    await expect(store.putFile('t', 'f/none', join(base, 'missing'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(store.putFile('t', '../escape', join(base, 'file-1'))).rejects.toBeInstanceOf(
      InvalidKeyError,
    );
  });

  it('stores a file as it grows: the object of the finished file, its first segment rewritten at the end', async () => {
    for (const size of [
      1,
      SEGMENT - 1,
      SEGMENT,
      SEGMENT + 1,
      2 * SEGMENT,
      2 * SEGMENT + 1,
      5 * SEGMENT + 77,
    ]) {
      const body = randomBytes(size);
      const path = join(base, `growing-${size}`);
      await writeFile(path, Buffer.alloc(0));
      const put = (await store.putGrowingFile('t', `g/${size}`, path))!;
      expect(put).toBeDefined();
      // Appended in odd pieces, each said final once written (a header in its first bytes is
      // written as zeros first and for real at the end).
      const handle = await open(path, 'r+');
      for (let at = 0; at < size; ) {
        const n = Math.min(size - at, 300_001);
        const piece = Buffer.from(body.subarray(at, at + n));
        if (at === 0) piece.fill(0, 0, Math.min(n, 64));
        await handle.write(piece, 0, n, at);
        at += n;
        put.advance(at);
        await new Promise((r) => setImmediate(r));
      }
      await handle.write(body, 0, Math.min(size, 64), 0);
      await handle.close();
      // Every whole segment but the first and the last went into the store ahead of the end.
      const count = Math.ceil(size / SEGMENT);
      if (count > 2)
        await expect.poll(sealedAhead).toBe(ENCRYPTED_HEADER_BYTES + (count - 1) * SEALED_SEGMENT);
      // Nothing is there before the end.
      expect(await inner.exists(store.innerKey('t', `g/${size}`))).toBe(false);
      const result = await put.finish(size);
      expect(result, String(size)).toEqual({ size, storedSize: encryptedObjectSize(size) });
      expect((await read('t', `g/${size}`)).equals(body), String(size)).toBe(true);
    }
  });

  it('leaves nothing of a growing file it abandons, or one that turns out shorter than said', async () => {
    const path = join(base, 'abandoned');
    await writeFile(path, randomBytes(3 * SEGMENT));
    const put = (await store.putGrowingFile('t', 'g/abandoned', path))!;
    put.advance(3 * SEGMENT);
    await put.abort();
    const short = (await store.putGrowingFile('t', 'g/short', path))!;
    await expect(short.finish(4 * SEGMENT)).rejects.toThrow(/shorter/);
    // Sealed ahead as "not the last" segment, then told the file ends sooner: refused, not stored
    // as an object no reader could open.
    const shrunk = (await store.putGrowingFile('t', 'g/shrunk', path))!;
    shrunk.advance(3 * SEGMENT);
    await expect.poll(sealedAhead).toBe(ENCRYPTED_HEADER_BYTES + 2 * SEALED_SEGMENT);
    await expect(shrunk.finish(100)).rejects.toThrow(/shorter/);
    await shrunk.abort();
    await expect(shrunk.finish(100)).rejects.toThrow(/already/);
    expect(await readdir(join(base, 'objects'), { recursive: true })).not.toContainEqual(
      expect.stringMatching(/abandoned|short|shrunk|~tmp/),
    );
  });

  it('honours a configured segment size and reads it back from the header', async () => {
    const small = new EncryptedObjectStore(inner, { masterKey, segmentSize: 1024 });
    const body = randomBytes(10_000);
    await small.put('t', 'k', body);
    expect((await raw('t', 'k')).length).toBe(encryptedObjectSize(10_000, 1024));
    // A store configured differently reads it all the same.
    expect((await read('t', 'k', store)).equals(body)).toBe(true);
  });

  it('downloads to a file only when the whole object authenticated', async () => {
    const body = randomBytes(3 * SEGMENT + 5);
    await store.put('t', 'dl', body);
    const good = join(base, 'good.bin');
    expect(await store.download('t', 'dl', good)).toEqual({ size: body.length });
    expect((await readFile(good)).equals(body)).toBe(true);
    expect((await stat(good)).mode & 0o777).toBe(0o600);

    const stored = await raw('t', 'dl');
    await writeRaw('t', 'dl', stored.subarray(0, stored.length - 1));
    const bad = join(base, 'bad.bin');
    await expectIntegrityError(store.download('t', 'dl', bad));
    await expect(stat(bad)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(base)).sort()).toEqual(['good.bin', 'objects']);
  });
});

describe('EncryptedObjectStore confidentiality', () => {
  it('stores no plaintext', async () => {
    const body = Buffer.from(`${MARKER}\n`.repeat(20_000));
    await store.put('school-1', 'runs/r1/pupils.csv', body);
    const stored = await raw('school-1', 'runs/r1/pupils.csv');
    expect(stored.length).toBe(encryptedObjectSize(body.length));
    expect(stored.indexOf(MARKER)).toBe(-1);
    expect(stored.indexOf(MARKER.slice(0, 12))).toBe(-1);
    // The search itself works: the same bytes stored in the clear are found.
    await inner.put('plain/control', body);
    expect((await readFile(inner.pathOf('plain/control'))).indexOf(MARKER)).toBe(0);
  });

  it('uses a fresh data key per object: the same plaintext never encrypts the same way twice', async () => {
    const body = Buffer.alloc(2 * SEGMENT, 0x41);
    await store.put('t', 'a', body);
    await store.put('t', 'b', body);
    const a = await raw('t', 'a');
    const b = await raw('t', 'b');
    expect(a.subarray(11, ENCRYPTED_HEADER_BYTES).equals(b.subarray(11, ENCRYPTED_HEADER_BYTES))).toBe(false);
    expect(a.subarray(ENCRYPTED_HEADER_BYTES).equals(b.subarray(ENCRYPTED_HEADER_BYTES))).toBe(false);
    // Identical segments within one object differ too (a fresh IV each).
    const [first, second] = segmentsOf(a);
    expect(first!.subarray(13).equals(second!.subarray(13))).toBe(false);
  });

  it('writes the documented header', async () => {
    await store.put('t', 'h', Buffer.from('x'));
    const header = (await raw('t', 'h')).subarray(0, ENCRYPTED_HEADER_BYTES);
    expect(header.subarray(0, 4).toString('ascii')).toBe('KSEO');
    expect(header[4]).toBe(ENCRYPTED_OBJECT_FORMAT_V1);
    expect(header.readUInt32BE(5)).toBe(SEGMENT);
    expect(header.readUInt16BE(9)).toBe(61);
    expect(header[11]).toBe(0x01); // the sealed format version of the wrapped key
  });

  it('follows the documented format: derived tenant KEK, wrapped data key, bound segments', async () => {
    const body = randomBytes(SEGMENT + 10);
    await store.put('school-9', 'runs/r1/results', body);
    const stored = await raw('school-9', 'runs/r1/results');
    // Decrypt by hand, from the README's description only.
    const kek = deriveKey(masterKey, 'object-store/tenant/school-9');
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    const aad = Buffer.concat([
      Buffer.from('keystage.object-store.header.v1\0'),
      stored.subarray(0, 11),
      u16(8),
      Buffer.from('school-9'),
      u16(15),
      Buffer.from('runs/r1/results'),
    ]);
    const dataKey = unwrapKey(stored.subarray(11, ENCRYPTED_HEADER_BYTES), kek, aad);
    const [first, last] = segmentsOf(stored);
    const context = (flag: string) => `keystage.object-store.v1|${flag}|school-9|runs/r1/results`;
    const plaintext = Buffer.concat([
      decryptChunk(first!, dataKey, { runId: context('more'), seq: 0 }),
      decryptChunk(last!, dataKey, { runId: context('final'), seq: 1 }),
    ]);
    expect(plaintext.equals(body)).toBe(true);
    expect(() => decryptChunk(last!, dataKey, { runId: context('more'), seq: 1 })).toThrow();
  });

  it("cannot be opened with another master key (another deployment's or a rotated one)", async () => {
    await store.put('school-1', 'k', Buffer.from('secret'));
    const other = new EncryptedObjectStore(inner, { masterKey: randomBytes(32) });
    const error = await expectIntegrityError(read('school-1', 'k', other));
    expect(error.message).not.toContain('secret');
  });
});

describe('EncryptedObjectStore integrity', () => {
  const body = randomBytes(3 * SEGMENT + 1000); // four segments, the last one short

  beforeEach(async () => {
    await store.put('school-1', 'runs/r1/results', body);
  });

  it('detects an object copied to another tenant', async () => {
    await writeRaw('school-2', 'runs/r1/results', await raw('school-1', 'runs/r1/results'));
    await expectIntegrityError(read('school-2', 'runs/r1/results'));
  });

  it('detects an object copied to another key of the same tenant', async () => {
    await writeRaw('school-1', 'runs/r2/results', await raw('school-1', 'runs/r1/results'));
    await expectIntegrityError(read('school-1', 'runs/r2/results'));
  });

  it("detects a tenant's own header combined with another object's segments", async () => {
    await store.put('school-1', 'runs/r1/other', randomBytes(body.length));
    const mine = await raw('school-1', 'runs/r1/results');
    const theirs = await raw('school-1', 'runs/r1/other');
    const spliced = Buffer.concat([
      mine.subarray(0, ENCRYPTED_HEADER_BYTES),
      theirs.subarray(ENCRYPTED_HEADER_BYTES),
    ]);
    await writeRaw('school-1', 'runs/r1/results', spliced);
    await expectIntegrityError(read('school-1', 'runs/r1/results'));
  });

  it('detects one segment replaced by the same segment of a newer version of the object', async () => {
    const old = await raw('school-1', 'runs/r1/results');
    await store.put('school-1', 'runs/r1/results', body);
    const current = await raw('school-1', 'runs/r1/results');
    const segments = segmentsOf(current);
    segments[1] = segmentsOf(old)[1]!;
    await writeRaw(
      'school-1',
      'runs/r1/results',
      Buffer.concat([current.subarray(0, ENCRYPTED_HEADER_BYTES), ...segments]),
    );
    await expectIntegrityError(read('school-1', 'runs/r1/results'));
  });

  it('detects swapped segments', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    const [s0, s1, s2, s3] = segmentsOf(stored);
    await writeRaw(
      'school-1',
      'runs/r1/results',
      Buffer.concat([stored.subarray(0, ENCRYPTED_HEADER_BYTES), s1!, s0!, s2!, s3!]),
    );
    await expectIntegrityError(read('school-1', 'runs/r1/results'));
  });

  it('detects truncation at a segment boundary (the final-segment flag)', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    const segments = segmentsOf(stored);
    for (let keep = 0; keep < segments.length; keep++) {
      const cut = Buffer.concat([stored.subarray(0, ENCRYPTED_HEADER_BYTES), ...segments.slice(0, keep)]);
      await writeRaw('school-1', 'runs/r1/results', cut);
      await expectIntegrityError(read('school-1', 'runs/r1/results'));
    }
  });

  it('detects truncation anywhere else, down to an empty object', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    for (const length of [
      stored.length - 1,
      stored.length - 500,
      SEALED_SEGMENT + 100,
      ENCRYPTED_HEADER_BYTES + 28,
      71,
      11,
      4,
      0,
    ]) {
      await writeRaw('school-1', 'runs/r1/results', stored.subarray(0, length));
      await expectIntegrityError(read('school-1', 'runs/r1/results'));
    }
  });

  it('detects appended data: junk, or a repeated final segment', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    const last = segmentsOf(stored).at(-1)!;
    for (const extra of [Buffer.from([0]), randomBytes(SEALED_SEGMENT), last]) {
      await writeRaw('school-1', 'runs/r1/results', Buffer.concat([stored, extra]));
      await expectIntegrityError(read('school-1', 'runs/r1/results'));
    }
  });

  it('detects a single flipped bit anywhere: header fields, wrapped key, any segment', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    const positions = [
      0, // magic
      4, // version
      5, // segment size (high byte)
      8, // segment size (low byte)
      10, // wrapped key length
      11, // wrapped key: sealed version
      20, // wrapped key: iv
      40, // wrapped key: tag
      ENCRYPTED_HEADER_BYTES - 1, // wrapped key: ciphertext
      ENCRYPTED_HEADER_BYTES, // segment 0: sealed version
      ENCRYPTED_HEADER_BYTES + 5, // segment 0: iv
      ENCRYPTED_HEADER_BYTES + 20, // segment 0: tag
      ENCRYPTED_HEADER_BYTES + 1000, // segment 0: ciphertext
      ENCRYPTED_HEADER_BYTES + 2 * SEALED_SEGMENT + 12345, // segment 2
      stored.length - 1, // the final segment's last byte
    ];
    for (const position of positions) {
      for (const bit of [0, 7]) {
        await writeRaw('school-1', 'runs/r1/results', flipBit(stored, position, bit));
        await expectIntegrityError(read('school-1', 'runs/r1/results'));
      }
    }
    // Untouched, it still reads.
    await writeRaw('school-1', 'runs/r1/results', stored);
    expect((await read('school-1', 'runs/r1/results')).equals(body)).toBe(true);
  });

  it('rejects a bad header at get, and a bad segment as an error event after the good ones', async () => {
    const stored = await raw('school-1', 'runs/r1/results');
    await writeRaw('school-1', 'runs/r1/results', flipBit(stored, 30));
    await expectIntegrityError(store.get('school-1', 'runs/r1/results'));

    await writeRaw(
      'school-1',
      'runs/r1/results',
      flipBit(stored, ENCRYPTED_HEADER_BYTES + 2 * SEALED_SEGMENT + 40),
    );
    const stream = await store.get('school-1', 'runs/r1/results');
    const received: Buffer[] = [];
    const error = await new Promise<unknown>((resolve) => {
      stream.on('data', (chunk: Buffer) => received.push(chunk));
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
    });
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toContain('segment 2');
    // Only the two authenticated segments before the damage were delivered.
    expect(Buffer.concat(received).equals(body.subarray(0, 2 * SEGMENT))).toBe(true);
  });
});

describe('EncryptedObjectStore tenants, keys and pass-through operations', () => {
  it('keeps tenants apart in the inner store', async () => {
    await store.put('school-1', 'runs/r1/a', Buffer.from('1a'));
    await store.put('school-1', 'runs/r2/b', Buffer.from('1b'));
    await store.put('school-2', 'runs/r1/a', Buffer.from('2a'));
    expect((await read('school-1', 'runs/r1/a')).toString()).toBe('1a');
    expect((await read('school-2', 'runs/r1/a')).toString()).toBe('2a');
    await expect(store.get('school-2', 'runs/r2/b')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.exists('school-1', 'runs/r2/b')).toBe(true);
    expect(await store.exists('school-2', 'runs/r2/b')).toBe(false);

    const listed = [];
    for await (const info of store.list('school-1')) listed.push(info);
    expect(listed.map((info) => info.key)).toEqual(['runs/r1/a', 'runs/r2/b']);
    expect(listed[0]!.size).toBe(encryptedObjectSize(2));
    const r2 = [];
    for await (const info of store.list('school-1', 'runs/r2')) r2.push(info.key);
    expect(r2).toEqual(['runs/r2/b']);

    const all = [];
    for await (const info of inner.list()) all.push(info.key);
    expect(all).toEqual([
      'tenants/school-1/runs/r1/a',
      'tenants/school-1/runs/r2/b',
      'tenants/school-2/runs/r1/a',
    ]);

    await store.delete('school-1', 'runs/r1/a');
    await store.delete('school-1', 'runs/r1/a');
    expect(await store.exists('school-1', 'runs/r1/a')).toBe(false);
    expect(await store.exists('school-2', 'runs/r1/a')).toBe(true);

    await store.put('school-1', 'runs/r3/c', Buffer.from('1c'));
    expect(await store.deletePrefix('school-1', 'runs/r3/')).toBe(1);
    expect(await store.deletePrefix('school-1', '')).toBe(1);
    expect(await store.exists('school-2', 'runs/r1/a')).toBe(true);
  });

  it('refuses invalid tenant ids and keys', async () => {
    for (const tenant of ['', '..', '.', '../school-2', 'a/b', 'sp ace', 'x'.repeat(129)]) {
      await expect(store.put(tenant, 'k', Buffer.from('x')), tenant).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get(tenant, 'k'), tenant).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.deletePrefix(tenant, ''), tenant).rejects.toBeInstanceOf(InvalidKeyError);
    }
    for (const key of ['../../school-2/k', '/k', 'a//b', '']) {
      await expect(store.put('t', key, Buffer.from('x')), key).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(store.list('t', '../').next()).rejects.toBeInstanceOf(InvalidKeyError);
    const all = [];
    for await (const info of inner.list()) all.push(info.key);
    expect(all).toEqual([]);
  });

  it('leaves no object when the plaintext stream fails', async () => {
    const failing = async function* () {
      yield randomBytes(3 * SEGMENT);
      throw new Error('source failed');
    };
    await expect(store.put('t', 'broken', failing())).rejects.toThrow('source failed');
    expect(await store.exists('t', 'broken')).toBe(false);
  });

  it('needs a 32-byte master key and a sane segment size', () => {
    expect(() => new EncryptedObjectStore(inner, { masterKey: randomBytes(16) })).toThrow(ObjectStoreError);
    expect(() => new EncryptedObjectStore(inner, { masterKey: randomBytes(64) })).toThrow(/32 bytes/);
    expect(() => new EncryptedObjectStore(inner, { masterKey, segmentSize: 10 })).toThrow(/segment/);
  });

  it('derives the tenant key from a copy of the master key', async () => {
    await store.put('t', 'k', Buffer.from('kept'));
    masterKey.fill(0);
    expect((await read('t', 'k')).toString()).toBe('kept');
  });
});
