import { open } from 'node:fs/promises';
import {
  compareBytes,
  corrupt,
  type DeltaValue,
  DIGEST_BYTES,
  DIGEST_OFFSET,
  decodeRow,
  equalBytes,
  skipValue,
} from './encoding.js';
import { DeltaError, DeltaErrorCode } from './errors.js';
import { assertSameSchema, SnapshotReader } from './format.js';

/** A row whose key is new in this run. */
export interface InsertChange {
  readonly op: 'insert';
  /** The key values, in key-column order. */
  readonly key: DeltaValue[];
  readonly row: DeltaValue[];
}

/** A row whose key existed and whose values changed. */
export interface UpdateChange {
  readonly op: 'update';
  readonly key: DeltaValue[];
  /** The new values, all columns. */
  readonly row: DeltaValue[];
  /** Names of the columns whose value (or type) changed, in column order. Never empty. */
  readonly changed: string[];
  /** The previous values, all columns; only with `includePrevious: true`. */
  readonly previous?: DeltaValue[];
}

/** A row whose key is gone in this run. */
export interface DeleteChange {
  readonly op: 'delete';
  readonly key: DeltaValue[];
  readonly previousRow: DeltaValue[];
}

export type Change = InsertChange | UpdateChange | DeleteChange;

/** Counts of one diff. previousCount = deletes + updates + unchanged; currentCount = inserts + updates + unchanged. */
export interface DiffSummary {
  readonly previousCount: number;
  readonly currentCount: number;
  readonly inserts: number;
  readonly updates: number;
  readonly deletes: number;
  readonly unchanged: number;
}

export interface DiffOptions {
  /** Put the previous values on updates (`previous`). Default false. */
  readonly includePrevious?: boolean;
  /** Changes per array from `batches()` (the unit of work between awaits). Default 512. */
  readonly batchSize?: number;
}

const DIFF_READ_BYTES = 1024 * 1024;

/**
 * The changes from one snapshot to the next, in key order (the byte order of the key encoding), by a
 * sorted merge of the two files. Keys in both files are compared by digest first; only rows whose
 * digests differ are decoded and compared column by column. Unchanged rows cost no allocation.
 *
 * Iterate once, either change by change (`for await (const change of diff)`) or in arrays
 * (`for await (const batch of diff.batches())`). `summary` is available when the iteration has run to
 * the end. Both files are checked while they are read: truncation before the first change, a corrupted
 * block before any change from it, the whole file at the end — so treat the changes as final only when
 * the iteration ends without throwing (a `delta.corrupt_snapshot` error can come after some changes).
 */
export class SnapshotDiff implements AsyncIterable<Change> {
  private started = false;
  private result: DiffSummary | undefined;

  constructor(
    private readonly previousPath: string | undefined,
    private readonly currentPath: string,
    private readonly options: DiffOptions = {},
  ) {
    const size = options.batchSize ?? 512;
    if (!Number.isInteger(size) || size < 1) {
      throw new DeltaError(DeltaErrorCode.InvalidInput, 'batchSize must be a positive integer');
    }
  }

  /** True once the iteration has run to the end (and `summary` is available). */
  get done(): boolean {
    return this.result !== undefined;
  }

  /** The counts; throws `delta.invalid_state` until the iteration has run to the end. */
  get summary(): DiffSummary {
    if (this.result === undefined) {
      throw new DeltaError(
        DeltaErrorCode.InvalidState,
        'the diff summary is known once the iteration has finished',
      );
    }
    return this.result;
  }

  /** The changes in arrays of up to `batchSize`. */
  batches(): AsyncIterable<Change[]> {
    this.claim();
    return { [Symbol.asyncIterator]: () => this.run(false) };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Change> {
    this.claim();
    for await (const batch of this.run(false)) yield* batch;
  }

  /** Runs the merge counting only (no change objects); used by {@link summariseDiff}. */
  async count(): Promise<DiffSummary> {
    this.claim();
    for await (const _ of this.run(true)) {
      // nothing is yielded in count-only mode
    }
    return this.summary;
  }

  private claim(): void {
    if (this.started) throw new DeltaError(DeltaErrorCode.InvalidState, 'a diff can be iterated once');
    this.started = true;
  }

  private async *run(countOnly: boolean): AsyncGenerator<Change[]> {
    const includePrevious = this.options.includePrevious === true;
    const batchSize = this.options.batchSize ?? 512;
    const readers: SnapshotReader[] = [];
    try {
      const cur = await SnapshotReader.open(this.currentPath, DIFF_READ_BYTES, true);
      readers.push(cur);
      let prev: SnapshotReader | undefined;
      if (this.previousPath !== undefined) {
        prev = await SnapshotReader.open(this.previousPath, DIFF_READ_BYTES, true);
        readers.push(prev);
        assertSameSchema(prev.info, cur.info);
      }
      const columns = cur.info.columns;
      const n = columns.length;
      const keyIndexes = cur.info.keyColumns.map((k) => columns.indexOf(k));
      const keyOf = (row: DeltaValue[]) => keyIndexes.map((i) => row[i] as DeltaValue);
      let inserts = 0;
      let updates = 0;
      let deletes = 0;
      let unchanged = 0;
      let batch: Change[] = [];

      let hasCur = cur.next() || (await cur.advance());
      let hasPrev = prev !== undefined && (prev.next() || (await prev.advance()));
      while (hasPrev && hasCur) {
        const p = prev!;
        const c = compareBytes(p.buf, p.keyStart, p.keyEnd, cur.buf, cur.keyStart, cur.keyEnd);
        if (c === 0) {
          if (
            equalBytes(p.buf, p.recStart + DIGEST_OFFSET, cur.buf, cur.recStart + DIGEST_OFFSET, DIGEST_BYTES)
          ) {
            unchanged++;
          } else {
            updates++;
            if (!countOnly) {
              const changed = changedColumns(p, cur, columns);
              const row = decodeRow(cur.buf, cur.keyEnd, cur.recEnd, n);
              const change: UpdateChange = includePrevious
                ? {
                    op: 'update',
                    key: keyOf(row),
                    row,
                    changed,
                    previous: decodeRow(p.buf, p.keyEnd, p.recEnd, n),
                  }
                : { op: 'update', key: keyOf(row), row, changed };
              batch.push(change);
            }
          }
          hasPrev = p.next() || (await p.advance());
          hasCur = cur.next() || (await cur.advance());
        } else if (c < 0) {
          deletes++;
          if (!countOnly) {
            const previousRow = decodeRow(p.buf, p.keyEnd, p.recEnd, n);
            batch.push({ op: 'delete', key: keyOf(previousRow), previousRow });
          }
          hasPrev = p.next() || (await p.advance());
        } else {
          inserts++;
          if (!countOnly) {
            const row = decodeRow(cur.buf, cur.keyEnd, cur.recEnd, n);
            batch.push({ op: 'insert', key: keyOf(row), row });
          }
          hasCur = cur.next() || (await cur.advance());
        }
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      while (hasPrev) {
        const p = prev!;
        deletes++;
        if (!countOnly) {
          const previousRow = decodeRow(p.buf, p.keyEnd, p.recEnd, n);
          batch.push({ op: 'delete', key: keyOf(previousRow), previousRow });
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
        hasPrev = p.next() || (await p.advance());
      }
      while (hasCur) {
        inserts++;
        if (!countOnly) {
          const row = decodeRow(cur.buf, cur.keyEnd, cur.recEnd, n);
          batch.push({ op: 'insert', key: keyOf(row), row });
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
        hasCur = cur.next() || (await cur.advance());
      }
      if (batch.length > 0) yield batch;
      this.result = {
        previousCount: prev?.count ?? 0,
        currentCount: cur.count,
        inserts,
        updates,
        deletes,
        unchanged,
      };
    } finally {
      for (const reader of readers) await reader.close();
    }
  }
}

/** Names of the columns whose encoded value differs between the two current records. */
function changedColumns(a: SnapshotReader, b: SnapshotReader, columns: readonly string[]): string[] {
  const changed: string[] = [];
  let pa = a.keyEnd;
  let pb = b.keyEnd;
  for (let i = 0; i < columns.length; i++) {
    const ea = skipValue(a.buf, pa, a.recEnd);
    const eb = skipValue(b.buf, pb, b.recEnd);
    if (ea - pa !== eb - pb || !equalBytes(a.buf, pa, b.buf, pb, ea - pa)) changed.push(columns[i]!);
    pa = ea;
    pb = eb;
  }
  if (changed.length === 0) throw corrupt(`${b.path}: a row digest does not match its values`);
  return changed;
}

/**
 * The changes from `previousPath` to `currentPath` (see {@link SnapshotDiff}). With no previous
 * snapshot (first run, or a resync) every row is an insert. The files are opened when the iteration
 * starts; both must have the same columns and key columns (`delta.schema_mismatch` otherwise).
 */
export function diffSnapshots(
  previousPath: string | undefined,
  currentPath: string,
  options?: DiffOptions,
): SnapshotDiff {
  return new SnapshotDiff(previousPath, currentPath, options);
}

/**
 * Only the counts of {@link diffSnapshots}, without building change objects (cheaper; for deciding
 * to hold a delivery before streaming it). Checks both files completely.
 *
 * Two snapshots of the same rows are the same bytes: when the files are equal (a run that changed
 * nothing), comparing them and checking one is all it takes.
 */
export async function summariseDiff(
  previousPath: string | undefined,
  currentPath: string,
): Promise<DiffSummary> {
  if (previousPath !== undefined && (await sameBytes(previousPath, currentPath))) {
    const reader = await SnapshotReader.open(currentPath, DIFF_READ_BYTES, true);
    try {
      while (reader.next() || (await reader.advance())) {
        // every block is checked as it is read; the end against the footer
      }
    } finally {
      await reader.close();
    }
    const rows = reader.info.rowCount;
    return { previousCount: rows, currentCount: rows, inserts: 0, updates: 0, deletes: 0, unchanged: rows };
  }
  return new SnapshotDiff(previousPath, currentPath).count();
}

/** True when the two files hold the same bytes (stops at the first difference). */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const fa = await open(a, 'r');
  try {
    const fb = await open(b, 'r');
    try {
      const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
      if (sa.size !== sb.size) return false;
      const ba = Buffer.allocUnsafe(DIFF_READ_BYTES);
      const bb = Buffer.allocUnsafe(DIFF_READ_BYTES);
      for (let at = 0; at < sa.size; ) {
        const [ra, rb] = await Promise.all([
          fa.read(ba, 0, DIFF_READ_BYTES, at),
          fb.read(bb, 0, DIFF_READ_BYTES, at),
        ]);
        if (ra.bytesRead === 0 || ra.bytesRead !== rb.bytesRead) return false;
        if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
        at += ra.bytesRead;
      }
      return true;
    } finally {
      await fb.close();
    }
  } finally {
    await fa.close();
  }
}
