import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadObject } from '../download.js';
import { InvalidKeyError, ObjectNotFoundError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../object-store.js';

/**
 * The behaviour every {@link ObjectStore} must have, run against the local store, the S3 store with
 * an in-memory fake client, and (when `KEYSTAGE_TEST_S3_URL` is set) a real S3-compatible server.
 * `open` returns a store over an empty key space; `close` removes whatever it left.
 */
export interface ContractTarget {
  open(): Promise<ObjectStore>;
  close(store: ObjectStore): Promise<void>;
}

/** Keys that every store must refuse before touching its backend. */
export const INVALID_KEYS = [
  '',
  '..',
  '.',
  '../escape',
  'a/../../escape',
  'a/../b',
  './a',
  'a/./b',
  '/etc/passwd',
  '/absolute',
  'a//b',
  'a/',
  'trailing/',
  'a\\..\\b',
  'back\\slash',
  'sp ace',
  'new\nline',
  'nul\0byte',
  'ümlaut',
  'per%2e%2e',
  'colon:x',
  'x'.repeat(256),
  `${'a/'.repeat(400)}a`,
];

export async function collect(stream: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function listAll(store: ObjectStore, prefix?: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

export async function listKeys(store: ObjectStore, prefix?: string): Promise<string[]> {
  return (await listAll(store, prefix)).map((info) => info.key);
}

export async function readObject(store: ObjectStore, key: string): Promise<Buffer> {
  return collect(await store.get(key));
}

/** A body stream that yields `chunks` and then fails, like a dropped upload. */
export async function* failingBody(chunks: Buffer[], error: Error): AsyncGenerator<Buffer> {
  for (const chunk of chunks) yield chunk;
  throw error;
}

/** `size` pseudo-random bytes (an AES-CTR keystream) in chunks of `chunkSize`, the same for one seed. */
export async function* pseudoRandomBody(
  size: number,
  chunkSize: number,
  seed = 'seed',
): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const keystream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  for (let sent = 0; sent < size; ) {
    const n = Math.min(chunkSize, size - sent);
    sent += n;
    yield keystream.update(Buffer.alloc(n));
  }
}

export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function describeObjectStoreContract(name: string, target: ContractTarget): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let scratch: string;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'keystage-contract-'));
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });
    beforeEach(async () => {
      store = await target.open();
    });
    afterEach(async () => {
      await target.close(store);
    });

    it('round-trips a Buffer, a Uint8Array, a Readable, an async generator and an empty body', async () => {
      const bytes = randomBytes(3000);
      expect(await store.put('runs/r1/buffer', bytes)).toEqual({ size: 3000 });
      await store.put('runs/r1/uint8', new Uint8Array(bytes));
      await store.put('runs/r1/readable', Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]));
      await store.put(
        'runs/r1/generator',
        (async function* () {
          yield bytes.subarray(0, 1);
          yield bytes.subarray(1, 2999);
          yield bytes.subarray(2999);
        })(),
      );
      expect(await store.put('runs/r1/empty', Buffer.alloc(0))).toEqual({ size: 0 });
      for (const key of ['buffer', 'uint8', 'readable', 'generator']) {
        expect((await readObject(store, `runs/r1/${key}`)).equals(bytes)).toBe(true);
      }
      expect((await readObject(store, 'runs/r1/empty')).length).toBe(0);
    });

    it('streams a multi-megabyte object through in both directions', async () => {
      const size = 12 * 1024 * 1024 + 17;
      const expected = await collect(pseudoRandomBody(size, 1024 * 1024, 'big'));
      expect(await store.put('big/object.bin', pseudoRandomBody(size, 1024 * 1024, 'big'))).toEqual({ size });
      const read = await readObject(store, 'big/object.bin');
      expect(read.length).toBe(size);
      expect(sha256Of(read)).toBe(sha256Of(expected));
      expect(await listAll(store, 'big/')).toEqual([
        expect.objectContaining({ key: 'big/object.bin', size }),
      ]);
    });

    it('replaces an object on put', async () => {
      await store.put('state/delta.json', Buffer.from('{"v":1}'));
      await store.put('state/delta.json', Buffer.from('{"v":2,"longer":true}'));
      expect((await readObject(store, 'state/delta.json')).toString()).toBe('{"v":2,"longer":true}');
      expect(await listKeys(store)).toEqual(['state/delta.json']);
    });

    it('rejects get of a missing object with ObjectNotFoundError', async () => {
      const error = await store.get('no/such/object').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ObjectNotFoundError);
      expect(error).toMatchObject({ code: 'object_store.not_found', key: 'no/such/object' });
      await store.put('no/such-sibling', Buffer.from('x'));
      await expect(store.get('no/such')).rejects.toBeInstanceOf(ObjectNotFoundError);
      // A "directory" is not an object.
      await expect(store.get('no')).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('answers exists', async () => {
      expect(await store.exists('a/b')).toBe(false);
      await store.put('a/b', Buffer.from('x'));
      expect(await store.exists('a/b')).toBe(true);
      expect(await store.exists('a')).toBe(false);
      expect(await store.exists('a/b/c')).toBe(false);
    });

    it('deletes idempotently', async () => {
      await store.put('d/one', Buffer.from('1'));
      await store.put('d/two', Buffer.from('2'));
      await store.delete('d/one');
      expect(await store.exists('d/one')).toBe(false);
      await expect(store.get('d/one')).rejects.toBeInstanceOf(ObjectNotFoundError);
      await store.delete('d/one');
      await store.delete('never/existed');
      expect(await listKeys(store)).toEqual(['d/two']);
    });

    it('lists recursively, in ascending key order, with sizes and dates, by character prefix', async () => {
      const before = Date.now();
      const keys = ['a0', 'a/b', 'a.x', 'a-c', 'z/y/x/w', 'a/b2/c', 'a/b1', 'm=1/part-0'];
      for (const [i, key] of keys.entries()) await store.put(key, Buffer.alloc(i + 1, 1));
      const all = await listAll(store);
      expect(all.map((info) => info.key)).toEqual([
        'a-c',
        'a.x',
        'a/b',
        'a/b1',
        'a/b2/c',
        'a0',
        'm=1/part-0',
        'z/y/x/w',
      ]);
      for (const info of all) {
        expect(info.size).toBe(keys.indexOf(info.key) + 1);
        expect(info.lastModified).toBeInstanceOf(Date);
        // Filesystem and server clocks: allow some slack.
        expect(info.lastModified.getTime()).toBeGreaterThan(before - 120_000);
        expect(info.lastModified.getTime()).toBeLessThan(Date.now() + 120_000);
      }
      expect(await listKeys(store, 'a/')).toEqual(['a/b', 'a/b1', 'a/b2/c']);
      expect(await listKeys(store, 'a/b')).toEqual(['a/b', 'a/b1', 'a/b2/c']);
      expect(await listKeys(store, 'a/b2/')).toEqual(['a/b2/c']);
      expect(await listKeys(store, 'a')).toEqual(['a-c', 'a.x', 'a/b', 'a/b1', 'a/b2/c', 'a0']);
      expect(await listKeys(store, 'z/y/x/w')).toEqual(['z/y/x/w']);
      expect(await listKeys(store, 'nothing/')).toEqual([]);
      expect(await listKeys(store, 'q')).toEqual([]);
    });

    it('deletes by prefix and returns the count', async () => {
      for (const key of ['t/1/a', 't/1/b/c', 't/10/a', 't/2/a', 'u/a'])
        await store.put(key, Buffer.from(key));
      expect(await store.deletePrefix('t/1/')).toBe(2);
      expect(await listKeys(store)).toEqual(['t/10/a', 't/2/a', 'u/a']);
      expect(await store.deletePrefix('t/')).toBe(2);
      expect(await store.deletePrefix('t/')).toBe(0);
      expect(await listKeys(store)).toEqual(['u/a']);
      await expect(store.deletePrefix('')).rejects.toBeInstanceOf(InvalidKeyError);
      expect(await listKeys(store)).toEqual(['u/a']);
    });

    it('leaves no object behind when the body fails', async () => {
      const failure = new Error('upload dropped');
      await expect(
        store.put('atomic/new', failingBody([Buffer.alloc(1000, 7), Buffer.alloc(1000, 8)], failure)),
      ).rejects.toBe(failure);
      expect(await store.exists('atomic/new')).toBe(false);
      await expect(store.get('atomic/new')).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await listKeys(store)).toEqual([]);
    });

    it('keeps the previous object intact when an overwrite fails', async () => {
      await store.put('atomic/existing', Buffer.from('the original'));
      await expect(
        store.put('atomic/existing', failingBody([Buffer.from('a partial replac')], new Error('boom'))),
      ).rejects.toThrow('boom');
      expect((await readObject(store, 'atomic/existing')).toString()).toBe('the original');
      expect(await listKeys(store)).toEqual(['atomic/existing']);
    });

    it('leaves no object behind when a large, multi-part body fails late', async () => {
      const failure = new Error('dropped after 11 MiB');
      const chunks = Array.from({ length: 11 }, (_, i) => Buffer.alloc(1024 * 1024, i));
      await expect(store.put('atomic/large', failingBody(chunks, failure))).rejects.toBe(failure);
      expect(await store.exists('atomic/large')).toBe(false);
      expect(await listKeys(store)).toEqual([]);
    });

    it('refuses invalid keys and prefixes before touching the backend', async () => {
      for (const key of INVALID_KEYS) {
        await expect(store.put(key, Buffer.from('x')), key).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.get(key), key).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.exists(key), key).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.delete(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      }
      for (const prefix of ['..', '../', '/', '/a', 'a//', 'a/../', '../etc', 'sp ace', 'a\\b']) {
        await expect(listAll(store, prefix), prefix).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.deletePrefix(prefix), prefix).rejects.toBeInstanceOf(InvalidKeyError);
      }
      expect(await listKeys(store)).toEqual([]);
    });

    it('downloads to a local file atomically', async () => {
      const bytes = randomBytes(100_000);
      await store.put('dl/object', bytes);
      const path = join(scratch, `download-${randomBytes(4).toString('hex')}`);
      expect(await downloadObject(store, 'dl/object', path)).toEqual({ size: bytes.length });
      expect((await readFile(path)).equals(bytes)).toBe(true);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const missing = join(scratch, 'missing');
      await expect(downloadObject(store, 'dl/missing', missing)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
}
