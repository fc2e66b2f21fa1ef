import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fillDigests } from './digests.js';
import {
  cellsRecordBound,
  compareBytes,
  decodeRow,
  encodeCellsRecord,
  encodeRecord,
  KEY_OFFSET,
  keyLength,
  type Row,
  type RowCells,
  recordBound,
  recordLength,
} from './encoding.js';
import { DeltaError, DeltaErrorCode, DuplicateKeyError } from './errors.js';
import { type SnapshotMeta, SnapshotReader, SnapshotWriter } from './format.js';
import { sortByKey } from './sort.js';

/** Default memory budget of a {@link SnapshotBuilder}: 64 MiB. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;
/** Smallest accepted memory budget (smaller values are raised to it). */
export const MIN_MEMORY_BUDGET_BYTES = 16 * 1024;
/** Index bytes per buffered record: key start, key length, sort order, sort digit (4 bytes each). */
const INDEX_BYTES_PER_RECORD = 16;
/** Read buffer of one sorted run during the merge. */
const RUN_READ_BYTES = 128 * 1024;

export interface SnapshotBuilderOptions {
  /** Column names, in the order of the values in each row. Unique, non-empty. */
  readonly columns: readonly string[];
  /** The key columns (names from `columns`), in key order. At least one. */
  readonly keyColumns: readonly string[];
  /** Directory for sorted runs spilled during an external sort, and for the snapshot by default. */
  readonly tempDir: string;
  /**
   * Bytes of rows the builder holds in memory when it has to sort (encoded records + 16 bytes of
   * index each). Input that arrives sorted by key uses one 128 KiB block buffer instead. Default
   * {@link DEFAULT_MEMORY_BUDGET_BYTES}.
   */
  readonly memoryBudgetBytes?: number;
  /**
   * Where the finished snapshot goes (written as `<path>.partial-…`, then renamed). Must not exist:
   * a builder never replaces a file, such as the previous snapshot. Default:
   * `<tempDir>/snapshot-<uuid>.ksnap`.
   */
  readonly path?: string;
}

export interface FinishedSnapshot {
  readonly path: string;
  readonly rowCount: number;
  /** File size in bytes. */
  readonly bytes: number;
  /** True when every row arrived in key order (streamed straight to the file, no sort). */
  readonly sortedInput: boolean;
  /** Sorted runs written to `tempDir` by the external sort (0 when the rows fitted the budget). */
  readonly spilledRuns: number;
}

type State = 'open' | 'finishing' | 'finished' | 'failed';

/** A sorted sequence of records being merged: a run file or the in-memory buffer. */
interface RecordCursor {
  buf: Buffer;
  recStart: number;
  keyStart: number;
  keyEnd: number;
  recEnd: number;
  next(): boolean;
  advance(): Promise<boolean>;
}

/**
 * Records of a sorted buffer are scattered over the arena: reading them in key order is a cache miss
 * each. Looking up GATHER records ahead, before copying any, lets the CPU overlap those misses
 * (about twice as fast as one record at a time).
 */
const GATHER = 32;

class MemoryCursor implements RecordCursor {
  recStart = 0;
  keyStart = 0;
  keyEnd = 0;
  recEnd = 0;
  /** Sum of first bytes of the gathered records (keeps the loads). */
  touched = 0;
  private i = 0;
  private readonly starts = new Int32Array(GATHER);
  private batchPos = 0;
  private batchEnd = 0;

  constructor(
    readonly buf: Buffer,
    private readonly keyStarts: Int32Array,
    private readonly idx: Int32Array,
    private readonly n: number,
  ) {}

  next(): boolean {
    if (this.batchPos === this.batchEnd) {
      if (this.i >= this.n) return false;
      const m = Math.min(GATHER, this.n - this.i);
      for (let k = 0; k < m; k++) {
        const s = this.keyStarts[this.idx[this.i + k]!]! - KEY_OFFSET;
        this.starts[k] = s;
        this.touched += this.buf[s]!;
      }
      this.i += m;
      this.batchPos = 0;
      this.batchEnd = m;
    }
    const recStart = this.starts[this.batchPos++]!;
    this.recStart = recStart;
    this.keyStart = recStart + KEY_OFFSET;
    this.keyEnd = this.keyStart + keyLength(this.buf, recStart);
    this.recEnd = recStart + recordLength(this.buf, recStart);
    return true;
  }

  advance(): Promise<boolean> {
    return Promise.resolve(this.next());
  }
}

/**
 * Builds one snapshot file from the rows of a run, in any order, in bounded memory.
 *
 * Rows that arrive in key order (the usual case) are encoded and streamed straight into the snapshot
 * file, their digests computed on a worker thread while the next blocks are encoded. The first row
 * out of order turns what was written so far into the first sorted run; from then on rows are
 * buffered up to `memoryBudgetBytes`, sorted (multikey quicksort on the key bytes) and spilled to
 * `tempDir` as further runs, and `finish()` k-way merges the runs (several passes if there are too
 * many for the budget). Either way the file has the same bytes.
 *
 * `add()` is synchronous (file writes included). An invalid row throws `delta.invalid_row` and is
 * not added; the builder stays usable. A duplicate key throws {@link DuplicateKeyError} — from `add()`
 * while the input is in order, otherwise from `finish()` — and the builder is then unusable, its files
 * removed. Not safe for concurrent use.
 */
export class SnapshotBuilder {
  readonly path: string;
  private readonly columns: readonly string[];
  private readonly keyColumns: readonly string[];
  private readonly meta: SnapshotMeta;
  private readonly keyIndexes: Int32Array;
  private readonly keyMask: Uint8Array;
  private readonly budget: number;
  private readonly tempDir: string;
  private state: State = 'open';
  private failure: unknown;
  private rows = 0;

  // The row being added: `row`, or row `cellRow` of `cells` (while addCells runs).
  private row: Row = [];
  private cells: RowCells | undefined;
  private cellRow = 0;
  private select = new Int32Array(0);

  // Streaming (sorted input so far)
  private streaming = true;
  private out: SnapshotWriter | undefined;
  /** Key of the last record written, in the writer's block (the record before the next one). */
  private prevKeyStart = 0;
  private prevKeyLength = -1;

  // External sort
  private arena: Buffer | undefined;
  private arenaPos = 0;
  private keyStarts = new Int32Array(0);
  private count = 0;
  private runs: string[] = [];
  private runDir: string | undefined;
  private spilled = 0;
  /** Every file this builder created and has not handed over, for cleanup. */
  private readonly files = new Set<string>();

  constructor(options: SnapshotBuilderOptions) {
    const { columns, keyColumns, tempDir } = options;
    const invalid = (message: string) => new DeltaError(DeltaErrorCode.InvalidInput, message);
    if (
      !Array.isArray(columns) ||
      columns.length === 0 ||
      !columns.every((c) => typeof c === 'string' && c !== '')
    ) {
      throw invalid('columns must be a non-empty array of non-empty names');
    }
    if (new Set(columns).size !== columns.length) throw invalid('column names must be unique');
    if (!Array.isArray(keyColumns) || keyColumns.length === 0)
      throw invalid('at least one key column is needed');
    if (new Set(keyColumns).size !== keyColumns.length) throw invalid('key columns must be unique');
    const keyIndexes = keyColumns.map((k) => {
      const i = columns.indexOf(k);
      if (i < 0) throw invalid(`key column ${JSON.stringify(k)} is not a column`);
      return i;
    });
    if (typeof tempDir !== 'string' || tempDir === '') throw invalid('tempDir is required');
    const budget = options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
    if (!Number.isFinite(budget) || budget <= 0) throw invalid('memoryBudgetBytes must be a positive number');
    this.columns = [...columns];
    this.keyColumns = [...keyColumns];
    this.meta = { columns: this.columns, keyColumns: this.keyColumns };
    this.keyIndexes = Int32Array.from(keyIndexes);
    this.keyMask = new Uint8Array(columns.length);
    for (const i of keyIndexes) this.keyMask[i] = 1;
    this.budget = Math.min(Math.max(Math.floor(budget), MIN_MEMORY_BUDGET_BYTES), 1024 * 1024 * 1024);
    this.tempDir = tempDir;
    this.path = options.path ?? join(tempDir, `snapshot-${randomUUID()}.ksnap`);
    if (existsSync(this.path)) throw invalid(`${this.path} already exists`);
  }

  /**
   * While every row so far came in key order (the snapshot is written as it comes): the file being
   * written and how many of its bytes are — final but for the header's few, which `finish()`
   * rewrites. Undefined before the first block is written and once the input left key order. The
   * file is renamed to {@link path} when finished; an open handle on it stays valid.
   */
  get streamingOutput(): { path: string; bytes: number } | undefined {
    return this.streaming && this.state === 'open' && this.out
      ? { path: this.out.path, bytes: this.out.writtenBytes }
      : undefined;
  }

  /** Rows added so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Adds one row (values in column order). See the class comment for errors. */
  add(row: Row): void {
    if (this.state !== 'open') throw this.stateError();
    this.row = row;
    this.addInput();
  }

  /** Adds rows in order; stops at the first error (the rows before it are added). */
  addBatch(rows: Iterable<Row>): void {
    for (const row of rows) this.add(row);
  }

  /**
   * Adds the rows of `cells` in order, as {@link add} would add the rows of their values (the same
   * bytes, the same errors, rows before an error added), without a value per cell. Column i of the
   * snapshot is cell column `select[i]`; a negative entry numbers the rows instead: the row's value
   * there is {@link rowCount} when it is added.
   */
  addCells(cells: RowCells, select: readonly number[]): void {
    if (this.state !== 'open') throw this.stateError();
    if (select.length !== this.columns.length || select.some((c) => !(c < cells.columnCount))) {
      throw new DeltaError(
        DeltaErrorCode.InvalidInput,
        'select needs a cell column (or -1) for every column',
      );
    }
    this.cells = cells;
    this.select = Int32Array.from(select);
    try {
      for (let r = 0; r < cells.rowCount; r++) {
        this.cellRow = r;
        this.addInput();
      }
    } finally {
      this.cells = undefined;
    }
  }

  /** Adds the current input: `row`, or row `cellRow` of `cells`. */
  private addInput(): void {
    try {
      if (this.streaming) this.addStreaming();
      else this.addSorting();
    } catch (error) {
      if (error instanceof DeltaError && error.code === DeltaErrorCode.InvalidRow) throw error;
      this.fail(error);
      throw error;
    }
    this.rows++;
  }

  /**
   * Encodes the current input at out[o]; -1 when it might not fit before `limit`. Without `digest`
   * the row digest is left for the snapshot writer (`SnapshotWriterOptions.deferDigests`).
   */
  private encodeInput(out: Buffer, o: number, limit: number, digest: boolean): number {
    return this.cells === undefined
      ? encodeRecord(out, o, limit, this.row, this.columns, this.keyIndexes, digest)
      : encodeCellsRecord(
          out,
          o,
          limit,
          this.cells,
          this.cellRow,
          this.select,
          this.rows,
          this.columns,
          this.keyIndexes,
          digest,
        );
  }

  /** {@link recordBound} of the current input. */
  private inputBound(): number {
    return this.cells === undefined
      ? recordBound(this.row, this.columns, this.keyMask)
      : cellsRecordBound(this.cells, this.cellRow, this.select, this.keyMask);
  }

  private addStreaming(): void {
    const out = this.out ?? this.openOutput();
    let o = out.offset;
    let buf = out.block;
    let end = this.encodeInput(buf, o, buf.length, false);
    if (end < 0) {
      o = out.reserve(this.inputBound());
      buf = out.block;
      end = this.encodeInput(buf, o, buf.length, false);
    }
    const keyStart = o + KEY_OFFSET;
    const keyEnd = keyStart + keyLength(buf, o);
    if (this.prevKeyLength >= 0) {
      // The previous record is still in the block, just before this one.
      const prevStart = this.prevKeyStart;
      const c = compareBytes(buf, keyStart, keyEnd, buf, prevStart, prevStart + this.prevKeyLength);
      if (c <= 0) {
        if (c === 0) throw this.duplicate(buf, o, end);
        this.startSorting(buf, o, end);
        return;
      }
    }
    const start = out.commit(o, end);
    this.prevKeyStart = start + KEY_OFFSET;
    this.prevKeyLength = keyEnd - keyStart;
  }

  private duplicate(buf: Buffer, recStart: number, recEnd: number): DuplicateKeyError {
    const keyEnd = recStart + KEY_OFFSET + keyLength(buf, recStart);
    const row = decodeRow(buf, keyEnd, recEnd, this.columns.length);
    return new DuplicateKeyError(
      this.keyColumns,
      Array.from(this.keyIndexes, (i) => row[i] ?? null),
    );
  }

  private openOutput(): SnapshotWriter {
    const path = `${this.path}.partial-${randomUUID().slice(0, 8)}`;
    this.files.add(path);
    // Records are streamed without their digests: the writer computes them, off this thread.
    this.out = new SnapshotWriter(path, this.meta, { deferDigests: true });
    return this.out;
  }

  /** The input left key order: what was streamed becomes the first sorted run. */
  private startSorting(buf: Buffer, recStart: number, recEnd: number): void {
    const length = recEnd - recStart;
    this.arena = Buffer.allocUnsafe(Math.max(this.budget, length));
    buf.copy(this.arena, 0, recStart, recEnd);
    fillDigests(this.arena, 0, length);
    this.streaming = false;
    const out = this.out!;
    this.out = undefined;
    out.finish();
    this.runs.push(out.path);
    this.growIndex(1024);
    this.keyStarts[0] = KEY_OFFSET;
    this.count = 1;
    this.arenaPos = length;
  }

  private growIndex(capacity: number): void {
    const bigger = new Int32Array(capacity);
    bigger.set(this.keyStarts.subarray(0, this.count));
    this.keyStarts = bigger;
  }

  private addSorting(): void {
    if (this.count === this.keyStarts.length) this.growIndex(Math.max(1024, 2 * this.count));
    let end = this.encodeBuffered();
    if (end < 0 && this.count > 0) {
      this.spill();
      end = this.encodeBuffered();
    }
    if (end < 0) {
      // One record larger than the whole budget: it gets a buffer of its own.
      this.arena = Buffer.allocUnsafe(this.inputBound());
      end = this.encodeBuffered();
    }
    this.keyStarts[this.count++] = this.arenaPos + KEY_OFFSET;
    this.arenaPos = end;
  }

  /** Encodes the current input at the end of the buffer if it fits the budget; -1 otherwise. */
  private encodeBuffered(): number {
    const arena = this.arena!;
    // With nothing buffered the whole buffer is usable (one record may exceed the budget alone).
    const limit =
      this.count === 0
        ? arena.length
        : Math.min(arena.length, this.budget - (this.count + 1) * INDEX_BYTES_PER_RECORD);
    if (limit <= this.arenaPos) return -1;
    return this.encodeInput(arena, this.arenaPos, limit, true);
  }

  /** Sorts the buffered records; returns the record numbers in key order. */
  private sortBuffered(): Int32Array {
    const n = this.count;
    const arena = this.arena!;
    const keyLens = new Int32Array(n);
    const idx = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      keyLens[r] = keyLength(arena, this.keyStarts[r]! - KEY_OFFSET);
      idx[r] = r;
    }
    sortByKey(arena, this.keyStarts, keyLens, idx, n);
    return idx;
  }

  private newRunPath(): string {
    this.runDir ??= mkdtempSync(join(this.tempDir, 'ksdelta-runs-'));
    const path = join(this.runDir, `run-${this.spilled++}.ksnap`);
    this.files.add(path);
    return path;
  }

  /** Sorts the buffer and writes it as a run file. */
  private spill(): void {
    const idx = this.sortBuffered();
    const writer = new SnapshotWriter(this.newRunPath(), this.meta);
    try {
      const cursor = new MemoryCursor(this.arena!, this.keyStarts, idx, this.count);
      while (cursor.next()) writer.append(cursor.buf, cursor.recStart, cursor.recEnd);
      writer.finish();
    } finally {
      writer.close();
    }
    this.runs.push(writer.path);
    this.count = 0;
    this.arenaPos = 0;
    if (this.arena!.length > this.budget) this.arena = Buffer.allocUnsafe(this.budget);
  }

  /**
   * Writes the snapshot and returns where it is. Merges sorted runs if the input was not in order.
   * Throws {@link DuplicateKeyError} for a duplicate key found while merging.
   */
  async finish(): Promise<FinishedSnapshot> {
    if (this.state !== 'open') throw this.stateError();
    this.state = 'finishing';
    try {
      let result: FinishedSnapshot;
      if (this.streaming) {
        const out = this.out ?? this.openOutput();
        this.out = undefined;
        const bytes = out.finish();
        this.publish(out.path);
        result = { path: this.path, rowCount: out.rowCount, bytes, sortedInput: true, spilledRuns: 0 };
      } else {
        result = await this.mergeAll();
      }
      this.state = 'finished';
      this.cleanup();
      return result;
    } catch (error) {
      this.fail(error);
      throw error;
    }
  }

  private async mergeAll(): Promise<FinishedSnapshot> {
    const withArenaFanIn = Math.max(1, Math.floor(this.budget / 4 / RUN_READ_BYTES));
    let memory: MemoryCursor | undefined;
    if (this.runs.length + 1 <= withArenaFanIn) {
      memory = new MemoryCursor(this.arena!, this.keyStarts, this.sortBuffered(), this.count);
    } else {
      if (this.count > 0) this.spill();
      this.arena = undefined;
      this.keyStarts = new Int32Array(0);
      const fanIn = Math.max(2, Math.floor(this.budget / RUN_READ_BYTES));
      while (this.runs.length > fanIn) {
        const group = this.runs.splice(0, fanIn);
        const writer = new SnapshotWriter(this.newRunPath(), this.meta);
        try {
          await this.merge(group, undefined, writer, false);
          writer.finish();
        } finally {
          writer.close();
        }
        for (const path of group) this.remove(path);
        this.runs.push(writer.path);
      }
    }
    const outPath = `${this.path}.partial-${randomUUID().slice(0, 8)}`;
    this.files.add(outPath);
    const writer = new SnapshotWriter(outPath, this.meta);
    let bytes: number;
    try {
      await this.merge(this.runs, memory, writer, true);
      bytes = writer.finish();
    } finally {
      writer.close();
    }
    this.publish(outPath);
    const spilledRuns = this.spilled;
    return { path: this.path, rowCount: writer.rowCount, bytes, sortedInput: false, spilledRuns };
  }

  /** Moves the finished file to `path` (never over an existing file). */
  private publish(partial: string): void {
    if (existsSync(this.path)) {
      throw new DeltaError(DeltaErrorCode.InvalidInput, `${this.path} appeared while the snapshot was built`);
    }
    renameSync(partial, this.path);
    this.files.delete(partial);
  }

  /** K-way merge of run files (and the buffer) into `writer`; `final` checks order and duplicates. */
  private async merge(
    paths: readonly string[],
    memory: MemoryCursor | undefined,
    writer: SnapshotWriter,
    final: boolean,
  ): Promise<void> {
    const readers: SnapshotReader[] = [];
    try {
      for (const path of paths) readers.push(await SnapshotReader.open(path, RUN_READ_BYTES));
      const heap: RecordCursor[] = [];
      for (const cursor of [...readers, ...(memory ? [memory] : [])] as RecordCursor[]) {
        if (cursor.next() || (await cursor.advance())) heap.push(cursor);
      }
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(heap, i);
      // The previous record written is still in the writer's block (append returns where).
      let prevStart = -1;
      let prevLength = 0;
      while (heap.length > 0) {
        const top = heap[0]!;
        if (final && prevStart >= 0) {
          const block = writer.block;
          const c = compareBytes(top.buf, top.keyStart, top.keyEnd, block, prevStart, prevStart + prevLength);
          if (c === 0) throw this.duplicate(top.buf, top.recStart, top.recEnd);
          if (c < 0) throw new DeltaError(DeltaErrorCode.InvalidState, 'internal error: merge out of order');
        }
        prevStart = writer.append(top.buf, top.recStart, top.recEnd) + KEY_OFFSET;
        prevLength = top.keyEnd - top.keyStart;
        if (top.next() || (await top.advance())) {
          siftDown(heap, 0);
        } else {
          const last = heap.pop()!;
          if (heap.length > 0) {
            heap[0] = last;
            siftDown(heap, 0);
          }
        }
      }
    } finally {
      for (const reader of readers) await reader.close();
    }
  }

  /** Removes every file the builder created (the snapshot excepted once finished). Idempotent. */
  async abort(): Promise<void> {
    if (this.state === 'finished') return;
    this.fail(new DeltaError(DeltaErrorCode.InvalidState, 'the builder was aborted'));
  }

  private fail(error: unknown): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.failure = error;
    this.cleanup();
  }

  private cleanup(): void {
    try {
      this.out?.close();
    } catch {
      // closing is best effort
    }
    this.out = undefined;
    this.arena = undefined;
    this.keyStarts = new Int32Array(0);
    for (const path of this.files) this.remove(path);
    if (this.runDir !== undefined) {
      rmSync(this.runDir, { recursive: true, force: true });
      this.runDir = undefined;
    }
  }

  private remove(path: string): void {
    try {
      unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.files.delete(path);
  }

  private stateError(): DeltaError {
    const message =
      this.state === 'failed'
        ? 'the builder failed or was aborted; start a new one'
        : this.state === 'finished'
          ? 'the builder is finished'
          : 'finish() is in progress';
    return new DeltaError(DeltaErrorCode.InvalidState, message, { cause: this.failure });
  }
}

function less(a: RecordCursor, b: RecordCursor): boolean {
  return compareBytes(a.buf, a.keyStart, a.keyEnd, b.buf, b.keyStart, b.keyEnd) < 0;
}

function siftDown(heap: RecordCursor[], i: number): void {
  const n = heap.length;
  const item = heap[i]!;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const child = r < n && less(heap[r]!, heap[l]!) ? r : l;
    if (!less(heap[child]!, item)) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = item;
}
