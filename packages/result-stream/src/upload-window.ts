import type { EncodedChunk } from './encoder.js';
import { BufferFullError, ResultStreamError, ResultStreamErrorCode } from './errors.js';
import { MAX_CHUNK_BYTES } from './format.js';
import type { SpillBuffer } from './spill.js';

/** Chunks kept in memory by default before spilling (16 × ≤ 512 KiB = ≤ 8 MiB). */
export const DEFAULT_MEMORY_CHUNKS = 16;

export interface UploadWindowOptions {
  /** The run, echoed in the `run.resume` body and checked against acks that carry one. */
  runId: string;
  /** Most chunks held in memory (sent or not, until acknowledged). Default 16. */
  maxMemoryChunks?: number;
  /**
   * Where chunks go once memory holds `maxMemoryChunks`. Without it the window holds at most
   * `maxMemoryChunks` chunks and the producer waits in {@link UploadWindow.room} beyond that.
   * The window owns it: {@link UploadWindow.dispose} disposes it.
   */
  spill?: SpillBuffer;
}

/** The fields of a `chunk.ack` the window needs. */
export interface AckLike {
  runId?: string;
  nextSeq: number;
  credits: number;
}

export interface RoomOptions {
  /** Size of the chunk about to be added; defaults to MAX_CHUNK_BYTES (the worst case). */
  bytes?: number;
  /** Give up after this long with {@link BufferFullError} (the cloud is gone for too long). */
  timeoutMs?: number;
  /** Give up when aborted (the run is cancelled), rejecting with the signal's reason. */
  signal?: AbortSignal;
}

interface Entry {
  seq: number;
  sha256: string;
  byteLength: number;
  rowCount: number;
  plainSha256?: string;
  /** The chunk, or null when it is in the spill buffer. */
  bytes: Buffer | null;
}

interface Waiter {
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Agent side: the credit-based send window of one run's upload, holding every produced chunk until
 * the cloud acknowledges it.
 *
 * - **Credits.** Nothing may be sent before the first `chunk.ack`. After an ack `{nextSeq, credits}`
 *   chunks with seq < nextSeq + credits may be sent; {@link sendable} hands out those not yet sent
 *   on this connection. Acks carry absolute values: a lost ack is covered by the next one, a
 *   repeated one changes nothing, and the window of the latest ack applies.
 * - **Release.** An ack releases every chunk below `nextSeq` (memory freed, spill file deleted).
 * - **Reconnect.** {@link resetForReconnect} marks every unacknowledged chunk unsent and closes the
 *   window until the cloud's answer to `run.resume` arrives; sending resumes from its `nextSeq`.
 * - **Memory and disk.** At most `maxMemoryChunks` chunks are held in memory; further chunks go to
 *   the spill buffer (bounded by its `maxBytes`). When both are full the producer waits in
 *   {@link room} until an ack frees space; {@link add} without room throws {@link BufferFullError}.
 */
export class UploadWindow {
  readonly runId: string;
  readonly maxMemoryChunks: number;
  private readonly spill: SpillBuffer | undefined;
  private readonly entries = new Map<number, Entry>();
  private readonly waiters = new Set<Waiter>();
  private readonly removals = new Set<Promise<void>>();
  private sendQueue: Promise<unknown> = Promise.resolve();
  private produced = 0;
  private acked = 0;
  private firstUnsent = 0;
  private end = 0;
  private inMemory = 0;
  private epoch = 0;
  private awaitingResume = false;
  private adding = false;
  private disposed = false;

  constructor(options: UploadWindowOptions) {
    const { runId } = options;
    if (typeof runId !== 'string' || runId.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'runId is a non-empty string');
    }
    const max = options.maxMemoryChunks ?? DEFAULT_MEMORY_CHUNKS;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'maxMemoryChunks is at least 1');
    }
    this.runId = runId;
    this.maxMemoryChunks = max;
    this.spill = options.spill;
  }

  /** First seq not acknowledged: every chunk below it is stored by the cloud and released here. */
  get ackedSeq(): number {
    return this.acked;
  }

  /** Chunks added so far (= the seq the next added chunk must have). */
  get producedCount(): number {
    return this.produced;
  }

  /** Chunks held (in memory or spilled), i.e. produced and not acknowledged. */
  get bufferedCount(): number {
    return this.entries.size;
  }

  /** Chunks held in memory. */
  get inMemoryCount(): number {
    return this.inMemory;
  }

  /** Chunks held in the spill buffer. */
  get spilledCount(): number {
    return this.entries.size - this.inMemory;
  }

  /** Chunks that may not be sent yet or have not been: produced minus sent minus acked. */
  get unsentCount(): number {
    return this.produced - Math.max(this.firstUnsent, this.acked);
  }

  /** Exclusive end of the send window: seq < windowEnd may be sent (0 before the first ack). */
  get windowEnd(): number {
    return this.end;
  }

  /** True when every produced chunk is acknowledged. */
  get allAcked(): boolean {
    return this.acked === this.produced;
  }

  /** True when a chunk of `bytes` could be added now without waiting. */
  hasRoom(bytes: number = MAX_CHUNK_BYTES): boolean {
    if (this.disposed) return false;
    return this.inMemory < this.maxMemoryChunks || (this.spill?.hasRoom(bytes) ?? false);
  }

  /**
   * Resolves when a chunk of `bytes` (default: the largest possible) can be added: memory has room,
   * or the spill buffer does. Otherwise waits for an ack to free space, however long the cloud takes
   * (backpressure), unless `timeoutMs` passes (→ {@link BufferFullError}) or `signal` aborts.
   */
  room(options: RoomOptions = {}): Promise<void> {
    const bytes = options.bytes ?? MAX_CHUNK_BYTES;
    if (this.disposed) return Promise.reject(disposedError());
    if (this.hasRoom(bytes)) return Promise.resolve();
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        this.waiters.delete(waiter);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        bytes,
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = () => waiter.reject(signal?.reason);
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => waiter.reject(new BufferFullError(`upload buffer still full after ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
    });
  }

  /**
   * Takes the next chunk (seq must be {@link producedCount}). Kept in memory while fewer than
   * `maxMemoryChunks` are, else written to the spill buffer. Throws {@link BufferFullError} when
   * neither has room (await {@link room} first) or the spill write fails (disk full, I/O error).
   * Adds must not overlap: await each one.
   */
  async add(chunk: EncodedChunk): Promise<void> {
    this.checkOpen();
    if (this.adding) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidState, 'a previous add is still in progress');
    }
    if (chunk.seq !== this.produced) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `chunk ${chunk.seq} added while chunk ${this.produced} is next`,
      );
    }
    if (
      !Buffer.isBuffer(chunk.bytes) ||
      chunk.bytes.length !== chunk.byteLength ||
      chunk.byteLength < 1 ||
      chunk.byteLength > MAX_CHUNK_BYTES
    ) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        'chunk bytes do not match byteLength',
      );
    }
    const entry: Entry = {
      seq: chunk.seq,
      sha256: chunk.sha256,
      byteLength: chunk.byteLength,
      rowCount: chunk.rowCount,
      ...(chunk.plainSha256 ? { plainSha256: chunk.plainSha256 } : {}),
      bytes: chunk.bytes,
    };
    if (this.inMemory < this.maxMemoryChunks) {
      this.entries.set(entry.seq, entry);
      this.inMemory++;
      this.produced++;
      return;
    }
    if (!this.spill?.hasRoom(chunk.byteLength)) {
      throw new BufferFullError(
        this.spill
          ? `upload buffer full: ${this.inMemory} chunks in memory, spill at ${this.spill.usedBytes} of ${this.spill.maxBytes} bytes`
          : `upload buffer full: ${this.inMemory} chunks in memory and no spill directory`,
      );
    }
    this.adding = true;
    try {
      await this.spill.write(chunk);
    } catch (err) {
      if (err instanceof ResultStreamError) throw err;
      throw new BufferFullError('could not write the chunk to the spill directory', { cause: err });
    } finally {
      this.adding = false;
    }
    if (this.disposed) return;
    entry.bytes = null;
    this.entries.set(entry.seq, entry);
    this.produced++;
  }

  /**
   * Applies a `chunk.ack`: releases every chunk below `nextSeq` and sets the window to
   * `nextSeq + credits`. Throws `upload.invalid_ack` if it acknowledges chunks never produced, and
   * `upload.resume_behind` if the first ack after {@link resetForReconnect} is below chunks already
   * released (the cloud lost data the agent no longer has: fail the run).
   */
  onAck(ack: AckLike): void {
    this.checkOpen();
    const { runId, nextSeq, credits } = ack;
    if (runId !== undefined && runId !== this.runId) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'ack for another run');
    }
    if (!Number.isSafeInteger(nextSeq) || nextSeq < 0 || !Number.isSafeInteger(credits) || credits < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidAck, 'nextSeq and credits are non-negative');
    }
    if (nextSeq > this.produced) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidAck,
        `ack of chunk ${nextSeq - 1}, only ${this.produced} produced`,
      );
    }
    if (this.awaitingResume) {
      this.awaitingResume = false;
      if (nextSeq < this.acked) {
        throw new ResultStreamError(
          ResultStreamErrorCode.ResumeBehind,
          `the cloud resumes at ${nextSeq} but chunks below ${this.acked} were released`,
        );
      }
    }
    for (let seq = this.acked; seq < nextSeq; seq++) this.release(seq);
    if (nextSeq > this.acked) this.acked = nextSeq;
    this.end = nextSeq + credits;
    if (this.firstUnsent < this.acked) this.firstUnsent = this.acked;
    this.wake();
  }

  /**
   * Returns (and marks as sent on this connection) the next chunks inside the window, in seq order,
   * at most `limit` of them (default `maxMemoryChunks`, so reading spilled chunks back never holds
   * more than that in memory). Call again until it returns an empty array; call again after each
   * ack. Spilled chunks are read back from disk and checked against their sha256. If the connection
   * is reset while reading, returns an empty array. Overlapping calls are served in call order, so
   * sending each result as soon as it resolves keeps the chunks in seq order.
   */
  sendable(limit: number = this.maxMemoryChunks): Promise<EncodedChunk[]> {
    // Serve overlapping calls one after another, so their results resolve in seq order even when
    // an earlier call reads from disk and a later one only from memory.
    const result = this.sendQueue.then(() => this.takeSendable(limit));
    this.sendQueue = result.catch(() => undefined);
    return result;
  }

  private async takeSendable(limit: number): Promise<EncodedChunk[]> {
    this.checkOpen();
    const from = Math.max(this.firstUnsent, this.acked);
    const to = Math.min(this.end, this.produced, from + Math.max(0, limit));
    if (to <= from) return [];
    this.firstUnsent = to;
    const epoch = this.epoch;
    const out: EncodedChunk[] = [];
    for (let seq = from; seq < to; seq++) {
      const entry = this.entries.get(seq);
      if (!entry) continue; // acknowledged meanwhile
      if (entry.bytes) {
        out.push({
          seq,
          bytes: entry.bytes,
          sha256: entry.sha256,
          byteLength: entry.byteLength,
          rowCount: entry.rowCount,
          ...(entry.plainSha256 ? { plainSha256: entry.plainSha256 } : {}),
        });
        continue;
      }
      try {
        out.push(await (this.spill as SpillBuffer).read(seq));
      } catch (err) {
        if (this.disposed || seq < this.acked) continue;
        throw err;
      }
      if (this.epoch !== epoch || this.disposed) return [];
    }
    if (this.epoch !== epoch || this.disposed) return [];
    return out.filter((chunk) => chunk.seq >= this.acked);
  }

  /**
   * After the connection dropped: every unacknowledged chunk becomes unsent, and nothing is sendable
   * until the next ack. Send the returned `run.resume` body, then feed the cloud's `chunk.ack` to
   * {@link onAck} and send {@link sendable} chunks again from its `nextSeq`.
   */
  resetForReconnect(): { runId: string; nextSeq: number } {
    this.checkOpen();
    this.epoch++;
    this.firstUnsent = this.acked;
    this.end = this.acked;
    this.awaitingResume = true;
    return { runId: this.runId, nextSeq: this.acked };
  }

  /**
   * Drops every chunk, rejects pending {@link room} waits and deletes the spill directory. Call when
   * the run is over (after `run.ack`) or failed.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const waiter of [...this.waiters]) waiter.reject(disposedError());
    this.entries.clear();
    this.inMemory = 0;
    await Promise.allSettled(this.removals);
    await this.spill?.dispose();
  }

  private release(seq: number): void {
    const entry = this.entries.get(seq);
    if (!entry) return;
    this.entries.delete(seq);
    if (entry.bytes) {
      this.inMemory--;
      entry.bytes = null;
      return;
    }
    const removal = (this.spill as SpillBuffer).remove(seq).catch(() => undefined);
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal));
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) {
      if (this.hasRoom(waiter.bytes)) waiter.resolve();
    }
  }

  private checkOpen(): void {
    if (this.disposed) throw disposedError();
  }
}

function disposedError(): ResultStreamError {
  return new ResultStreamError(ResultStreamErrorCode.InvalidState, 'the upload window is disposed');
}
