/**
 * SQLite (better-sqlite3), for the demo MIS and tests. Read-only twice over: the file is
 * opened with `readonly: true` (SQLITE_OPEN_READONLY, which attached copies inherit) and
 * `PRAGMA query_only` is set before every statement (it also refuses temp tables).
 * The file is attached a second time as `sims` so SIMS-shaped SQL (`sims.stud_student`)
 * runs unchanged, while unqualified names still work.
 *
 * better-sqlite3 is synchronous: rows are pulled in batches with a turn of the event loop
 * between batches, so a deadline or `cancel()` stops the stream between two batches. It has
 * no `sqlite3_interrupt`, so one long step (a big sort before the first row) cannot be cut
 * short; SQLite only serves demos and tests, where that is acceptable.
 */
import { existsSync, statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type BetterSqlite3 from 'better-sqlite3';
import { BaseConnector, checkIdentifier, type DatabaseAccess, type StartOptions } from '../connector.js';
import { errorCodeOf, MisError, messageOf, withoutSecret } from '../errors.js';
import { type BoundStatement } from '../params.js';
import { type BatchSource, rowsPerBatch } from '../stream.js';
import type { CellValue, Column, ColumnType, Row, SqliteSettings } from '../types.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The normalised type of a declared SQLite column type (SQLite's own affinity rules, plus dates). */
export function sqliteColumnType(declared: string | null): ColumnType {
  if (!declared) return 'unknown';
  const t = declared.toUpperCase();
  if (t === 'DATE') return 'date';
  if (t.startsWith('DATETIME') || t.startsWith('TIMESTAMP')) return 'datetime';
  if (t === 'TIME') return 'time';
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('INT')) return 'integer';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'string';
  if (t.includes('BLOB')) return 'binary';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'number';
  // NUMERIC/DECIMAL affinity stores integers or reals: they come back as numbers.
  return 'number';
}

/** Safe integers become numbers, others decimal strings (the rule of every connector). */
function normaliseRow(row: unknown[]): Row {
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (typeof v === 'bigint') row[i] = v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
  }
  return row as CellValue[];
}

class SqliteSource implements BatchSource {
  private stopped = false;
  private limit: number;

  constructor(
    private readonly rows: IterableIterator<unknown[]> | null,
    private readonly cols: readonly Column[],
    private readonly maxRows: number,
  ) {
    this.limit = Math.min(maxRows, 64);
  }

  columns(): readonly Column[] {
    return this.cols;
  }

  buffered(): number {
    return 0;
  }

  async next(): Promise<Row[] | null> {
    // Let timers and other callers (cancel, the deadline) run between two synchronous batches.
    await nextTurn();
    if (this.stopped || !this.rows) return null;
    const out: Row[] = [];
    while (out.length < this.limit) {
      const r = this.rows.next();
      if (r.done) {
        this.stopped = true;
        break;
      }
      out.push(normaliseRow(r.value));
    }
    if (out.length > 0) this.limit = rowsPerBatch(out[0], this.maxRows);
    return out.length > 0 ? out : null;
  }

  async interrupt(): Promise<void> {
    this.stop();
  }

  async release(): Promise<void> {
    this.stop();
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    // Resets the statement: SQLite stops the work and releases its read lock.
    this.rows?.return?.();
  }
}

export class SqliteConnector extends BaseConnector {
  readonly kind = 'sqlite' as const;
  readonly display: string;
  private db: BetterSqlite3.Database | null = null;
  private readonly alias: string;

  constructor(private readonly settings: SqliteSettings) {
    super(settings);
    if (typeof settings.path !== 'string' || settings.path === '') {
      throw new MisError('mis.bad_config', 'sqlite: path is required');
    }
    this.alias = checkIdentifier('sqlite: attachAs', settings.attachAs ?? 'sims');
    this.display = `sqlite:${settings.path}`;
  }

  protected isOpen(): boolean {
    return this.db?.open === true;
  }

  protected async openConnection(): Promise<void> {
    const path = this.settings.path;
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new MisError('mis.unavailable', `SQLite database file not found: ${path}`, 'SQLITE_CANTOPEN');
    }
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path, {
      readonly: true,
      fileMustExist: true,
      timeout: this.settings.connectTimeoutMs ?? 5000,
    });
    try {
      if (this.alias !== 'main') db.prepare(`ATTACH DATABASE ? AS ${this.alias}`).run(path);
      db.pragma('query_only = 1');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      this.version = `SQLite ${String(db.prepare('SELECT sqlite_version()').pluck().get())}`;
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
  }

  protected async closeConnection(): Promise<void> {
    this.drop();
  }

  drop(): void {
    const db = this.db;
    this.db = null;
    try {
      db?.close();
    } catch {
      // Closing fails only when a statement is mid-step, which the run has already stopped.
    }
  }

  protected login(): string {
    return this.settings.misUser ?? '';
  }

  protected misTable(name: string): string {
    return `${this.alias}.${name}`;
  }

  protected async startStatement(bound: BoundStatement, options: StartOptions): Promise<BatchSource> {
    const db = this.db as BetterSqlite3.Database;
    // A previous statement may have run `PRAGMA query_only = 0`.
    db.pragma('query_only = 1');
    const stmt = db.prepare(bound.sql);
    if (!stmt.reader) {
      // Not a query: SQLite itself judges it (a write fails with SQLITE_READONLY).
      stmt.run(...bound.values);
      return new SqliteSource(null, [], options.batchSize);
    }
    stmt.raw(true);
    stmt.safeIntegers(true);
    const columns: Column[] = stmt.columns().map((c) => ({
      name: c.name,
      type: sqliteColumnType(c.type),
      dbType: c.type ?? '',
    }));
    return new SqliteSource(
      stmt.iterate(...bound.values) as IterableIterator<unknown[]>,
      columns,
      options.batchSize,
    );
  }

  protected async databaseAccess(): Promise<DatabaseAccess> {
    const rows = await this.collect(
      `SELECT name FROM ${this.alias}.sqlite_master WHERE type IN ('table', 'view') ORDER BY name`,
    );
    return {
      readableTables: rows.map((r) => String(r[0])),
      canWrite: false,
      grants: [],
      notes: ['SQLite has no accounts: the file is opened read-only and every table is readable'],
    };
  }

  mapError(err: unknown): MisError {
    return mapSqliteError(err);
  }
}

export function mapSqliteError(err: unknown): MisError {
  if (err instanceof MisError) return err;
  const code = errorCodeOf(err) ?? '';
  const message = withoutSecret(messageOf(err), undefined);
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_AUTH' || code === 'SQLITE_PERM') {
    return new MisError('mis.permission_denied', `SQLite refused the statement: ${message}`, code);
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new MisError('mis.unavailable', `cannot open the SQLite database: ${message}`, code);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new MisError('mis.unavailable', 'the SQLite database is locked by another process', code);
  }
  if (code === 'SQLITE_INTERRUPT') return new MisError('mis.cancelled', 'the query was cancelled', code);
  if (code === 'SQLITE_ERROR' || code === 'SQLITE_RANGE') {
    // Syntax errors and unknown names: the message quotes the SQL, not row data.
    return new MisError('mis.query_failed', `SQLite: ${message}`, code);
  }
  if (err instanceof RangeError || err instanceof TypeError) {
    return new MisError('mis.query_failed', `SQLite: ${message}`, code || err.name);
  }
  return new MisError(
    'mis.query_failed',
    `SQLite query failed (${code || 'unknown error'})`,
    code || undefined,
  );
}
