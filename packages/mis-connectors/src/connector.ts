/**
 * The part of every connector that does not depend on the engine: connecting once (and
 * again after a lost connection), one stream at a time, cancel, and `permissions()` read
 * from the demo MIS permission model with the connector's own read-only streams.
 */
import { isMisError, MisError } from './errors.js';
import { type BoundStatement, bindParameters, type ScanOptions } from './params.js';
import { type BatchSource, DEFAULT_BATCH_SIZE, type RunHost, RunRowStream, StreamRun } from './stream.js';
import type {
  CommonSettings,
  MisConnector,
  MisKind,
  MisPermissions,
  QueryParam,
  Row,
  RowStream,
  StreamOptions,
  TableGrant,
} from './types.js';

export interface StartOptions {
  readonly batchSize: number;
  /** Server-side limit in ms (0: none). */
  readonly timeoutMs: number;
  /** The caller takes packed batches (`StreamOptions.packed`). */
  readonly packed: boolean;
}

export type DatabaseAccess = MisPermissions['database'] & { readonly notes?: readonly string[] };

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Checks a schema, database or alias name before it goes into SQL text. */
export function checkIdentifier(kind: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value)) {
    throw new MisError('mis.bad_config', `${kind} must be letters, digits and _ (got an invalid name)`);
  }
  return value;
}

export abstract class BaseConnector implements MisConnector, RunHost {
  abstract readonly kind: MisKind;
  /** Rows per fetch when the caller does not say (an engine may fetch more per round trip). */
  protected readonly defaultBatchSize: number = DEFAULT_BATCH_SIZE;
  abstract readonly display: string;
  protected version = '';
  private active: StreamRun | null = null;
  private opening: Promise<void> | null = null;

  constructor(protected readonly common: CommonSettings) {}

  /** Whether a live connection exists. */
  protected abstract isOpen(): boolean;
  /** Opens the connection and sets `version`; throws the driver's error. */
  protected abstract openConnection(): Promise<void>;
  protected abstract closeConnection(): Promise<void>;
  /** Starts a read-only statement; the first `next()` of the source runs it. */
  protected abstract startStatement(bound: BoundStatement, options: StartOptions): Promise<BatchSource>;
  /** The login name, once connected. */
  protected abstract login(): string;
  /** The qualified name of a MIS table (`sims.sys_user`, `` `school`.sys_user ``). */
  protected abstract misTable(name: string): string;
  /** The database's own grants for the login. */
  protected abstract databaseAccess(): Promise<DatabaseAccess>;
  abstract mapError(err: unknown): MisError;
  abstract drop(): void;

  protected scanOptions(): ScanOptions {
    return {};
  }

  ended(run: StreamRun): void {
    if (this.active === run) this.active = null;
  }

  async connect(): Promise<void> {
    if (this.isOpen()) return;
    if (!this.opening) {
      this.opening = (async () => {
        try {
          await this.openConnection();
        } catch (err) {
          this.drop();
          throw isMisError(err) ? err : this.mapError(err);
        } finally {
          this.opening = null;
        }
      })();
    }
    return this.opening;
  }

  async serverVersion(): Promise<string> {
    await this.connect();
    return this.version;
  }

  async stream(
    sql: string,
    params: readonly QueryParam[] = [],
    options: StreamOptions = {},
  ): Promise<RowStream> {
    if (this.active) throw new MisError('mis.busy', 'another query is running on this connection');
    const run = new StreamRun(this, options);
    this.active = run;
    const start: StartOptions = {
      batchSize: Math.max(1, Math.floor(options.batchSize ?? this.defaultBatchSize)),
      timeoutMs: Math.max(0, Math.ceil(options.timeoutMs ?? 0)),
      packed: options.packed === true,
    };
    const { source, first } = await run.open(async () => {
      await this.connect();
      return this.startStatement(bindParameters(this.kind, sql, params, this.scanOptions()), start);
    });
    return new RunRowStream(run, source.columns(), first);
  }

  async cancel(): Promise<void> {
    await this.active?.abort('cancelled');
  }

  async close(): Promise<void> {
    await this.active?.abort('closed');
    await this.closeConnection();
  }

  /** Every row of a small internal query (permissions), through the same read-only path. */
  protected async collect(sql: string, params: readonly QueryParam[] = []): Promise<Row[]> {
    const out: Row[] = [];
    const s = await this.stream(sql, params, { timeoutMs: 30_000 });
    for await (const batch of s.batches()) out.push(...batch);
    return out;
  }

  async permissions(): Promise<MisPermissions> {
    await this.connect();
    const account = this.login();
    const misUser = this.common.misUser ?? account;
    const notes: string[] = [];
    let misUserFound = false;
    let misUserEnabled: boolean | null = null;
    const groups = new Set<string>();
    const areas = new Set<string>();
    const tables = new Map<
      string,
      { whole: boolean; columns: Set<string>; areas: Set<string>; groups: Set<string>; scopes: Set<string> }
    >();
    const t = (name: string) => this.misTable(name);
    const login: QueryParam[] = [{ name: 'login', type: 'string', value: misUser }];
    try {
      const users = await this.collect(
        `SELECT enabled FROM ${t('sys_user')} WHERE lower(login_name) = lower(:login)`,
        login,
      );
      misUserFound = users.length > 0;
      if (misUserFound) misUserEnabled = users.some((u) => Number(u[0]) === 1);
      else
        notes.push(
          `no MIS user named ${misUser} in sys_user (set misUser to the MIS account this login belongs to)`,
        );
      const rows = await this.collect(
        `SELECT g.group_name, p.data_area, p.table_name, p.column_name, p.scope
           FROM ${t('sys_user')} u
           JOIN ${t('sys_user_group')} ug ON ug.user_id = u.user_id
           JOIN ${t('sys_group')} g ON g.group_id = ug.group_id
           LEFT JOIN ${t('sys_group_permission')} p ON p.group_id = g.group_id
          WHERE lower(u.login_name) = lower(:login) AND u.enabled = 1`,
        login,
      );
      for (const [group, area, table, column, scope] of rows) {
        groups.add(String(group));
        if (table === null || table === undefined) continue;
        areas.add(String(area));
        const name = String(table);
        let g = tables.get(name);
        if (!g) {
          g = { whole: false, columns: new Set(), areas: new Set(), groups: new Set(), scopes: new Set() };
          tables.set(name, g);
        }
        if (column === null) g.whole = true;
        else g.columns.add(String(column));
        g.areas.add(String(area));
        g.groups.add(String(group));
        g.scopes.add(String(scope));
      }
      if (misUserFound && misUserEnabled === false) notes.push(`the MIS user ${misUser} is disabled`);
    } catch (err) {
      const code = isMisError(err) ? err.code : 'mis.query_failed';
      notes.push(
        `the MIS permission tables (sys_user, sys_user_group, sys_group_permission) could not be read (${code})`,
      );
    }
    let database: DatabaseAccess;
    try {
      database = await this.databaseAccess();
    } catch (err) {
      const code = isMisError(err) ? err.code : 'mis.query_failed';
      database = { readableTables: null, canWrite: null, grants: [] };
      notes.push(`the database's own grants could not be read (${code})`);
    }
    if (database.notes) notes.push(...database.notes);
    const sorted = (s: Set<string>) => [...s].sort();
    const grants: TableGrant[] = [...tables.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([table, g]) => ({
        table,
        wholeTable: g.whole,
        columns: sorted(g.columns),
        areas: sorted(g.areas),
        groups: sorted(g.groups),
        // The widest scope wins: one group seeing all rows is enough.
        scope: g.scopes.has('all') || g.scopes.size === 0 ? 'all' : sorted(g.scopes).join(', '),
      }));
    return {
      account,
      misUser,
      misUserFound,
      misUserEnabled,
      groups: sorted(groups),
      areas: sorted(areas),
      tables: grants,
      database: {
        readableTables: database.readableTables,
        canWrite: database.canWrite,
        grants: database.grants,
      },
      notes,
    };
  }
}
