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

/**
 * Writes `source` to `path` atomically: a temp file in the same directory (mode `mode`), every chunk
 * written, fsync, rename over `path`, fsync of the directory. On any failure the temp file is
 * removed and `path` is untouched. The directory must exist.
 */
export async function writeFileAtomic(
  path: string,
  source: AsyncIterable<Uint8Array>,
  options: WriteFileAtomicOptions = {},
): Promise<PutResult> {
  const dir = dirname(path);
  const temp = join(dir, tempName(basename(path)));
  let handle: FileHandle | undefined = await openTemp(temp, options);
  let size = 0;
  try {
    for await (const chunk of source) {
      let at = 0;
      while (at < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
        at += bytesWritten;
      }
      size += chunk.length;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
  return { size };
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
