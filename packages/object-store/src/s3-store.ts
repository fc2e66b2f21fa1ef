import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandOutput,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  type DeleteObjectsCommandOutput,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import { InvalidKeyError, ObjectNotFoundError, ObjectStoreError, ObjectStoreErrorCode } from './errors.js';
import { ByteQueue, bodyChunks, writeFileAtomic } from './io.js';
import { isValidKey, validateKey, validatePrefix } from './keys.js';
import type { ObjectBody, ObjectInfo, ObjectStore, PutResult } from './object-store.js';

/** Every command this store sends. */
export type S3StoreCommand =
  | PutObjectCommand
  | GetObjectCommand
  | HeadObjectCommand
  | DeleteObjectCommand
  | DeleteObjectsCommand
  | ListObjectsV2Command
  | CreateMultipartUploadCommand
  | UploadPartCommand
  | CompleteMultipartUploadCommand
  | AbortMultipartUploadCommand;

/** The one method of `S3Client` this store uses; tests inject a fake. */
export interface S3CommandSender {
  send(command: S3StoreCommand): Promise<unknown>;
}

export interface S3ObjectStoreOptions {
  bucket: string;
  region: string;
  /** For S3-compatible servers (MinIO, Ceph, R2 …): `http://host:9000`. AWS itself needs none. */
  endpoint?: string;
  /** `bucket` in the path instead of the host name; most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Static credentials; by default the SDK's chain (env vars, profile, SSO, IMDS/ECS role …). */
  credentials?: S3ClientConfig['credentials'];
  /** Prepended to every key (`keystage/prod` becomes `keystage/prod/…`); keys are listed without it. */
  prefix?: string;
  /**
   * Bodies up to this size go up in one PutObject; larger ones as a multipart upload of parts this
   * size, one part in memory at a time. 8 MiB by default; 5 MiB to 512 MiB.
   */
  partSize?: number;
  /** A ready client (or a test double); the connection options above are then ignored. */
  client?: S3CommandSender;
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_SIZE = 512 * 1024 * 1024;
/** S3's limit on parts per upload: with 8 MiB parts an object can be up to 80 GiB. */
export const MAX_PARTS = 10_000;
/** S3's limit on keys per DeleteObjects request. */
export const DELETE_BATCH_SIZE = 1000;

/**
 * An {@link ObjectStore} in an S3 bucket (AWS or an S3-compatible server), with AWS SDK v3.
 *
 * - `put` reads the body into memory up to `partSize` (8 MiB): if it ends there, one PutObject with
 *   a known length; otherwise a multipart upload, one part in memory at a time, sequentially, up to
 *   {@link MAX_PARTS} parts (80 GiB with the default part size). A failed multipart upload is
 *   aborted, so no object and no billed orphan parts remain (S3 only shows an object once
 *   CompleteMultipartUpload succeeds: writes are atomic, as in the local store).
 * - `get` streams GetObject's body; `exists` is HeadObject; `delete` is DeleteObject.
 * - `list` pages through ListObjectsV2 (1000 keys a page); `deletePrefix` deletes what it lists in
 *   DeleteObjects batches of 1000. Keys in the bucket that are not valid keys of this package (a
 *   console "folder" `a/`, foreign objects) are skipped by both.
 */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  /** The key prefix, `''` or ending with `/`. */
  readonly prefix: string;
  private readonly client: S3CommandSender;
  private readonly partSize: number;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw config('an S3 object store needs a bucket');
    if (!options.client && !options.region) throw config('an S3 object store needs a region');
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix ?? '');
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (
      !Number.isSafeInteger(this.partSize) ||
      this.partSize < MIN_PART_SIZE ||
      this.partSize > MAX_PART_SIZE
    ) {
      throw config(`an S3 part size is ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes`);
    }
    this.client =
      options.client ??
      new S3Client({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
      });
  }

  /** The S3 key that holds `key` (validated). */
  s3Key(key: string): string {
    validateKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: ObjectBody): Promise<PutResult> {
    const Key = this.s3Key(key);
    const source = bodyChunks(body)[Symbol.asyncIterator]();
    const queue = new ByteQueue();
    let ended = false;
    // Read up to one part more than partSize: only then is a multipart upload needed.
    while (!ended && queue.length <= this.partSize) {
      const next = await source.next();
      if (next.done) ended = true;
      else queue.push(next.value);
    }
    if (ended) {
      const bytes = queue.takeAll();
      await this.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: bytes, ContentLength: bytes.length }),
      );
      return { size: bytes.length };
    }
    return this.putMultipart(Key, queue, source);
  }

  private async putMultipart(
    Key: string,
    queue: ByteQueue,
    source: AsyncIterator<Buffer>,
  ): Promise<PutResult> {
    const created = await this.send<CreateMultipartUploadCommandOutput>(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ChecksumAlgorithm: 'CRC32' }),
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw backend(`CreateMultipartUpload for ${JSON.stringify(Key)} returned no upload id`);
    const parts: CompletedPart[] = [];
    let size = 0;
    try {
      let ended = false;
      while (!ended || queue.length > 0) {
        // Fill one part; a part is sent once more than partSize bytes are known, so the last part
        // (which may be smaller than 5 MiB) is recognised as such.
        while (!ended && queue.length <= this.partSize) {
          const next = await source.next();
          if (next.done) ended = true;
          else queue.push(next.value);
        }
        const bytes = queue.take(Math.min(this.partSize, queue.length));
        const PartNumber = parts.length + 1;
        if (PartNumber > MAX_PARTS) throw backend(`object too large: more than ${MAX_PARTS} parts`);
        const uploaded = await this.send<UploadPartCommandOutput>(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            PartNumber,
            Body: bytes,
            ContentLength: bytes.length,
            ChecksumAlgorithm: 'CRC32',
          }),
        );
        if (!uploaded.ETag) throw backend(`UploadPart ${PartNumber} returned no ETag`);
        parts.push({
          PartNumber,
          ETag: uploaded.ETag,
          ...(uploaded.ChecksumCRC32 ? { ChecksumCRC32: uploaded.ChecksumCRC32 } : {}),
        });
        size += bytes.length;
      }
      await this.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return { size };
    } catch (error) {
      await source.return?.().catch(() => {});
      await this.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(
        () => {},
      );
      throw error;
    }
  }

  async get(key: string): Promise<Readable> {
    const Key = this.s3Key(key);
    let output: GetObjectCommandOutput;
    try {
      output = await this.send<GetObjectCommandOutput>(new GetObjectCommand({ Bucket: this.bucket, Key }));
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key, { cause: error });
      throw error;
    }
    const body = output.Body;
    if (body instanceof Readable) return body;
    if (body && typeof body === 'object' && Symbol.asyncIterator in body) {
      return Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
    }
    throw backend(`GetObject for ${JSON.stringify(Key)} returned no readable body`);
  }

  async download(key: string, localPath: string): Promise<PutResult> {
    return writeFileAtomic(localPath, await this.get(key));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.s3Key(key) }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 whether or not the key existed.
    await this.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.s3Key(key) }));
  }

  async *list(prefix = ''): AsyncGenerator<ObjectInfo, void, undefined> {
    validatePrefix(prefix);
    const Prefix = this.prefix + prefix;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.send<ListObjectsV2CommandOutput>(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          ...(Prefix ? { Prefix } : {}),
          ...(ContinuationToken ? { ContinuationToken } : {}),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(Prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        if (!isValidKey(key)) continue;
        yield { key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !ContinuationToken) {
        throw backend('ListObjectsV2 returned a truncated page without a continuation token');
      }
    } while (ContinuationToken);
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new InvalidKeyError('deletePrefix needs a non-empty prefix');
    let count = 0;
    let batch: string[] = [];
    for await (const { key } of this.list(prefix)) {
      batch.push(this.prefix + key);
      if (batch.length === DELETE_BATCH_SIZE) {
        count += await this.deleteBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0) count += await this.deleteBatch(batch);
    return count;
  }

  private async deleteBatch(keys: string[]): Promise<number> {
    const output = await this.send<DeleteObjectsCommandOutput>(
      new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
      }),
    );
    const failed = output.Errors ?? [];
    if (failed.length > 0) {
      const first = failed[0]!;
      throw backend(
        `DeleteObjects failed for ${failed.length} of ${keys.length} keys (first: ${first.Key}: ${first.Code} ${first.Message ?? ''})`,
      );
    }
    return keys.length;
  }

  private async send<T = unknown>(command: S3StoreCommand): Promise<T> {
    return (await this.client.send(command)) as T;
  }
}

/** `''`, or a valid prefix that is made to end with `/`. */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed === '') return '';
  try {
    validateKey(trimmed);
  } catch (error) {
    throw config(`invalid S3 key prefix: ${(error as Error).message}`);
  }
  return `${trimmed}/`;
}

/**
 * GetObject of a missing key fails with `NoSuchKey`; HeadObject (no response body) with `NotFound`.
 * A bare 404 is not enough: a missing bucket (`NoSuchBucket`) is a configuration error, not a
 * missing object.
 */
function isNotFound(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { name } = error as { name?: unknown };
  return name === 'NoSuchKey' || name === 'NotFound';
}

function config(message: string): ObjectStoreError {
  return new ObjectStoreError(ObjectStoreErrorCode.InvalidConfig, message);
}

function backend(message: string): ObjectStoreError {
  return new ObjectStoreError(ObjectStoreErrorCode.Backend, message);
}
