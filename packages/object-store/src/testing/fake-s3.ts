import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { bodyChunks } from '../io.js';
import type { S3CommandSender, S3StoreCommand } from '../s3-store.js';

const MIN_PART = 5 * 1024 * 1024;

/** An error shaped like the SDK's service exceptions (name, $metadata.httpStatusCode). */
export function s3Error(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

interface StoredObject {
  body: Buffer;
  lastModified: Date;
}

interface Upload {
  key: string;
  checksum: string | undefined;
  parts: Map<number, { body: Buffer; etag: string }>;
}

/**
 * An in-memory S3 with the semantics this package relies on: ListObjectsV2 pages in key order with
 * opaque continuation tokens, DeleteObjects refusing more than 1000 keys, multipart uploads that only
 * create the object on CompleteMultipartUpload (with S3's 5 MiB minimum for all parts but the last),
 * NoSuchKey / NotFound errors. Records every command for assertions.
 */
export class FakeS3 implements S3CommandSender {
  readonly objects = new Map<string, StoredObject>();
  readonly uploads = new Map<string, Upload>();
  readonly calls: S3StoreCommand[] = [];
  /** Keys whose deletion DeleteObjects reports as failed. */
  readonly undeletable = new Set<string>();
  private nextUpload = 1;

  constructor(
    readonly bucket = 'keystage-test',
    /** Keys per ListObjectsV2 page (S3: 1000). */
    readonly pageSize = 1000,
  ) {}

  callsOf<T extends S3StoreCommand>(type: abstract new (...args: never[]) => T): T[] {
    return this.calls.filter((call): call is T => call instanceof type);
  }

  async send(command: S3StoreCommand): Promise<unknown> {
    this.calls.push(command);
    if (command.input.Bucket !== this.bucket) throw s3Error('NoSuchBucket', 404);
    if (command instanceof PutObjectCommand) {
      const body = await bytesOf(command.input.Body);
      if (command.input.ContentLength !== body.length) throw s3Error('BadContentLength', 400);
      this.objects.set(command.input.Key!, { body, lastModified: new Date() });
      return { ETag: '"put"' };
    }
    if (command instanceof GetObjectCommand) {
      const object = this.objects.get(command.input.Key!);
      if (!object) throw s3Error('NoSuchKey', 404, 'The specified key does not exist.');
      const chunks: Buffer[] = [];
      for (let at = 0; at < object.body.length; at += 64 * 1024)
        chunks.push(object.body.subarray(at, at + 64 * 1024));
      return { Body: Readable.from(chunks), ContentLength: object.body.length };
    }
    if (command instanceof HeadObjectCommand) {
      const object = this.objects.get(command.input.Key!);
      if (!object) throw s3Error('NotFound', 404);
      return { ContentLength: object.body.length, LastModified: object.lastModified };
    }
    if (command instanceof DeleteObjectCommand) {
      this.objects.delete(command.input.Key!);
      return {};
    }
    if (command instanceof DeleteObjectsCommand) {
      const objects = command.input.Delete?.Objects ?? [];
      if (objects.length === 0 || objects.length > 1000) throw s3Error('MalformedXML', 400);
      const errors: { Key: string; Code: string; Message: string }[] = [];
      const deleted: { Key: string }[] = [];
      for (const { Key } of objects) {
        if (this.undeletable.has(Key!))
          errors.push({ Key: Key!, Code: 'AccessDenied', Message: 'Access Denied' });
        else {
          this.objects.delete(Key!);
          deleted.push({ Key: Key! });
        }
      }
      return {
        ...(command.input.Delete?.Quiet ? {} : { Deleted: deleted }),
        ...(errors.length ? { Errors: errors } : {}),
      };
    }
    if (command instanceof ListObjectsV2Command) {
      const prefix = command.input.Prefix ?? '';
      const after = command.input.ContinuationToken
        ? Buffer.from(command.input.ContinuationToken, 'base64url').toString('utf8')
        : '';
      const max = Math.min(command.input.MaxKeys ?? 1000, this.pageSize);
      const keys = [...this.objects.keys()].filter((key) => key.startsWith(prefix) && key > after).sort();
      const page = keys.slice(0, max);
      const truncated = keys.length > page.length;
      return {
        Contents: page.map((Key) => ({
          Key,
          Size: this.objects.get(Key)!.body.length,
          LastModified: this.objects.get(Key)!.lastModified,
        })),
        KeyCount: page.length,
        IsTruncated: truncated,
        ...(truncated
          ? { NextContinuationToken: Buffer.from(page.at(-1)!, 'utf8').toString('base64url') }
          : {}),
      };
    }
    if (command instanceof CreateMultipartUploadCommand) {
      const UploadId = `upload-${this.nextUpload++}`;
      this.uploads.set(UploadId, {
        key: command.input.Key!,
        checksum: command.input.ChecksumAlgorithm,
        parts: new Map(),
      });
      return { UploadId, Key: command.input.Key };
    }
    if (command instanceof UploadPartCommand) {
      const upload = this.uploads.get(command.input.UploadId!);
      if (!upload || upload.key !== command.input.Key) throw s3Error('NoSuchUpload', 404);
      const number = command.input.PartNumber!;
      if (!Number.isInteger(number) || number < 1 || number > 10_000) throw s3Error('InvalidArgument', 400);
      const body = await bytesOf(command.input.Body);
      if (command.input.ContentLength !== body.length) throw s3Error('BadContentLength', 400);
      if (upload.checksum !== command.input.ChecksumAlgorithm)
        throw s3Error('InvalidRequest', 400, 'checksum type');
      const etag = `"etag-${number}-${body.length}"`;
      upload.parts.set(number, { body, etag });
      return { ETag: etag, ...(upload.checksum ? { ChecksumCRC32: `crc-${number}` } : {}) };
    }
    if (command instanceof CompleteMultipartUploadCommand) {
      const upload = this.uploads.get(command.input.UploadId!);
      if (!upload || upload.key !== command.input.Key) throw s3Error('NoSuchUpload', 404);
      const parts = command.input.MultipartUpload?.Parts ?? [];
      if (parts.length === 0) throw s3Error('MalformedXML', 400);
      const bodies: Buffer[] = [];
      for (const [index, part] of parts.entries()) {
        const stored = upload.parts.get(part.PartNumber!);
        if (part.PartNumber !== index + 1 || !stored || stored.etag !== part.ETag)
          throw s3Error('InvalidPart', 400);
        if (upload.checksum && part.ChecksumCRC32 !== `crc-${part.PartNumber}`) {
          throw s3Error(
            'InvalidRequest',
            400,
            'The complete request must include the checksum for each part.',
          );
        }
        if (index < parts.length - 1 && stored.body.length < MIN_PART) throw s3Error('EntityTooSmall', 400);
        bodies.push(stored.body);
      }
      this.uploads.delete(command.input.UploadId!);
      this.objects.set(upload.key, { body: Buffer.concat(bodies), lastModified: new Date() });
      return { ETag: '"multipart"' };
    }
    if (command instanceof AbortMultipartUploadCommand) {
      this.uploads.delete(command.input.UploadId!);
      return {};
    }
    throw new Error('FakeS3: unexpected command');
  }
}

async function bytesOf(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of bodyChunks(body as AsyncIterable<Uint8Array>)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
