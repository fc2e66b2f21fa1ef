import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ObjectBody, PutResult } from './object-store.js';

/**
 * Normalizes any {@link ObjectBody} to an async iterable of Buffers. Buffers pass through as one
 * chunk (no copy); `Readable`s in string mode are encoded as UTF-8; anything else is refused.
 */
export async function* bodyChunks(body: ObjectBody): AsyncGenerator<Buffer, void, undefined> {
  if (body instanceof Uint8Array) {
    yield asBuffer(body);
    return;
  }
  if (body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) {
    throw new TypeError('an object body is a Buffer, a Uint8Array, an async iterable of them or a Readable');
  }
  for await (const chunk of body as AsyncIterable<unknown>) {
    if (chunk instanceof Uint8Array) yield asBuffer(chunk);
    else if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else throw new TypeError('an object body stream yields Buffers or Uint8Arrays');
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A FIFO of byte chunks that hands out exactly `n` bytes at a time, copying only when a piece spans
 * several input chunks. Used to cut streams into fixed-size segments and parts.
 */
export class ByteQueue {
  private chunks: (Buffer | undefined)[] = [];
  private head = 0;
  /** Bytes queued. */
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns the first `n` bytes (`n` ≤ `length`). */
  take(n: number): Buffer {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.length) {
      throw new RangeError('ByteQueue.take beyond its length');
    }
    const first = this.chunks[this.head];
    if (n === 0 || first === undefined) return Buffer.alloc(0);
    this.length -= n;
    if (first.length >= n) {
      // The common case: served from one chunk, without copying.
      this.consume(first, n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[this.head]!;
      const used = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, used);
      at += used;
      this.consume(chunk, used);
    }
    return out;
  }

  /** Removes and returns everything. */
  takeAll(): Buffer {
    return this.take(this.length);
  }

  private consume(chunk: Buffer, used: number): void {
    if (used < chunk.length) {
      this.chunks[this.head] = chunk.subarray(used);
      return;
    }
    this.chunks[this.head] = undefined;
    this.head += 1;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      // Compact once the consumed half dominates: amortized O(1) per chunk.
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

/** A name no valid key segment can have (`~` is outside the key charset): never listed as an object. */
export function tempName(base: string): string {
  return `~tmp-${randomBytes(8).toString('hex')}-${base}`.slice(0, 255);
}

export interface WriteFileAtomicOptions {
  /** File mode of the new file; 0600 by default. */
  mode?: number;
  /**
   * Called when the directory turns out not to exist (e.g. a concurrent delete pruned it), before
   * the temp file is opened again; up to three times.
   */
  ensureDirectory?: () => Promise<void>;
}

async function openTemp(temp: string, options: WriteFileAtomicOptions): Promise<FileHandle> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(temp, 'wx', options.mode ?? 0o600);
    } catch (error) {
      if (!options.ensureDirectory || attempt >= 3 || !isErrno(error, 'ENOENT')) throw error;
      await options.ensureDirectory();
    }
  }
}

/** Bytes gathered into one write: a write per small chunk costs a thread-pool round trip each. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Bytes written after which a flush to disk starts in the background (see {@link writeFileAtomic}). */
const FLUSH_BEHIND_BYTES = 16 * 1024 * 1024;

/**
 * Writes `source` to `path` atomically: a temp file in the same directory (mode `mode`), every chunk
 * written, fsync, rename over `path`, fsync of the directory. On any failure the temp file is
 * removed and `path` is untouched. The directory must exist.
 *
 * Chunks are copied into 1 MiB batches, and a batch is written while the next one is gathered, so
 * producing the data and writing it overlap. Every 16 MiB a flush (fdatasync) starts in the
 * background, so the disk writes while the data is still being produced and the final fsync of a
 * large file has little left to wait for.
 */
export async function writeFileAtomic(
  path: string,
  source: AsyncIterable<Uint8Array>,
  options: WriteFileAtomicOptions = {},
): Promise<PutResult> {
  const dir = dirname(path);
  const temp = join(dir, tempName(basename(path)));
  let handle: FileHandle | undefined = await openTemp(temp, options);
  const file = handle;
  let size = 0;
  /** The write in flight (with a handler, so that its rejection waits for its await). */
  let writing: Promise<unknown> = Promise.resolve();
  /** The background flush, and the first error of one (fsync reports a write-back error once). */
  let flushing: Promise<void> | undefined;
  let flushFailure: unknown;
  let unflushed = 0;
  // Two batch buffers (made when needed): one is gathered while the other is written.
  let batch: Buffer | undefined;
  let spare: Buffer | undefined;
  let used = 0;
  const writeBatch = async () => {
    await writing;
    const full = batch!;
    const length = used;
    writing = writeAll(file, full, length);
    writing.catch(() => {});
    batch = spare;
    spare = full;
    used = 0;
    unflushed += length;
    if (unflushed >= FLUSH_BEHIND_BYTES && flushing === undefined) {
      unflushed = 0;
      // Flushes what is written by now (not waiting for the write just started).
      const flush: Promise<void> = file.datasync().then(
        () => {
          if (flushing === flush) flushing = undefined;
        },
        (error: unknown) => {
          flushFailure ??= error;
          if (flushing === flush) flushing = undefined;
        },
      );
      flushing = flush;
    }
  };
  try {
    for await (const chunk of source) {
      let at = 0;
      while (at < chunk.length) {
        batch ??= Buffer.allocUnsafe(WRITE_BATCH_BYTES);
        const n = Math.min(chunk.length - at, batch.length - used);
        batch.set(chunk.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === batch.length) await writeBatch();
      }
      size += chunk.length;
    }
    if (used > 0) await writeBatch();
    await writing;
    await flushing;
    if (flushFailure !== undefined) throw flushFailure;
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await Promise.allSettled([writing, flushing]);
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
  return { size };
}

async function writeAll(handle: FileHandle, buf: Buffer, length: number): Promise<void> {
  let at = 0;
  while (at < length) {
    const { bytesWritten } = await handle.write(buf, at, length - at);
    at += bytesWritten;
  }
}

/** Makes a rename or unlink in `dir` durable. Best effort where directories cannot be fsynced. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!isErrno(error, 'EISDIR', 'EPERM', 'EINVAL', 'EBADF')) throw error;
  } finally {
    await handle?.close().catch(() => {});
  }
}

export function isErrno(error: unknown, ...codes: string[]): boolean {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    codes.includes((error as NodeJS.ErrnoException).code!)
  );
}

/**
 * A file written at positions in any order — a temp file in the directory of `path` — that appears
 * at `path` only once `commit()` has flushed it (fsync, rename, fsync of the directory), the way
 * {@link writeFileAtomic} writes. `abort()` removes it. Every 16 MiB written a flush starts in the
 * background, so that committing a large file has little left to wait for.
 */
export class PositionalFile {
  private readonly writes = new Set<Promise<unknown>>();
  private failure: unknown;
  private flushing: Promise<void> | undefined;
  private unflushed = 0;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly temp: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string, options: WriteFileAtomicOptions = {}): Promise<PositionalFile> {
    const temp = join(dirname(path), tempName(basename(path)));
    return new PositionalFile(path, temp, await openTemp(temp, options));
  }

  /** Writes `buf` at `position` (resolves once written; a failure also fails the commit). */
  write(buf: Buffer, position: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the file is already committed or aborted'));
    const writing = (async () => {
      for (let at = 0; at < buf.length; ) {
        const { bytesWritten } = await this.handle.write(buf, at, buf.length - at, position + at);
        at += bytesWritten;
      }
    })();
    this.writes.add(writing);
    writing.then(
      () => this.writes.delete(writing),
      (error: unknown) => {
        this.failure ??= error;
        this.writes.delete(writing);
      },
    );
    this.unflushed += buf.length;
    if (this.unflushed >= FLUSH_BEHIND_BYTES && this.flushing === undefined) {
      this.unflushed = 0;
      const flush: Promise<void> = this.handle.datasync().then(
        () => {
          if (this.flushing === flush) this.flushing = undefined;
        },
        (error: unknown) => {
          this.failure ??= error;
          if (this.flushing === flush) this.flushing = undefined;
        },
      );
      this.flushing = flush;
    }
    return writing;
  }

  /** Waits for every write, flushes, and puts the file at its path. */
  async commit(): Promise<void> {
    try {
      await Promise.allSettled([...this.writes, this.flushing]);
      if (this.failure !== undefined) throw this.failure;
      this.closed = true;
      await this.handle.sync();
      await this.handle.close();
      await rename(this.temp, this.path);
    } catch (error) {
      await this.abort();
      throw error;
    }
    await syncDirectory(dirname(this.path));
  }

  /** Removes the temp file (after the writes under way). Idempotent. */
  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.writes, this.flushing]);
    await this.handle.close().catch(() => {});
    await unlink(this.temp).catch(() => {});
  }
}
