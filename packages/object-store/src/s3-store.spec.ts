import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, ObjectNotFoundError, ObjectStoreError } from './errors.js';
import { S3ObjectStore } from './s3-store.js';
import { FakeS3 } from './testing/fake-s3.js';
import {
  collect,
  describeObjectStoreContract,
  failingBody,
  listKeys,
  readObject,
} from './testing/store-contract.js';

const MiB = 1024 * 1024;

// The whole contract against the fake, with tiny list pages so every listing paginates.
const fakes = new WeakMap<S3ObjectStore, FakeS3>();
describeObjectStoreContract('S3ObjectStore (in-memory fake S3, 2 keys per page)', {
  async open() {
    const fake = new FakeS3('keystage-test', 2);
    const store = new S3ObjectStore({
      bucket: 'keystage-test',
      region: 'eu-west-2',
      prefix: 'env/test',
      client: fake,
    });
    fakes.set(store, fake);
    return store;
  },
  async close(store) {
    const fake = fakes.get(store as S3ObjectStore)!;
    // Whatever the test did, no multipart upload may be left open.
    expect([...fake.uploads.keys()]).toEqual([]);
  },
});

function setup(options: { prefix?: string; pageSize?: number; partSize?: number } = {}) {
  const fake = new FakeS3('bucket', options.pageSize ?? 1000);
  const store = new S3ObjectStore({
    bucket: 'bucket',
    region: 'eu-west-2',
    client: fake,
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    ...(options.partSize !== undefined ? { partSize: options.partSize } : {}),
  });
  return { fake, store };
}

function seed(fake: FakeS3, keys: string[]): void {
  for (const key of keys) fake.objects.set(key, { body: Buffer.from(key), lastModified: new Date(0) });
}

describe('S3ObjectStore key mapping', () => {
  it('prepends the prefix to every key it sends and strips it from every key it lists', async () => {
    const { fake, store } = setup({ prefix: 'keystage/prod/' });
    expect(store.prefix).toBe('keystage/prod/');
    expect(store.s3Key('runs/r1/results')).toBe('keystage/prod/runs/r1/results');
    await store.put('runs/r1/results', Buffer.from('x'));
    await store.get('runs/r1/results');
    await store.exists('runs/r1/results');
    await store.delete('runs/r1/other');
    expect(fake.calls.map((call) => ('Key' in call.input ? call.input.Key : undefined))).toEqual([
      'keystage/prod/runs/r1/results',
      'keystage/prod/runs/r1/results',
      'keystage/prod/runs/r1/results',
      'keystage/prod/runs/r1/other',
    ]);
    expect(fake.calls.every((call) => call.input.Bucket === 'bucket')).toBe(true);

    seed(fake, ['keystage/prod/runs/r2/a', 'keystage/prodx/runs/r1', 'other/runs/r1', 'keystage/prod/runs/']);
    expect(await listKeys(store)).toEqual(['runs/r1/results', 'runs/r2/a']);
    expect(await listKeys(store, 'runs/r2')).toEqual(['runs/r2/a']);
    expect(fake.callsOf(ListObjectsV2Command).map((call) => call.input.Prefix)).toEqual([
      'keystage/prod/',
      'keystage/prod/runs/r2',
    ]);
  });

  it('normalizes the prefix and works without one', async () => {
    expect(setup({ prefix: 'a/b' }).store.prefix).toBe('a/b/');
    expect(setup({ prefix: 'a/b///' }).store.prefix).toBe('a/b/');
    const { fake, store } = setup();
    expect(store.prefix).toBe('');
    await store.put('k', Buffer.from('v'));
    expect([...fake.objects.keys()]).toEqual(['k']);
    for await (const _ of store.list()) {
      // consume
    }
    expect(fake.callsOf(ListObjectsV2Command)[0]!.input.Prefix).toBeUndefined();
  });

  it('skips bucket keys that are not valid keys (console folders, foreign objects)', async () => {
    const { fake, store } = setup({ prefix: 'p' });
    seed(fake, ['p/ok', 'p/folder/', 'p/with space', 'p/a//b', 'p/../x', 'p/also-ok/x']);
    expect(await listKeys(store)).toEqual(['also-ok/x', 'ok']);
    expect(await store.deletePrefix('a')).toBe(1);
    expect([...fake.objects.keys()].sort()).toEqual([
      'p/../x',
      'p/a//b',
      'p/folder/',
      'p/ok',
      'p/with space',
    ]);
  });

  it('refuses invalid keys without sending anything', async () => {
    const { fake, store } = setup({ prefix: 'p' });
    for (const key of ['../x', '/x', 'a//b', '']) {
      expect(() => store.s3Key(key)).toThrow(InvalidKeyError);
      await expect(store.put(key, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(listKeys(store, '../')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(fake.calls).toEqual([]);
  });
});

describe('S3ObjectStore pagination and batching', () => {
  it('follows continuation tokens through every page', async () => {
    const { fake, store } = setup({ prefix: 'p' });
    const keys = Array.from({ length: 2500 }, (_, i) => `p/runs/${String(i).padStart(5, '0')}`);
    seed(fake, keys);
    const listed = await listKeys(store, 'runs/');
    expect(listed).toHaveLength(2500);
    expect(listed).toEqual(keys.map((key) => key.slice(2)));
    const calls = fake.callsOf(ListObjectsV2Command);
    expect(calls).toHaveLength(3);
    expect(calls[0]!.input.ContinuationToken).toBeUndefined();
    expect(calls[1]!.input.ContinuationToken).toBeTruthy();
    expect(calls[2]!.input.ContinuationToken).not.toBe(calls[1]!.input.ContinuationToken);
  });

  it('lists lazily: a consumer that stops early fetches one page', async () => {
    const { fake, store } = setup();
    seed(
      fake,
      Array.from({ length: 3000 }, (_, i) => `k${String(i).padStart(4, '0')}`),
    );
    for await (const info of store.list()) {
      expect(info.key).toBe('k0000');
      break;
    }
    expect(fake.callsOf(ListObjectsV2Command)).toHaveLength(1);
  });

  it('fails on a truncated page without a continuation token instead of looping', async () => {
    const store = new S3ObjectStore({
      bucket: 'b',
      region: 'r',
      client: { send: async () => ({ Contents: [], IsTruncated: true }) },
    });
    await expect(listKeys(store)).rejects.toMatchObject({ code: 'object_store.backend' });
  });

  it('deletes a prefix in DeleteObjects batches of at most 1000 keys', async () => {
    const { fake, store } = setup({ prefix: 'p' });
    seed(
      fake,
      Array.from({ length: 2500 }, (_, i) => `p/del/${String(i).padStart(5, '0')}`),
    );
    seed(fake, ['p/keep/1', 'p/delete-not']);
    expect(await store.deletePrefix('del/')).toBe(2500);
    const batches = fake.callsOf(DeleteObjectsCommand);
    expect(batches.map((call) => call.input.Delete?.Objects?.length)).toEqual([1000, 1000, 500]);
    expect(batches.every((call) => call.input.Delete?.Quiet === true)).toBe(true);
    expect(batches[0]!.input.Delete?.Objects?.[0]).toEqual({ Key: 'p/del/00000' });
    expect([...fake.objects.keys()].sort()).toEqual(['p/delete-not', 'p/keep/1']);
  });

  it('reports keys DeleteObjects could not delete', async () => {
    const { fake, store } = setup();
    seed(fake, ['d/1', 'd/2', 'd/3']);
    fake.undeletable.add('d/2');
    const error = await store.deletePrefix('d/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreError);
    expect(error).toMatchObject({ code: 'object_store.backend' });
    expect((error as Error).message).toContain('d/2');
  });
});

describe('S3ObjectStore uploads', () => {
  it('sends a body up to one part size as one PutObject with its length', async () => {
    const { fake, store } = setup({ partSize: 5 * MiB });
    const body = async function* () {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(MiB, i);
    };
    expect(await store.put('exactly-one-part', body())).toEqual({ size: 5 * MiB });
    const puts = fake.callsOf(PutObjectCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0]!.input.ContentLength).toBe(5 * MiB);
    expect(fake.callsOf(CreateMultipartUploadCommand)).toHaveLength(0);
  });

  it('sends a larger body as a multipart upload, one part in memory at a time', async () => {
    const { fake, store } = setup({ partSize: 5 * MiB });
    const size = 12 * MiB + 3;
    const body = async function* () {
      for (let sent = 0; sent < size; sent += 700_001)
        yield Buffer.alloc(Math.min(700_001, size - sent), sent % 251);
    };
    expect(await store.put('multi', body())).toEqual({ size });
    expect(fake.callsOf(PutObjectCommand)).toHaveLength(0);
    expect(fake.callsOf(CreateMultipartUploadCommand)[0]!.input.ChecksumAlgorithm).toBe('CRC32');
    const parts = fake.callsOf(UploadPartCommand);
    expect(parts.map((call) => [call.input.PartNumber, call.input.ContentLength])).toEqual([
      [1, 5 * MiB],
      [2, 5 * MiB],
      [3, 2 * MiB + 3],
    ]);
    const complete = fake.callsOf(CompleteMultipartUploadCommand)[0]!;
    expect(complete.input.MultipartUpload?.Parts).toEqual([
      { PartNumber: 1, ETag: `"etag-1-${5 * MiB}"`, ChecksumCRC32: 'crc-1' },
      { PartNumber: 2, ETag: `"etag-2-${5 * MiB}"`, ChecksumCRC32: 'crc-2' },
      { PartNumber: 3, ETag: `"etag-3-${2 * MiB + 3}"`, ChecksumCRC32: 'crc-3' },
    ]);
    const expected = await collect(body());
    expect((await readObject(store, 'multi')).equals(expected)).toBe(true);
  });

  it('sends no empty last part when the body is a multiple of the part size', async () => {
    const { fake, store } = setup({ partSize: 5 * MiB });
    await store.put('even', Buffer.alloc(10 * MiB, 1));
    expect(fake.callsOf(UploadPartCommand).map((call) => call.input.ContentLength)).toEqual([
      5 * MiB,
      5 * MiB,
    ]);
    expect(fake.objects.get('even')!.body.length).toBe(10 * MiB);
  });

  it('aborts the multipart upload when the body fails, leaving no object and no open upload', async () => {
    const { fake, store } = setup({ partSize: 5 * MiB });
    const failure = new Error('agent disconnected');
    const chunks = Array.from({ length: 7 }, () => Buffer.alloc(MiB));
    await expect(store.put('broken', failingBody(chunks, failure))).rejects.toBe(failure);
    expect(fake.callsOf(UploadPartCommand)).toHaveLength(1);
    expect(fake.callsOf(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(fake.callsOf(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(fake.uploads.size).toBe(0);
    expect(fake.objects.has('broken')).toBe(false);
  });

  it('aborts when S3 refuses a part', async () => {
    const { fake, store } = setup({ partSize: 5 * MiB });
    const send = fake.send.bind(fake);
    fake.send = async (command) => {
      if (command instanceof UploadPartCommand && command.input.PartNumber === 2)
        throw new Error('503 SlowDown');
      return send(command);
    };
    await expect(store.put('refused', Buffer.alloc(11 * MiB))).rejects.toThrow('SlowDown');
    expect(fake.callsOf(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(fake.uploads.size).toBe(0);
  });
});

describe('S3ObjectStore errors and configuration', () => {
  it('maps NoSuchKey to ObjectNotFoundError and passes other errors through', async () => {
    const { store } = setup();
    await expect(store.get('missing')).rejects.toBeInstanceOf(ObjectNotFoundError);
    // A wrong bucket (NoSuchBucket, also a 404) is configuration, not a missing object.
    const wrongBucket = new S3ObjectStore({ bucket: 'other', region: 'r', client: new FakeS3('bucket') });
    const error = await wrongBucket.get('missing').catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    expect(error).toMatchObject({ name: 'NoSuchBucket' });
  });

  it('streams the GetObject body', async () => {
    const { fake, store } = setup();
    await store.put('k', Buffer.from('hello'));
    const stream = await store.get('k');
    expect(fake.callsOf(GetObjectCommand)).toHaveLength(1);
    expect((await collect(stream)).toString()).toBe('hello');
  });

  it('validates its options', () => {
    expect(() => new S3ObjectStore({ bucket: '', region: 'r' })).toThrow(ObjectStoreError);
    expect(() => new S3ObjectStore({ bucket: 'b', region: '' })).toThrow(/region/);
    expect(() => new S3ObjectStore({ bucket: 'b', region: 'r', partSize: MiB })).toThrow(/part size/);
    expect(() => new S3ObjectStore({ bucket: 'b', region: 'r', prefix: '../x' })).toThrow(/prefix/);
    // A real client is built without any network access.
    const store = new S3ObjectStore({
      bucket: 'b',
      region: 'eu-west-2',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
      prefix: 'x',
    });
    expect(store.s3Key('y')).toBe('x/y');
  });
});
