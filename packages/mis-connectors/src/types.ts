/**
 * The public shapes of @keystage/mis-connectors: one interface over SQLite, PostgreSQL,
 * MariaDB/MySQL and SQL Server. Drivers never leak through these types.
 */

import type { PackedBatch } from './packed.js';

export const MIS_KINDS = ['sqlite', 'postgres', 'mysql', 'mssql'] as const;
export type MisKind = (typeof MIS_KINDS)[number];

/** A value in a row, the same for every engine (see docs/mis-connectors.md, "Values"). */
export type CellValue = string | number | Uint8Array | null;
export type Row = CellValue[];

/**
 * The normalised type of a column. Values: `integer`, `number`, `boolean` → JS number
 * (integers outside ±(2^53−1) → decimal string); `decimal` → string (exact); `date`
 * → `YYYY-MM-DD`; `datetime` → `YYYY-MM-DD HH:MM:SS[.fff]` (+`Z` when the engine type has
 * a time zone); `time` → `HH:MM:SS[.fff]`; `string` → string; `binary` → Uint8Array;
 * `unknown` (SQLite expressions) → whatever the value is.
 */
export const COLUMN_TYPES = [
  'integer',
  'number',
  'decimal',
  'boolean',
  'string',
  'date',
  'datetime',
  'time',
  'binary',
  'unknown',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** The engine's own type name (`int4`, `VARCHAR(60)`, `LONGLONG`, `nvarchar`), for diagnostics. */
  readonly dbType: string;
}

export const PARAM_TYPES = ['string', 'integer', 'number', 'boolean', 'date', 'datetime'] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

/**
 * A typed named parameter, as the agent receives it with a job. SQL refers to it as
 * `:name`. `value` may be null (SQL NULL). Accepted values per type: string → string;
 * integer → safe integer, bigint or a decimal-digit string; number → finite number;
 * boolean → boolean (or 0/1); date → `YYYY-MM-DD`; datetime → `YYYY-MM-DD[T ]HH:MM[:SS[.f]]`
 * (school wall-clock time, no zone).
 */
export interface QueryParam {
  readonly name: string;
  readonly type: ParamType;
  readonly value: unknown;
}

export interface StreamOptions {
  /**
   * Deadline for the whole stream, from the call to the last row, in ms. Enforced by the
   * server where it can (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`) and
   * by the connector (which then cancels). Expiry → `mis.timeout`. Default: none.
   */
  readonly timeoutMs?: number;
  /** Most rows fetched from the server at once (PostgreSQL cursor batch, queue size elsewhere). Default 2,000 for PostgreSQL, 500 for the others. */
  readonly batchSize?: number;
  /** Aborting it cancels the stream, like `cancel()`. */
  readonly signal?: AbortSignal;
  /**
   * The caller reads `packedBatches()` and takes rows already packed for the result stream
   * (msgpack arrays, see packed.ts) where the engine can make them without a JS value per cell:
   * PostgreSQL, for a statement without parameters in a UTF8 database, reads it with
   * `COPY … TO STDOUT`. Other engines and statements give rows as usual. Default false.
   */
  readonly packed?: boolean;
}

/**
 * The rows of one statement. Iterate it once (rows) or use `batches()` (arrays of rows,
 * cheaper per row). Leaving a `for await` early closes it and frees the server-side work.
 */
export interface RowStream extends AsyncIterable<Row> {
  readonly columns: readonly Column[];
  batches(): AsyncIterable<Row[]>;
  /** Batches of rows or, for a stream opened with `packed`, of packed rows where the engine made them. */
  packedBatches(): AsyncIterable<Row[] | PackedBatch>;
  /** Rows handed to the caller so far. */
  readonly rowCount: number;
  /**
   * Rows received from the driver and not yet handed out, bounded by the batch size (a batch that
   * `batches()` has asked for ahead is not counted until it arrives).
   */
  readonly buffered: number;
  /** Stops early without an error (like `break`); resolves when the server-side work is freed. */
  close(): Promise<void>;
}

/** One group grant of the demo MIS permission model (sys_group_permission), per table. */
export interface TableGrant {
  readonly table: string;
  /** Every column except the ID fields (a grant with no column, as SIMS reports do). */
  readonly wholeTable: boolean;
  /** Columns granted one by one (ID fields, sensitive details), sorted. */
  readonly columns: readonly string[];
  readonly areas: readonly string[];
  readonly groups: readonly string[];
  /** `all`, or `own classes` when only the user's own classes are visible. */
  readonly scope: string;
}

export interface MisPermissions {
  /** The database login the connector uses. */
  readonly account: string;
  /** The MIS user looked up in sys_user (setting `misUser`, default the login), or null. */
  readonly misUser: string | null;
  readonly misUserFound: boolean;
  readonly misUserEnabled: boolean | null;
  /** MIS permission groups of that user, sorted. */
  readonly groups: readonly string[];
  /** Data areas those groups unlock, sorted. */
  readonly areas: readonly string[];
  readonly tables: readonly TableGrant[];
  /** What the database itself allows the login, where cheap to ask. */
  readonly database: {
    /** Tables of the MIS schema the login may SELECT; null when unknown. */
    readonly readableTables: readonly string[] | null;
    /** Whether the login could write if it were not for the connector's read-only mode; null when unknown. */
    readonly canWrite: boolean | null;
    /** Raw grant lines (MariaDB `SHOW GRANTS`, password hashes removed), when the engine has them. */
    readonly grants: readonly string[];
  };
  /** Why something above is missing or unknown. */
  readonly notes: readonly string[];
}

export interface MisConnector {
  readonly kind: MisKind;
  /** Where it connects, without secrets (`postgres://keystage@10.0.0.5:5432/sims`). */
  readonly display: string;
  /** Opens the connection (and checks the login). Later calls reconnect only if it was lost. */
  connect(): Promise<void>;
  /** `PostgreSQL 15.20`, `MariaDB 10.11.19`, `SQLite 3.50.4`, `Microsoft SQL Server 15.0.4435.7`. */
  serverVersion(): Promise<string>;
  /** Runs one statement read-only and streams its rows. One stream at a time per connector. */
  stream(sql: string, params?: readonly QueryParam[], options?: StreamOptions): Promise<RowStream>;
  /** Cancels the running stream (its reader gets `mis.cancelled`); resolves once the server stopped. */
  cancel(): Promise<void>;
  /** What the login may read: the MIS user's groups and the database's own grants. */
  permissions(): Promise<MisPermissions>;
  close(): Promise<void>;
}

export interface CommonSettings {
  /** The MIS user whose groups `permissions()` reads from sys_user. Default: the login. */
  readonly misUser?: string;
  /** Connect timeout in ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
}

export interface SqliteSettings extends CommonSettings {
  /** The database file; it must exist. Opened read-only. */
  readonly path: string;
  /** The schema name the file is also attached as, so `sims.stud_student` works. Default `sims`. */
  readonly attachAs?: string;
}

export interface PostgresSettings extends CommonSettings {
  /** `postgres://user@host:port/database?sslmode=require`, without a password. Or the fields below. */
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly user?: string;
  /** The MIS schema: first on the search_path and where sys_user is read. Default `sims`. */
  readonly schema?: string;
  /** TLS: false (default), true (verify), or 'no-verify'. */
  readonly ssl?: boolean | 'no-verify';
  /** application_name seen in pg_stat_activity. Default `keystage-agent`. */
  readonly applicationName?: string;
}

export interface MysqlSettings extends CommonSettings {
  /** `mysql://user@host:port/database`, without a password. Or the fields below. */
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  /** The MIS database (default schema, where sys_user is read). Default `sims`. */
  readonly database?: string;
  readonly user?: string;
  readonly ssl?: boolean | 'no-verify';
}

export interface MssqlSettings extends CommonSettings {
  readonly server: string;
  readonly port?: number;
  /** Named instance (`SIMS` in `SERVER\SIMS`); replaces the port (SQL Browser lookup). */
  readonly instanceName?: string;
  readonly database: string;
  readonly user: string;
  /** Windows (NTLM) domain of `user`; SQL Server authentication when absent. */
  readonly domain?: string;
  /** TLS; default true. */
  readonly encrypt?: boolean;
  /** Accept a self-signed server certificate; default false. */
  readonly trustServerCertificate?: boolean;
  /** The MIS schema; default `sims`. */
  readonly schema?: string;
  /**
   * Connect with ApplicationIntent=ReadOnly, so an availability group routes to a readable
   * secondary. Default false: a primary set to READ_WRITE connections only would refuse it.
   */
  readonly readOnlyIntent?: boolean;
  /** `read committed` (default) or `snapshot` (needs ALLOW_SNAPSHOT_ISOLATION ON). */
  readonly isolation?: 'read committed' | 'snapshot';
  /**
   * SQL Server has no read-only transaction, so by default the connector refuses a login
   * that can write (`mis.account_can_write`). Only for a DBA who knowingly accepts that.
   */
  readonly allowWritableAccount?: boolean;
}

export interface ConnectorSettings {
  sqlite: SqliteSettings;
  postgres: PostgresSettings;
  mysql: MysqlSettings;
  mssql: MssqlSettings;
}
