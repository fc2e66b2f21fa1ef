/**
 * What every connector shares: one statement at a time, the deadline, cancellation (from
 * `cancel()`, an AbortSignal, the deadline or an early `break`), and the row stream handed
 * to the caller. Each engine supplies a BatchSource: it pulls rows from its driver in
 * bounded batches, can interrupt the statement on the server, and releases it (closes the
 * cursor, ends the transaction) so the connection is idle again.
 */
import { isMisError, MisError } from './errors.js';
import { isPackedBatch, type PackedBatch } from './packed.js';
import type { Column, Row, RowStream, StreamOptions } from './types.js';

/** Rows as values, or already packed (only when the stream was opened with `packed`). */
export type Batch = Row[] | PackedBatch;

/** A stream opened with `packed` may hand out packed batches, which only `packedBatches()` gives. */
function packedOnly(): TypeError {
  return new TypeError('a stream opened with `packed` is read with packedBatches()');
}

function sizeOf(batch: Batch): number {
  return isPackedBatch(batch) ? batch.rowCount : batch.length;
}

export interface BatchSource {
  /** Known once the first `next()` settled. */
  columns(): readonly Column[];
  /** The next batch (never empty, already normalised), or null at the end. */
  next(): Promise<Batch | null>;
  /** Rows received from the driver and not yet returned by `next()`. */
  buffered(): number;
  /** Asks the server to stop now; a pending `next()` must settle soon after. Idempotent. */
  interrupt(): Promise<void>;
  /** Ends the statement (cursor, transaction). `complete`: every row was read. Throws if the connection is not idle after. */
  release(complete: boolean): Promise<void>;
}

/** The connector side of a run: how to drop a connection whose clean-up failed, and how to map errors. */
export interface RunHost {
  mapError(err: unknown): MisError;
  /** Drops the connection without ceremony; the next use reconnects. */
  drop(): void;
  /** Called once the run is over and the connection is free again. */
  ended(run: StreamRun): void;
}

/** How long a clean-up (interrupt, drain, rollback) may take before the connection is dropped instead. */
export const CLEANUP_LIMIT_MS = 5000;

export const DEFAULT_BATCH_SIZE = 500;

/** Most bytes (roughly) one batch should hold; wide rows get smaller batches. */
const BATCH_BYTES = 8 * 1024 * 1024;

/** A rough size of a row in memory, from one sample row: enough to keep batches bounded in bytes. */
export function estimateRowBytes(row: Row | undefined): number {
  if (!row) return 64;
  let n = 16;
  for (const v of row) {
    if (typeof v === 'string') n += v.length + 16;
    else if (v instanceof Uint8Array) n += v.byteLength + 32;
    else n += 8;
  }
  return n;
}

/** Rows per batch for rows about as large as `sample`, at most `max`. */
export function rowsPerBatch(sample: Row | undefined, max: number): number {
  return Math.max(1, Math.min(max, Math.floor(BATCH_BYTES / estimateRowBytes(sample))));
}

type RunState = 'running' | 'cancelled' | 'timeout' | 'closed' | 'done' | 'failed';

function noop(): void {}

async function withinLimit<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('clean-up took too long')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One statement's life: start → batches → release, with cancellation from anywhere. */
export class StreamRun {
  private state: RunState = 'running';
  private source: BatchSource | null = null;
  private pending: Promise<unknown> | null = null;
  private aborting: Promise<void> | null = null;
  private releasing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbortSignal = () => void this.abort('cancelled');

  constructor(
    private readonly host: RunHost,
    private readonly options: StreamOptions,
  ) {
    const ms = options.timeoutMs;
    if (ms !== undefined && ms > 0) {
      this.timer = setTimeout(() => void this.abort('timeout'), ms);
      this.timer.unref?.();
    }
    options.signal?.addEventListener('abort', this.onAbortSignal, { once: true });
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Runs the engine's start (BEGIN, execute) and the first batch; the run can be aborted meanwhile. */
  async open(start: () => Promise<BatchSource>): Promise<{ source: BatchSource; first: Batch | null }> {
    if (this.options.signal?.aborted) this.state = 'cancelled';
    if (this.state !== 'running') {
      await this.release(false);
      throw this.stateError();
    }
    // `starting` settles only after the source is stored, so an abort waiting on it sees the source.
    const starting = (async () => {
      this.source = await start();
    })();
    this.pending = starting;
    try {
      await starting;
    } catch (err) {
      this.pending = null;
      if (this.state === 'running') this.state = 'failed';
      await (this.aborting ?? this.release(false));
      throw this.errorFor(err);
    }
    this.pending = null;
    const first = await this.next();
    return { source: this.source as BatchSource, first };
  }

  /** The next batch, or null at the end (or after `close`). Throws a MisError. */
  async next(): Promise<Batch | null> {
    if (this.state !== 'running') {
      await (this.aborting ?? this.releasing);
      if (this.state === 'closed' || this.state === 'done') return null;
      throw this.stateError();
    }
    const source = this.source as BatchSource;
    let batch: Batch | null;
    try {
      const reading = source.next();
      this.pending = reading;
      batch = await reading;
    } catch (err) {
      this.pending = null;
      if (this.state === 'running') {
        this.state = 'failed';
        await this.release(false);
      } else {
        await this.aborting;
        // Closed by the caller while a read (a read ahead) was interrupted: that is an end.
        if (this.state === 'closed') return null;
      }
      throw this.errorFor(err);
    }
    this.pending = null;
    if (this.state !== 'running') {
      // Aborted while the batch was on its way: the abort wins.
      await this.aborting;
      if (this.state === 'closed') return null;
      throw this.stateError();
    }
    if (batch === null) {
      this.state = 'done';
      await this.release(true);
    }
    return batch;
  }

  buffered(): number {
    return this.source?.buffered() ?? 0;
  }

  /** Stops the run: interrupts the server, waits for the pending read, releases. Idempotent. */
  abort(reason: 'cancelled' | 'timeout' | 'closed'): Promise<void> {
    if (this.state !== 'running') return this.aborting ?? this.releasing ?? Promise.resolve();
    this.state = reason;
    this.aborting = (async () => {
      try {
        await withinLimit(
          (async () => {
            // A start in flight may still produce a source: interrupt whatever exists, again if it changed.
            for (;;) {
              const source = this.source;
              if (source) await source.interrupt().catch(noop);
              const pending = this.pending;
              if (pending) await pending.catch(noop);
              if (this.source === source) break;
            }
          })(),
          CLEANUP_LIMIT_MS,
        );
      } catch {
        this.host.drop();
      }
      await this.release(false);
    })();
    return this.aborting;
  }

  private release(complete: boolean): Promise<void> {
    if (!this.releasing) {
      this.releasing = (async () => {
        clearTimeout(this.timer);
        this.options.signal?.removeEventListener('abort', this.onAbortSignal);
        try {
          if (this.source) await withinLimit(this.source.release(complete), CLEANUP_LIMIT_MS);
        } catch {
          // The connection is in an unknown state: drop it, the next stream reconnects.
          this.host.drop();
        } finally {
          this.host.ended(this);
        }
      })();
    }
    return this.releasing;
  }

  private stateError(): MisError {
    return this.state === 'timeout'
      ? new MisError('mis.timeout', 'the query passed its time limit and was stopped')
      : new MisError('mis.cancelled', 'the query was cancelled');
  }

  private errorFor(err: unknown): MisError {
    if (this.state === 'cancelled' || this.state === 'timeout') return this.stateError();
    return isMisError(err) ? err : this.host.mapError(err);
  }
}

export class RunRowStream implements RowStream {
  private handed = 0;
  private held: Batch | null;
  private heldFrom = 0;
  private iterated = false;

  constructor(
    private readonly run: StreamRun,
    readonly columns: readonly Column[],
    first: Batch | null,
  ) {
    this.held = first;
  }

  get rowCount(): number {
    return this.handed;
  }

  get buffered(): number {
    return (this.held ? sizeOf(this.held) - this.heldFrom : 0) + this.run.buffered();
  }

  close(): Promise<void> {
    this.held = null;
    return this.run.abort('closed');
  }

  private claim(): void {
    if (this.iterated) throw new MisError('mis.busy', 'a row stream can be iterated only once');
    this.iterated = true;
  }

  /**
   * Batch by batch, one fetch ahead: while the caller works on a batch, the next one is already
   * asked for, so the database produces it meanwhile instead of waiting for the caller (at most one
   * batch more in memory).
   */
  async *batches(): AsyncGenerator<Row[], void, undefined> {
    for await (const batch of this.packedBatches()) {
      if (isPackedBatch(batch)) throw packedOnly();
      yield batch;
    }
  }

  /** Like `batches()`, with packed batches as the engine gives them (see `StreamOptions.packed`). */
  async *packedBatches(): AsyncGenerator<Batch, void, undefined> {
    this.claim();
    let finished = false;
    let ahead: Promise<Batch | null> | null = null;
    try {
      for (;;) {
        let batch: Batch | null;
        if (this.held) {
          batch = this.held;
          if (this.heldFrom > 0 && !isPackedBatch(batch)) batch = batch.slice(this.heldFrom);
          this.held = null;
        } else {
          batch = await (ahead ?? this.run.next());
          ahead = null;
          // A batch read ahead before a cancel, time-out or close is not handed out: the run
          // answers as it would have without it (mis.cancelled, mis.timeout, or the end).
          if (batch !== null && !this.run.running) batch = await this.run.next();
        }
        if (batch === null) {
          finished = true;
          return;
        }
        if (this.run.running) {
          ahead = this.run.next();
          // Awaited on the next turn; a caller that stops first closes the run (which settles it).
          ahead.catch(noop);
        }
        this.handed += sizeOf(batch);
        yield batch;
      }
    } finally {
      if (!finished) await this.run.abort('closed');
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Row, void, undefined> {
    this.claim();
    let finished = false;
    try {
      for (;;) {
        if (!this.held) {
          const batch = await this.run.next();
          if (batch === null) {
            finished = true;
            return;
          }
          this.held = batch;
          this.heldFrom = 0;
        }
        if (isPackedBatch(this.held)) throw packedOnly();
        const rows = this.held;
        while (this.heldFrom < rows.length) {
          // Cancelled meanwhile: no more rows, even from a batch already here.
          if (!this.run.running) break;
          const row = rows[this.heldFrom++] as Row;
          this.handed++;
          yield row;
        }
        this.held = null;
      }
    } finally {
      if (!finished) await this.run.abort('closed');
    }
  }
}

/**
 * A bounded queue between an event-emitting driver (mysql2, mssql) and `next()`: past
 * `limit` rows it pauses the driver, and resumes it once the rows were taken.
 */
export class RowQueue {
  private rows: Row[] = [];
  private ended = false;
  private failure: unknown = null;
  private paused = false;
  private discarding = false;
  private wake: (() => void) | null = null;
  private limit: number;

  constructor(
    private readonly flow: { pause(): void; resume(): void },
    private readonly maxRows: number,
  ) {
    this.limit = Math.min(maxRows, 64);
  }

  get size(): number {
    return this.rows.length;
  }

  get done(): boolean {
    return this.ended;
  }

  push(row: Row): void {
    if (this.discarding) return;
    if (this.rows.length === 0) this.limit = rowsPerBatch(row, this.maxRows);
    this.rows.push(row);
    if (this.rows.length >= this.limit && !this.paused) {
      this.paused = true;
      this.flow.pause();
    }
    if (this.wake) this.signal();
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  fail(err: unknown): void {
    if (!this.ended) this.failure = err;
    this.ended = true;
    this.signal();
  }

  /** Drops every row from now on and lets the driver run to its end (after a server-side kill). */
  discard(): void {
    this.discarding = true;
    this.rows = [];
    this.resume();
  }

  async take(): Promise<Row[] | null> {
    while (this.rows.length === 0 && !this.ended) {
      this.resume();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.rows.length > 0) {
      const batch = this.rows;
      this.rows = [];
      this.resume();
      return batch;
    }
    if (this.failure) throw this.failure;
    return null;
  }

  private resume(): void {
    if (this.paused) {
      this.paused = false;
      this.flow.resume();
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
