import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  CryptoError,
  decryptChunk,
  deriveKey,
  encryptChunk,
  generateDataKey,
  SEALED_OVERHEAD_BYTES,
  unwrapKey,
  WRAPPED_KEY_BYTES,
  wrapKey,
} from '@keystage/crypto';
import { IntegrityError, InvalidKeyError, ObjectStoreError, ObjectStoreErrorCode } from './errors.js';
import { ByteQueue, bodyChunks, writeFileAtomic } from './io.js';
import { validateKey, validatePrefix, validateSegment } from './keys.js';
import type { ObjectBody, ObjectInfo, ObjectStore, PositionalWrite, PutResult } from './object-store.js';

/**
 * Encrypted object format, version 1 (all integers big-endian):
 *
 *     header (72 bytes)
 *       magic            4   "KSEO"
 *       version          1   0x01
 *       segment size     4   plaintext bytes per segment (1 KiB … 16 MiB; 64 KiB by default)
 *       wrapped key len  2   61
 *       wrapped data key 61  wrapKey(dataKey, tenantKek, aad = header[0..11) ‖ tenant ‖ key)
 *     segments
 *       segment i        encryptChunk(plaintext_i, dataKey, { runId: context(final_i, tenant, key), seq: i })
 *                        = 0x01 ‖ iv (12) ‖ tag (16) ‖ ciphertext — 29 bytes more than its plaintext
 *
 * Every segment but the last holds exactly `segment size` plaintext bytes; the last holds 1 to
 * `segment size` bytes (0 only for an empty object, which is one empty final segment). A reader
 * knows a segment is the last one only because the stream ends there, and then checks the
 * `final` flag bound into that segment's associated data, which is what detects truncation at a
 * segment boundary.
 */
export const ENCRYPTED_OBJECT_MAGIC = Buffer.from('KSEO', 'ascii');
export const ENCRYPTED_OBJECT_FORMAT_V1 = 0x01;
/** 4 + 1 + 4 + 2 + 61. */
export const ENCRYPTED_HEADER_BYTES = 11 + WRAPPED_KEY_BYTES;
/** Bytes each segment adds to its plaintext (version, iv, tag). */
export const ENCRYPTED_SEGMENT_OVERHEAD_BYTES = SEALED_OVERHEAD_BYTES;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024;
const MIN_SEGMENT_BYTES = 1024;
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;
/** Tenant ids are one key segment of at most this many characters. */
export const MAX_TENANT_ID_LENGTH = 128;

const FIXED_HEADER_BYTES = 11;
const WRAP_AAD_LABEL = Buffer.from('keystage.object-store.header.v1\0', 'utf8');
const SEGMENT_CONTEXT_LABEL = 'keystage.object-store.v1';
const KEK_PURPOSE_PREFIX = 'object-store/tenant/';

export interface EncryptedObjectStoreOptions {
  /** 32 random bytes (not a password). Each tenant's key is derived from it. */
  masterKey: Uint8Array;
  /** Plaintext bytes per segment for new objects; 64 KiB by default. Readers take it from the header. */
  segmentSize?: number;
  /** The first key segment under which tenants' objects live in the inner store: `tenants` by default. */
  namespace?: string;
}

/** What an encrypted `put` reports. */
export interface EncryptedPutResult {
  /** Plaintext bytes. */
  size: number;
  /** Bytes stored (header and per-segment overhead included). */
  storedSize: number;
}

/** The stored size of an object of `plaintextSize` bytes written with `segmentSize`-byte segments. */
export function encryptedObjectSize(plaintextSize: number, segmentSize = DEFAULT_SEGMENT_BYTES): number {
  const segments = plaintextSize === 0 ? 1 : Math.ceil(plaintextSize / segmentSize);
  return ENCRYPTED_HEADER_BYTES + plaintextSize + segments * ENCRYPTED_SEGMENT_OVERHEAD_BYTES;
}

/**
 * Envelope encryption over any {@link ObjectStore}, with a key per tenant.
 *
 * - Tenant key-encryption key: `deriveKey(masterKey, 'object-store/tenant/' + tenantId)` (HKDF-SHA256).
 * - Each object gets a fresh random data key, wrapped with the tenant key; the wrap's associated data
 *   binds the header, the tenant id and the object key.
 * - The body is cut into segments, each sealed with AES-256-GCM (`encryptChunk`) under the data key
 *   with associated data binding the tenant, the object key, the segment index and whether it is the
 *   final segment. Reading an object under another tenant or key, or truncated, extended, reordered,
 *   spliced from other objects or altered in any bit, fails with {@link IntegrityError}.
 * - Both directions stream: one segment at a time is held in memory.
 *
 * Objects live in the inner store under `<namespace>/<tenantId>/<key>`.
 *
 * Not detected: replacing an object with an older version of itself (same tenant, same key), or
 * deleting it. Both need a record outside the store (a digest or version in the database).
 */
export class EncryptedObjectStore {
  readonly inner: ObjectStore;
  private readonly masterKey: Buffer;
  private readonly segmentSize: number;
  private readonly namespace: string;

  constructor(inner: ObjectStore, options: EncryptedObjectStoreOptions) {
    const { masterKey } = options;
    if (!(masterKey instanceof Uint8Array) || masterKey.length !== 32) {
      throw new ObjectStoreError(
        ObjectStoreErrorCode.InvalidConfig,
        'the object-store master key is 32 bytes',
      );
    }
    this.inner = inner;
    this.masterKey = Buffer.from(masterKey);
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_BYTES;
    if (!isSegmentSize(this.segmentSize)) {
      throw new ObjectStoreError(
        ObjectStoreErrorCode.InvalidConfig,
        `a segment is ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES} bytes`,
      );
    }
    this.namespace = options.namespace ?? 'tenants';
    validateKey(this.namespace);
  }

  /** The inner store's key for `key` of `tenantId` (both validated). */
  innerKey(tenantId: string, key: string): string {
    checkTenant(tenantId);
    validateKey(key);
    return `${this.namespace}/${tenantId}/${key}`;
  }

  /** Encrypts `body` as it streams and stores it under the tenant's `key`. */
  put(tenantId: string, key: string, body: ObjectBody): Promise<EncryptedPutResult> {
    return this.store(tenantId, key, (dataKey, counter) =>
      encryptSegments(bodyChunks(body), dataKey, tenantId, key, this.segmentSize, counter),
    );
  }

  /**
   * {@link put} of a local file (which must not change meanwhile), read a segment at a time into one
   * buffer: a large file makes no garbage but its ciphertext, where a stream of it would also make
   * a buffer per read.
   */
  async putFile(tenantId: string, key: string, path: string): Promise<EncryptedPutResult> {
    this.innerKey(tenantId, key);
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      return await this.store(tenantId, key, (dataKey, counter) =>
        encryptFile(file, size, path, dataKey, tenantId, key, this.segmentSize, counter),
      );
    } finally {
      await file.close();
    }
  }

  /**
   * Stores a local file that is still being written — appended to, its first segment's bytes
   * excepted, which may change until the end — as it grows: `advance(n)` says its first `n` bytes
   * are final (from segment 1 on, whole segments are sealed and written then), `finish(size)` seals
   * the rest and stores the object. Undefined when the inner store cannot write at positions
   * (then store the finished file with {@link putFile}).
   */
  async putGrowingFile(tenantId: string, key: string, path: string): Promise<GrowingFilePut | undefined> {
    const innerKey = this.innerKey(tenantId, key);
    if (!this.inner.openPositional) return undefined;
    const file = await open(path, 'r');
    const dataKey = generateDataKey();
    let writer: PositionalWrite | undefined;
    try {
      writer = await this.inner.openPositional(innerKey);
      return new GrowingFilePut(file, writer, dataKey, this.header(tenantId, key, dataKey), {
        tenantId,
        key,
        path,
        segmentSize: this.segmentSize,
      });
    } catch (error) {
      dataKey.fill(0);
      await writer?.abort();
      await file.close();
      throw error;
    }
  }

  /** The object header: format, segment size and `dataKey` wrapped with the tenant's key. */
  private header(tenantId: string, key: string, dataKey: Buffer): Buffer {
    const header = Buffer.alloc(ENCRYPTED_HEADER_BYTES);
    ENCRYPTED_OBJECT_MAGIC.copy(header, 0);
    header.writeUInt8(ENCRYPTED_OBJECT_FORMAT_V1, 4);
    header.writeUInt32BE(this.segmentSize, 5);
    header.writeUInt16BE(WRAPPED_KEY_BYTES, 9);
    const fixed = header.subarray(0, FIXED_HEADER_BYTES);
    const wrapped = this.withTenantKek(tenantId, (kek) =>
      wrapKey(dataKey, kek, wrapAad(fixed, tenantId, key)),
    );
    wrapped.copy(header, FIXED_HEADER_BYTES);
    return header;
  }

  /** Stores the header and the segments `encrypt` seals with the object's fresh data key. */
  private async store(
    tenantId: string,
    key: string,
    encrypt: (dataKey: Buffer, counter: { size: number }) => AsyncIterable<Buffer>,
  ): Promise<EncryptedPutResult> {
    const innerKey = this.innerKey(tenantId, key);
    const dataKey = generateDataKey();
    try {
      const header = this.header(tenantId, key, dataKey);
      const counter = { size: 0 };
      const { size: storedSize } = await this.inner.put(innerKey, prepend(header, encrypt(dataKey, counter)));
      return { size: counter.size, storedSize };
    } finally {
      dataKey.fill(0);
    }
  }

  /**
   * Opens the tenant's object for reading as a stream of plaintext. Rejects with
   * `ObjectNotFoundError` when there is none and with {@link IntegrityError} when its header does not
   * authenticate (wrong master key, another tenant's or key's object, altered or truncated header).
   * A problem in the body (a truncated, reordered, foreign or altered segment) is emitted as an
   * `error` event carrying an {@link IntegrityError}: every byte delivered before it was
   * authenticated, but the object as a whole is not — treat the data as unusable unless the stream
   * ends cleanly (or use {@link download}, which only produces a file for a complete object).
   */
  async get(tenantId: string, key: string): Promise<Readable> {
    const innerKey = this.innerKey(tenantId, key);
    const stored = await this.inner.get(innerKey);
    const source = stored[Symbol.asyncIterator]() as AsyncIterator<unknown>;
    const reader = new SegmentReader(source);
    let dataKey: Buffer;
    let segmentSize: number;
    try {
      const header = await reader.read(ENCRYPTED_HEADER_BYTES);
      if (header === undefined)
        throw new IntegrityError(`${innerKey}: not an encrypted object (header cut short)`);
      if (!header.subarray(0, 4).equals(ENCRYPTED_OBJECT_MAGIC)) {
        throw new IntegrityError(`${innerKey}: not an encrypted object (bad magic)`);
      }
      if (header[4] !== ENCRYPTED_OBJECT_FORMAT_V1) {
        throw new IntegrityError(`${innerKey}: unknown encrypted object format ${header[4]}`);
      }
      segmentSize = header.readUInt32BE(5);
      if (!isSegmentSize(segmentSize) || header.readUInt16BE(9) !== WRAPPED_KEY_BYTES) {
        throw new IntegrityError(`${innerKey}: malformed header`);
      }
      const fixed = header.subarray(0, FIXED_HEADER_BYTES);
      try {
        const wrapped = header.subarray(FIXED_HEADER_BYTES);
        dataKey = this.withTenantKek(tenantId, (kek) =>
          unwrapKey(wrapped, kek, wrapAad(fixed, tenantId, key)),
        );
      } catch (cause) {
        if (!(cause instanceof CryptoError)) throw cause;
        throw new IntegrityError(
          `${innerKey}: the data key does not unwrap (another master key, tenant or key, or an altered header)`,
          { cause },
        );
      }
    } catch (error) {
      stored.destroy();
      throw error;
    }
    const out = Readable.from(decryptSegments(reader, dataKey, tenantId, key, segmentSize), {
      objectMode: false,
    });
    // Also when the consumer destroys the stream before reading (the generator never started).
    out.once('close', () => {
      stored.destroy();
      dataKey.fill(0);
    });
    return out;
  }

  /**
   * Decrypts the tenant's object into `localPath` atomically: the file appears only once every
   * segment authenticated, and never exists half-written or for a corrupt object.
   */
  async download(tenantId: string, key: string, localPath: string): Promise<PutResult> {
    return writeFileAtomic(localPath, await this.get(tenantId, key));
  }

  async exists(tenantId: string, key: string): Promise<boolean> {
    return this.inner.exists(this.innerKey(tenantId, key));
  }

  async delete(tenantId: string, key: string): Promise<void> {
    return this.inner.delete(this.innerKey(tenantId, key));
  }

  /** The tenant's objects under `prefix`, keys relative to the tenant; sizes are stored (encrypted) sizes. */
  async *list(tenantId: string, prefix = ''): AsyncGenerator<ObjectInfo, void, undefined> {
    const base = this.tenantPrefix(tenantId, prefix);
    const strip = base.length - prefix.length;
    for await (const info of this.inner.list(base)) yield { ...info, key: info.key.slice(strip) };
  }

  /** Deletes the tenant's objects under `prefix`; `''` deletes all of the tenant's objects. */
  async deletePrefix(tenantId: string, prefix: string): Promise<number> {
    return this.inner.deletePrefix(this.tenantPrefix(tenantId, prefix));
  }

  private tenantPrefix(tenantId: string, prefix: string): string {
    checkTenant(tenantId);
    validatePrefix(prefix);
    return `${this.namespace}/${tenantId}/${prefix}`;
  }

  /** Runs `use` with the tenant's key-encryption key, which is derived for the call and then wiped. */
  private withTenantKek<T>(tenantId: string, use: (kek: Buffer) => T): T {
    const kek = deriveKey(this.masterKey, KEK_PURPOSE_PREFIX + tenantId);
    try {
      return use(kek);
    } finally {
      kek.fill(0);
    }
  }
}

function checkTenant(tenantId: string): void {
  validateSegment(tenantId, 'a tenant id');
  if (tenantId.length > MAX_TENANT_ID_LENGTH) {
    throw new InvalidKeyError(`a tenant id is at most ${MAX_TENANT_ID_LENGTH} characters`);
  }
}

function isSegmentSize(size: number): boolean {
  return Number.isSafeInteger(size) && size >= MIN_SEGMENT_BYTES && size <= MAX_SEGMENT_BYTES;
}

/** label ‖ fixed header ‖ u16 len ‖ tenant ‖ u16 len ‖ key. */
function wrapAad(fixedHeader: Buffer, tenantId: string, key: string): Buffer {
  const tenant = Buffer.from(tenantId, 'utf8');
  const objectKey = Buffer.from(key, 'utf8');
  const lengths = Buffer.alloc(4);
  lengths.writeUInt16BE(tenant.length, 0);
  lengths.writeUInt16BE(objectKey.length, 2);
  return Buffer.concat([
    WRAP_AAD_LABEL,
    fixedHeader,
    lengths.subarray(0, 2),
    tenant,
    lengths.subarray(2, 4),
    objectKey,
  ]);
}

/**
 * The `runId` of `encryptChunk`'s context for a segment: tenant ids and keys cannot contain `|`,
 * so the fields cannot run into each other (and encryptChunk length-prefixes the whole string).
 */
function segmentContext(final: boolean, tenantId: string, key: string): string {
  return `${SEGMENT_CONTEXT_LABEL}|${final ? 'final' : 'more'}|${tenantId}|${key}`;
}

async function* prepend(first: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  yield first;
  yield* rest;
}

async function* encryptSegments(
  plaintext: AsyncIterable<Buffer>,
  dataKey: Buffer,
  tenantId: string,
  key: string,
  segmentSize: number,
  counter: { size: number },
): AsyncGenerator<Buffer, void, undefined> {
  const more = segmentContext(false, tenantId, key);
  const queue = new ByteQueue();
  let seq = 0;
  for await (const chunk of plaintext) {
    queue.push(chunk);
    counter.size += chunk.length;
    // Keep back at least one byte more than a segment: only at the end is a segment known to be final.
    while (queue.length > segmentSize) {
      yield encryptChunk(queue.take(segmentSize), dataKey, { runId: more, seq });
      seq += 1;
    }
  }
  yield encryptChunk(queue.takeAll(), dataKey, { runId: segmentContext(true, tenantId, key), seq });
}

/** The segments of `size` bytes of `file`, sealed as {@link encryptSegments} seals them. */
async function* encryptFile(
  file: FileHandle,
  size: number,
  path: string,
  dataKey: Buffer,
  tenantId: string,
  key: string,
  segmentSize: number,
  counter: { size: number },
): AsyncGenerator<Buffer, void, undefined> {
  const more = segmentContext(false, tenantId, key);
  // Sealing copies the plaintext out: the buffer is free again once a segment is sealed.
  const plaintext = Buffer.allocUnsafe(Math.min(segmentSize, size));
  let seq = 0;
  do {
    const length = Math.min(segmentSize, size - counter.size);
    for (let at = 0; at < length; ) {
      const { bytesRead } = await file.read(plaintext, at, length - at, counter.size + at);
      if (bytesRead === 0) throw new Error(`${path} changed while it was stored`);
      at += bytesRead;
    }
    counter.size += length;
    const runId = counter.size === size ? segmentContext(true, tenantId, key) : more;
    yield encryptChunk(plaintext.subarray(0, length), dataKey, { runId, seq });
    seq += 1;
  } while (counter.size < size);
}

async function* decryptSegments(
  reader: SegmentReader,
  dataKey: Buffer,
  tenantId: string,
  key: string,
  segmentSize: number,
): AsyncGenerator<Buffer, void, undefined> {
  const sealedSize = segmentSize + ENCRYPTED_SEGMENT_OVERHEAD_BYTES;
  const more = segmentContext(false, tenantId, key);
  const where = `${tenantId}/${key}`;
  try {
    for (let seq = 0; ; seq++) {
      // More than a whole sealed segment left: this one is not the last.
      const full = await reader.readIfMoreThan(sealedSize);
      if (full !== undefined) {
        yield openSegment(full, dataKey, more, seq, where);
        continue;
      }
      const last = reader.rest();
      if (last.length < ENCRYPTED_SEGMENT_OVERHEAD_BYTES) {
        throw new IntegrityError(`${where}: object cut short before segment ${seq}`);
      }
      const plaintext = openSegment(last, dataKey, segmentContext(true, tenantId, key), seq, where);
      if (plaintext.length > 0) yield plaintext;
      return;
    }
  } finally {
    dataKey.fill(0);
    await reader.close();
  }
}

function openSegment(sealed: Buffer, dataKey: Buffer, runId: string, seq: number, where: string): Buffer {
  try {
    return decryptChunk(sealed, dataKey, { runId, seq });
  } catch (cause) {
    if (!(cause instanceof CryptoError)) throw cause;
    throw new IntegrityError(
      `${where}: segment ${seq} does not authenticate (truncated, reordered, altered or from another object)`,
      { cause },
    );
  }
}

/** Pulls exact byte counts out of a stream of chunks. */
class SegmentReader {
  private readonly queue = new ByteQueue();
  private ended = false;

  constructor(private readonly source: AsyncIterator<unknown>) {}

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    await this.fill(n);
    return this.queue.length >= n ? this.queue.take(n) : undefined;
  }

  /** `n` bytes when more than `n` are left in the stream; otherwise undefined (see {@link rest}). */
  async readIfMoreThan(n: number): Promise<Buffer | undefined> {
    await this.fill(n + 1);
    return this.queue.length > n ? this.queue.take(n) : undefined;
  }

  /** Everything left; only meaningful once the stream ended. */
  rest(): Buffer {
    return this.queue.takeAll();
  }

  async close(): Promise<void> {
    if (!this.ended) await this.source.return?.().catch(() => {});
  }

  private async fill(n: number): Promise<void> {
    while (!this.ended && this.queue.length < n) {
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk = next.value;
      if (Buffer.isBuffer(chunk)) this.queue.push(chunk);
      else if (chunk instanceof Uint8Array)
        this.queue.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      else throw new TypeError('the inner object store yielded something other than bytes');
    }
  }
}

/**
 * A local file stored as it grows (see {@link EncryptedObjectStore.putGrowingFile}): the same
 * object {@link EncryptedObjectStore.putFile} makes of the finished file, its sealed segments
 * written at their places as soon as their bytes are final — segment 0 and the last one at the end.
 * One segment is read and sealed at a time.
 */
export class GrowingFilePut {
  /** The next segment to seal ahead (segment 0 waits for the end). */
  private next = 1;
  /** Bytes of the file known to be final. */
  private final = 0;
  private running: Promise<void> | undefined;
  private failure: unknown;
  /** Finishing or aborted: nothing more is sealed ahead, and only the first of the two happens. */
  private done = false;
  private readonly plaintext: Buffer;

  constructor(
    private readonly file: FileHandle,
    private readonly writer: PositionalWrite,
    private readonly dataKey: Buffer,
    private readonly header: Buffer,
    private readonly where: { tenantId: string; key: string; path: string; segmentSize: number },
  ) {
    this.plaintext = Buffer.allocUnsafe(where.segmentSize);
  }

  /** The file's first `final` bytes will not change any more (bar those of segment 0). */
  advance(final: number): void {
    if (this.done || this.failure !== undefined) return;
    this.final = Math.max(this.final, final);
    this.running ??= this.pump().then(
      () => {
        this.running = undefined;
      },
      (error: unknown) => {
        this.failure ??= error;
        this.running = undefined;
      },
    );
  }

  /** Seals and writes the whole segments that are final and have bytes after them (so not the last). */
  private async pump(): Promise<void> {
    const size = this.where.segmentSize;
    while ((this.next + 1) * size < this.final && !this.done) {
      await this.seal(this.next, size, false);
      this.next += 1;
    }
  }

  private async seal(seq: number, length: number, final: boolean): Promise<void> {
    const { segmentSize, tenantId, key, path } = this.where;
    const start = seq * segmentSize;
    for (let at = 0; at < length; ) {
      const { bytesRead } = await this.file.read(this.plaintext, at, length - at, start + at);
      if (bytesRead === 0) throw new Error(`${path} is shorter than it was said to be`);
      at += bytesRead;
    }
    const sealed = encryptChunk(this.plaintext.subarray(0, length), this.dataKey, {
      runId: segmentContext(final, tenantId, key),
      seq,
    });
    await this.writer.write(
      sealed,
      ENCRYPTED_HEADER_BYTES + seq * (segmentSize + ENCRYPTED_SEGMENT_OVERHEAD_BYTES),
    );
  }

  /** The file is complete at `size` bytes: seals what is left and stores the object. */
  async finish(size: number): Promise<EncryptedPutResult> {
    if (this.done) throw new Error('the object is already finished or abandoned');
    this.done = true;
    try {
      await this.running;
      if (this.failure !== undefined) throw this.failure;
      const segmentSize = this.where.segmentSize;
      const count = size === 0 ? 1 : Math.ceil(size / segmentSize);
      // Segments 1 … next - 1 were sealed as not the last: the file must go on past them.
      if (this.next > Math.max(count - 1, 1))
        throw new Error(`${this.where.path} is shorter than it was said to be`);
      const lengthOf = (seq: number) => (seq === count - 1 ? size - seq * segmentSize : segmentSize);
      await this.seal(0, lengthOf(0), count === 1);
      for (let seq = Math.max(this.next, 1); seq < count; seq++)
        await this.seal(seq, lengthOf(seq), seq === count - 1);
      await this.writer.write(this.header, 0);
      await this.writer.commit();
      return { size, storedSize: encryptedObjectSize(size, segmentSize) };
    } catch (error) {
      await this.writer.abort();
      throw error;
    } finally {
      await this.close();
    }
  }

  /** Stores nothing (the temp object is removed); does nothing once `finish` has begun. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.running;
    await this.writer.abort();
    await this.close();
  }

  private async close(): Promise<void> {
    this.dataKey.fill(0);
    await this.file.close().catch(() => {});
  }
}
