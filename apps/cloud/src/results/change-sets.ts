import {
  type Change as DeltaChange,
  type DeltaValue,
  diffSnapshots,
  SnapshotJsonRows,
} from '@keystage/delta';
import type { Dataset } from '@keystage/extract-spec';
import type { Change, ChangeSet, ChangeSetMetadata, InsertRows, Value } from '@keystage/formats';

/**
 * The change set of one dataset between two snapshot files (`previous` undefined: a full load, every
 * row of `current` an insert), read once, in order, as it is encoded.
 */
export function changeSetOf(
  dataset: Dataset,
  metadata: ChangeSetMetadata,
  current: string,
  previous: string | undefined,
): ChangeSet {
  const columns = dataset.columns.map((c) => c.name);
  const keyNames = dataset.key ?? columns;
  const keyIdx = keyNames.map((k) => columns.indexOf(k));
  const dropDeletes = dataset.delta === 'changes';
  const toRow = (values: DeltaValue[]) =>
    Object.fromEntries(columns.map((c, i) => [c, values[i] as Value])) as Record<string, Value>;
  const toKey = (key: DeltaValue[], row: DeltaValue[]) =>
    dataset.key
      ? Object.fromEntries(keyNames.map((k, i) => [k, key[i]]))
      : Object.fromEntries(keyIdx.map((c, i) => [keyNames[i], row[c]]));
  async function* changes(): AsyncGenerator<Change> {
    for await (const c of diffSnapshots(previous, current) as AsyncIterable<DeltaChange>) {
      if (c.op === 'insert') yield { op: 'insert', key: toKey(c.key, c.row), row: toRow(c.row) };
      else if (c.op === 'update')
        yield { op: 'update', key: toKey(c.key, c.row), row: toRow(c.row), changed: c.changed };
      else if (!dropDeletes) yield { op: 'delete', key: toKey(c.key, c.previousRow) };
    }
  }
  if (previous !== undefined) return { metadata, changes: changes() };
  // A full load is the snapshot's rows (checked when it was built), in order: NDJSON and JSON
  // write them straight from the file. The snapshot's columns begin with the dataset's.
  const inserts: InsertRows = {
    [Symbol.asyncIterator]: changes,
    jsonRows: (template) => new SnapshotJsonRows(current, template),
  };
  return { metadata, changes: inserts };
}

/**
 * What is stored for a full load's change set: not its text but where its rows are — the
 * dataset's snapshot, already stored for the delta — and how to write them (`contentEncoding`
 * `snapshot`). The text is written as it is read, the same bytes the change set would have held.
 */
export interface SnapshotChangeSet {
  kind: 'keystage.snapshot-change-set';
  version: 1;
  snapshotKey: string;
  format: string;
  dataset: Dataset;
  /** With `createdAt` as an ISO 8601 string. */
  metadata: ChangeSetMetadata;
}

/** `contentEncoding` of a change set kept as its snapshot. */
export const SNAPSHOT_ENCODING = 'snapshot';

export function snapshotChangeSet(
  snapshotKey: string,
  format: string,
  dataset: Dataset,
  metadata: ChangeSetMetadata,
): SnapshotChangeSet {
  return {
    kind: 'keystage.snapshot-change-set',
    version: 1,
    snapshotKey,
    format,
    dataset,
    metadata: { ...metadata, createdAt: new Date(metadata.createdAt).toISOString() },
  };
}

/** Reads a stored {@link SnapshotChangeSet}; throws on anything else. */
export function parseSnapshotChangeSet(bytes: Buffer): SnapshotChangeSet {
  const value = JSON.parse(bytes.toString('utf8')) as Partial<SnapshotChangeSet>;
  if (
    value?.kind !== 'keystage.snapshot-change-set' ||
    value.version !== 1 ||
    typeof value.snapshotKey !== 'string' ||
    typeof value.format !== 'string' ||
    !value.dataset ||
    !value.metadata
  ) {
    throw new Error('not a snapshot change set');
  }
  return value as SnapshotChangeSet;
}
