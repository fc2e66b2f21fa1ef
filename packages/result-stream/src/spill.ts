import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '@keystage/crypto';
import type { EncodedChunk } from './encoder.js';
import { BufferFullError, ResultStreamError, ResultStreamErrorCode } from './errors.js';

export interface SpillBufferOptions {
  /** Parent directory (the agent's data directory, e.g. `<data>/spill`); created if missing. */
  rootDir: string;
  /** The run: the buffer lives in `<rootDir>/<runId>`. Letters, digits, `.`, `_`, `-` only. */
  runId: string;
  /** Most chunk bytes on disk at once; a write beyond it throws {@link BufferFullError}. */
  maxBytes: number;
}

interface SpilledMeta {
  sha256: string;
  byteLength: number;
  rowCount: number;
  plainSha256?: string;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * A bounded on-disk store of encrypted chunks for one run: one file per chunk named by its seq
 * (`000000000042.chunk`, mode 0600) in a directory of its own (mode 0700). Only ciphertext touches
 * the disk; the data key stays in memory, so the files are useless after the process ends and
 * {@link SpillBuffer.create} clears any left over from an earlier process. Byte accounting is
 * synchronous, so concurrent writes can never overshoot `maxBytes`.
 */
export class SpillBuffer {
  private readonly meta = new Map<number, SpilledMeta>();
  private readonly writing = new Map<number, Promise<void>>();
  private used = 0;
  private disposed = false;

  private constructor(
    readonly directory: string,
    readonly maxBytes: number,
  ) {}

  /** Creates (or empties) `<rootDir>/<runId>` and returns a buffer over it. */
  static async create(options: SpillBufferOptions): Promise<SpillBuffer> {
    const { rootDir, runId, maxBytes } = options;
    if (typeof rootDir !== 'string' || rootDir.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'rootDir is a non-empty path');
    }
    if (typeof runId !== 'string' || !RUN_ID.test(runId) || runId === '.' || runId === '..') {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        'runId is not a safe directory name',
      );
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        'maxBytes is a non-negative integer',
      );
    }
    const directory = join(rootDir, runId);
    await rm(directory, { recursive: true, force: true });
    await mkdir(directory, { recursive: true, mode: 0o700 });
    return new SpillBuffer(directory, maxBytes);
  }

  /** Chunk bytes currently on disk (including writes in progress). */
  get usedBytes(): number {
    return this.used;
  }

  /** Chunks currently on disk. */
  get count(): number {
    return this.meta.size;
  }

  /** True when `bytes` more would stay within `maxBytes`. */
  hasRoom(bytes: number): boolean {
    return !this.disposed && this.used + bytes <= this.maxBytes;
  }

  /** True when chunk `seq` is stored here. */
  has(seq: number): boolean {
    return this.meta.has(seq);
  }

  /** The file that holds chunk `seq`. */
  pathOf(seq: number): string {
    return join(this.directory, `${String(seq).padStart(12, '0')}.chunk`);
  }

  /** Writes a chunk to its file. Throws {@link BufferFullError} (nothing written) beyond `maxBytes`. */
  async write(chunk: EncodedChunk): Promise<void> {
    this.checkOpen();
    if (this.meta.has(chunk.seq)) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `chunk ${chunk.seq} is already spilled`,
      );
    }
    if (!this.hasRoom(chunk.byteLength)) {
      throw new BufferFullError(
        `spill buffer full: ${this.used} + ${chunk.byteLength} bytes over the cap of ${this.maxBytes}`,
      );
    }
    this.used += chunk.byteLength;
    this.meta.set(chunk.seq, {
      sha256: chunk.sha256,
      byteLength: chunk.byteLength,
      rowCount: chunk.rowCount,
      ...(chunk.plainSha256 ? { plainSha256: chunk.plainSha256 } : {}),
    });
    const written = writeFile(this.pathOf(chunk.seq), chunk.bytes, { mode: 0o600, flag: 'wx' });
    this.writing.set(chunk.seq, written);
    try {
      await written;
    } catch (err) {
      this.forget(chunk.seq);
      throw err;
    } finally {
      this.writing.delete(chunk.seq);
    }
  }

  /** Reads chunk `seq` back and checks it against the sha256 it was written with. */
  async read(seq: number): Promise<EncodedChunk> {
    this.checkOpen();
    const meta = this.meta.get(seq);
    if (!meta)
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, `chunk ${seq} is not spilled`);
    const bytes = await readFile(this.pathOf(seq));
    if (bytes.length !== meta.byteLength || sha256Hex(bytes) !== meta.sha256) {
      throw new ResultStreamError(ResultStreamErrorCode.SpillCorrupt, `spilled chunk ${seq} changed on disk`);
    }
    return {
      seq,
      bytes,
      sha256: meta.sha256,
      byteLength: meta.byteLength,
      rowCount: meta.rowCount,
      ...(meta.plainSha256 ? { plainSha256: meta.plainSha256 } : {}),
    };
  }

  /** Deletes chunk `seq` (its bytes stop counting at once); a missing file is not an error. */
  async remove(seq: number): Promise<void> {
    const written = this.writing.get(seq);
    if (!this.forget(seq) || this.disposed) return;
    // A write still in progress would recreate the file after the unlink: let it finish first.
    if (written) await written.catch(() => undefined);
    await unlink(this.pathOf(seq)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Deletes the whole directory. The buffer is unusable afterwards; calling again is harmless. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.meta.clear();
    this.used = 0;
    await Promise.allSettled(this.writing.values());
    await rm(this.directory, { recursive: true, force: true });
  }

  private forget(seq: number): boolean {
    const meta = this.meta.get(seq);
    if (!meta) return false;
    this.meta.delete(seq);
    this.used -= meta.byteLength;
    return true;
  }

  private checkOpen(): void {
    if (this.disposed) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidState, 'the spill buffer is disposed');
    }
  }
}
