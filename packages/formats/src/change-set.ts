import { FormatError, FormatErrorCode } from './errors.js';

/** A cell: what a dataset column holds. Dates and timestamps travel as ISO 8601 strings. */
export type Value = string | number | boolean | null;

/**
 * The type of a dataset column. `decimal` and `timestamp` are the extract documents' names
 * (`COLUMN_TYPES` in `@keystage/extract-spec`) for `number` and `datetime`; both spellings are
 * accepted and written through unchanged.
 */
export type ColumnType =
  | 'string'
  | 'integer'
  | 'number'
  | 'decimal'
  | 'boolean'
  | 'date'
  | 'datetime'
  | 'timestamp';

export interface ColumnMetadata {
  name: string;
  type: ColumnType;
  nullable?: boolean;
}

/**
 * One change to one row since the previous run. `key` holds the values of the dataset's key columns
 * (scalars, like row values); an update's `row` is the whole row as it is now and `changed` names the
 * columns whose values changed.
 */
export type Change =
  | { op: 'insert'; key: Record<string, unknown>; row: Record<string, Value> }
  | { op: 'update'; key: Record<string, unknown>; row: Record<string, Value>; changed: string[] }
  | { op: 'delete'; key: Record<string, unknown> };

export type ChangeOp = Change['op'];

/** What a change set is: the changes of one extract dataset at one school since the previous run. */
export interface ChangeSetMetadata {
  /** A UUID, unique per change set. */
  changeSetId: string;
  /** The same for every attempt to deliver this change set; a partner dedupes by it. */
  idempotencyKey: string;
  runId: string;
  partnerId: string;
  school: { urn: string; name: string };
  extract: { name: string; version: string | number };
  dataset: { name: string; columns: readonly ColumnMetadata[]; key: readonly string[] };
  /** True when the set holds every row (a first run or a resync) rather than the changes. */
  fullLoad: boolean;
  counts: { inserts: number; updates: number; deletes: number };
  /** An instant (ISO 8601 string or Date); written as ISO 8601 UTC with milliseconds, `…T09:00:00.000Z`. */
  createdAt: string | Date;
}

/**
 * How a row is written as text: `parts[0]`, the value of column `columns[0]`, `parts[1]`, …, the
 * value of column `columns[n - 1]`, `parts[n]`. Column numbers index the dataset's columns; rows are
 * joined by `separator`.
 */
export interface RowTemplate {
  parts: readonly string[];
  columns: readonly number[];
  separator: string;
}

/**
 * The changes of a full load from a source that has already checked its rows (every value a string,
 * finite number, boolean or null; the dataset's columns first, in order — a delta snapshot): every
 * change is an insert of such a row, keyed by the row's key columns. Iterated, it gives those changes
 * like any other source. NDJSON and JSON instead have it write its rows as JSON text through a
 * {@link RowTemplate}, without building and checking an object per change: the same bytes, several
 * times faster.
 */
export interface InsertRows extends AsyncIterable<Change> {
  /**
   * The rows through `template`, each value as `JSON.stringify` writes it, in chunks. `rowCount` is
   * the number of rows written, all of them once the iteration has ended.
   */
  jsonRows(template: RowTemplate): AsyncIterable<Buffer> & { readonly rowCount: number };
}

/** True when `changes` is an {@link InsertRows} source. */
export function isInsertRows(changes: ChangeSet['changes']): changes is InsertRows {
  return typeof (changes as Partial<InsertRows>).jsonRows === 'function';
}

/** A change set: its metadata and its changes, read once, in order, as they are encoded. */
export interface ChangeSet {
  metadata: ChangeSetMetadata;
  changes: AsyncIterable<Change> | Iterable<Change>;
}

/** One output file of a run: a name (`users.csv`, `pupils.ndjson`…) and its bytes, readable once. */
export interface EncodedFile {
  name: string;
  contentType: string;
  content: AsyncIterable<Buffer>;
}

/** The metadata as written into NDJSON headers and JSON documents: fixed key order, nothing extra. */
export interface NormalizedMetadata {
  changeSetId: string;
  idempotencyKey: string;
  runId: string;
  partnerId: string;
  school: { urn: string; name: string };
  extract: { name: string; version: string | number };
  dataset: {
    name: string;
    columns: { name: string; type: ColumnType; nullable: boolean }[];
    key: string[];
  };
  fullLoad: boolean;
  counts: { inserts: number; updates: number; deletes: number };
  createdAt: string;
}

const COLUMN_TYPES: ReadonlySet<string> = new Set([
  'string',
  'integer',
  'number',
  'decimal',
  'boolean',
  'date',
  'datetime',
  'timestamp',
]);

const invalidSet = (message: string) => new FormatError(FormatErrorCode.InvalidChangeSet, message);

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidSet(`${what} must be a non-empty string`);
  return value;
}

function requireCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidSet(`${what} must be a non-negative integer`);
  }
  return value;
}

/**
 * Checks change-set metadata and returns it in the fixed shape every format writes. Throws
 * `formats.invalid_change_set` naming the first problem.
 */
export function normalizeMetadata(metadata: ChangeSetMetadata): NormalizedMetadata {
  if (typeof metadata !== 'object' || metadata === null) throw invalidSet('change-set metadata is missing');
  const { dataset, school, extract, counts } = metadata;
  if (typeof dataset !== 'object' || dataset === null) throw invalidSet('dataset is missing');
  const datasetName = requireText(dataset.name, 'dataset.name');
  if (!Array.isArray(dataset.columns) || dataset.columns.length === 0) {
    throw invalidSet(`dataset ${datasetName} has no columns`);
  }
  const seen = new Set<string>();
  const columns = dataset.columns.map((column, index) => {
    const name = requireText(column?.name, `dataset ${datasetName} column ${index + 1} name`);
    if (seen.has(name)) throw invalidSet(`dataset ${datasetName} lists column ${name} twice`);
    seen.add(name);
    if (!COLUMN_TYPES.has(column.type)) {
      throw invalidSet(`dataset ${datasetName} column ${name} has an unknown type`);
    }
    return { name, type: column.type, nullable: column.nullable === true };
  });
  if (!Array.isArray(dataset.key) || dataset.key.length === 0) {
    throw invalidSet(`dataset ${datasetName} has no key`);
  }
  const key = [...dataset.key];
  for (const name of key) {
    if (!seen.has(name)) throw invalidSet(`key column ${name} is not a column of dataset ${datasetName}`);
  }
  if (new Set(key).size !== key.length) throw invalidSet(`dataset ${datasetName} lists a key column twice`);
  if (typeof school !== 'object' || school === null) throw invalidSet('school is missing');
  if (typeof extract !== 'object' || extract === null) throw invalidSet('extract is missing');
  if (typeof counts !== 'object' || counts === null) throw invalidSet('counts are missing');
  if (typeof metadata.fullLoad !== 'boolean') throw invalidSet('fullLoad must be a boolean');
  const version = extract.version;
  if (
    !(typeof version === 'number' && Number.isFinite(version)) &&
    !(typeof version === 'string' && version)
  ) {
    throw invalidSet('extract.version must be a number or a non-empty string');
  }
  return {
    changeSetId: requireText(metadata.changeSetId, 'changeSetId'),
    idempotencyKey: requireText(metadata.idempotencyKey, 'idempotencyKey'),
    runId: requireText(metadata.runId, 'runId'),
    partnerId: requireText(metadata.partnerId, 'partnerId'),
    school: { urn: requireText(school.urn, 'school.urn'), name: requireText(school.name, 'school.name') },
    extract: { name: requireText(extract.name, 'extract.name'), version },
    dataset: { name: datasetName, columns, key },
    fullLoad: metadata.fullLoad,
    counts: {
      inserts: requireCount(counts.inserts, 'counts.inserts'),
      updates: requireCount(counts.updates, 'counts.updates'),
      deletes: requireCount(counts.deletes, 'counts.deletes'),
    },
    createdAt: normalizeInstant(metadata.createdAt),
  };
}

function normalizeInstant(value: string | Date): string {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw invalidSet('createdAt must be an ISO 8601 instant or a Date');
  }
  return date.toISOString();
}

function invalidChange(ordinal: number, dataset: string, problem: string): FormatError {
  return new FormatError(
    FormatErrorCode.InvalidChange,
    `change ${ordinal} of dataset ${dataset}: ${problem}`,
  );
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isValue(value: unknown): value is Value {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

/** A change checked against its dataset, with key and row in column order. */
export interface CheckedChange {
  op: ChangeOp;
  /** The key columns' values, in the dataset's key order. */
  key: Record<string, Value>;
  /** Every dataset column, in order; only for inserts and updates. */
  row?: Record<string, Value>;
  changed?: string[];
}

/**
 * Checks changes one at a time against the dataset and tallies them, so that a stream can be
 * encoded without being held: {@link ChangeChecker.check} per change, {@link ChangeChecker.finish}
 * at the end (which compares the tally with the metadata's counts).
 */
export class ChangeChecker {
  private readonly columns: readonly string[];
  private readonly columnSet: ReadonlySet<string>;
  private readonly keyColumns: readonly string[];
  private ordinal = 0;
  readonly tally = { inserts: 0, updates: 0, deletes: 0 };

  constructor(private readonly metadata: NormalizedMetadata) {
    this.columns = metadata.dataset.columns.map((column) => column.name);
    this.columnSet = new Set(this.columns);
    this.keyColumns = metadata.dataset.key;
  }

  check(change: Change): CheckedChange {
    const ordinal = ++this.ordinal;
    const dataset = this.metadata.dataset.name;
    if (!isPlainRecord(change)) throw invalidChange(ordinal, dataset, 'not an object');
    const op = change.op;
    if (op !== 'insert' && op !== 'update' && op !== 'delete') {
      throw invalidChange(ordinal, dataset, 'op must be insert, update or delete');
    }
    if (!isPlainRecord(change.key)) throw invalidChange(ordinal, dataset, 'key must be an object');
    const rawKey = change.key;
    const keyNames = Object.keys(rawKey);
    if (keyNames.length !== this.keyColumns.length) {
      throw invalidChange(ordinal, dataset, `key must hold exactly ${this.keyColumns.join(', ')}`);
    }
    const key: Record<string, Value> = Object.create(null);
    for (const name of this.keyColumns) {
      if (!Object.hasOwn(rawKey, name)) throw invalidChange(ordinal, dataset, `key lacks column ${name}`);
      const value = rawKey[name];
      if (!isValue(value)) {
        throw invalidChange(
          ordinal,
          dataset,
          `key column ${name} is not a string, finite number, boolean or null`,
        );
      }
      key[name] = value;
    }
    if (op === 'delete') {
      this.tally.deletes++;
      return { op, key };
    }
    if (!isPlainRecord(change.row)) throw invalidChange(ordinal, dataset, 'row must be an object');
    const rawRow = change.row;
    const row: Record<string, Value> = Object.create(null);
    for (const name of this.columns) {
      if (!Object.hasOwn(rawRow, name)) throw invalidChange(ordinal, dataset, `row lacks column ${name}`);
      const value = rawRow[name];
      if (!isValue(value)) {
        throw invalidChange(
          ordinal,
          dataset,
          `column ${name} is not a string, finite number, boolean or null`,
        );
      }
      row[name] = value;
    }
    if (Object.keys(rawRow).length !== this.columns.length) {
      const extra = Object.keys(rawRow).find((name) => !this.columnSet.has(name));
      throw invalidChange(ordinal, dataset, `row has a column the dataset does not list (${extra})`);
    }
    if (op === 'insert') {
      this.tally.inserts++;
      return { op, key, row };
    }
    const changed = (change as { changed?: unknown }).changed;
    if (!Array.isArray(changed)) throw invalidChange(ordinal, dataset, 'an update needs a changed list');
    for (const name of changed) {
      if (typeof name !== 'string' || !this.columnSet.has(name)) {
        throw invalidChange(ordinal, dataset, 'changed lists something that is not a column of the dataset');
      }
    }
    this.tally.updates++;
    return { op, key, row, changed: [...changed] };
  }

  /** Counts `count` inserts that their source has checked (see {@link InsertRows}). */
  addCheckedInserts(count: number): void {
    this.tally.inserts += count;
  }

  /** Throws `formats.count_mismatch` unless the changes seen add up to the metadata's counts. */
  finish(): void {
    const { counts, dataset } = this.metadata;
    const { inserts, updates, deletes } = this.tally;
    if (inserts !== counts.inserts || updates !== counts.updates || deletes !== counts.deletes) {
      throw new FormatError(
        FormatErrorCode.CountMismatch,
        `dataset ${dataset.name}: the metadata counts ${counts.inserts}/${counts.updates}/${counts.deletes} ` +
          `inserts/updates/deletes but the changes were ${inserts}/${updates}/${deletes}`,
      );
    }
  }
}

/** Bytes handed to the consumer at a time, roughly: big enough to be cheap, small enough to stream. */
export const CHUNK_TARGET_BYTES = 64 * 1024;

/**
 * Collects text and hands it out as Buffers of about {@link CHUNK_TARGET_BYTES}, so an encoder
 * yields a few large chunks rather than one per change, and never more than one chunk is held.
 */
export class ChunkBuffer {
  private parts: string[] = [];
  private length = 0;

  constructor(private readonly target: number = CHUNK_TARGET_BYTES) {}

  /** Adds text; returns a chunk once enough has been collected. */
  push(text: string): Buffer | undefined {
    this.parts.push(text);
    this.length += text.length;
    return this.length >= this.target ? this.take() : undefined;
  }

  /** Whatever is left (undefined when nothing is). */
  take(): Buffer | undefined {
    if (this.length === 0) return undefined;
    const chunk = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.length = 0;
    return chunk;
  }
}
