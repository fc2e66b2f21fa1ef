/// <reference path="./pg-copy-streams.d.ts" />
/**
 * PostgreSQL (pg + pg-cursor). Read-only by the database: the session starts with
 * `default_transaction_read_only=on` and every statement runs inside
 * `BEGIN TRANSACTION READ ONLY` (+ `SET LOCAL statement_timeout`), rolled back at the end.
 * Rows come through a cursor (a named portal fetched in bounded batches), so the server
 * sends no more than one batch ahead. `cancel()` closes the portal, or — when a fetch is in
 * flight — asks the server to cancel it (`pg_cancel_backend` from a short second
 * connection). Type parsers keep dates and timestamps as text (3–4× faster than `Date`).
 */
import type pg from 'pg';
import type Cursor from 'pg-cursor';
import {
  BaseConnector,
  checkIdentifier,
  type DatabaseAccess,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type StartOptions,
} from '../connector.js';
import { errorCodeOf, MisError, messageOf, NETWORK_CODES, networkReason, withoutSecret } from '../errors.js';
import type { PackedBatch } from '../packed.js';
import type { BoundStatement } from '../params.js';
import { type BatchSource, rowsPerBatch } from '../stream.js';
import type { Column, ColumnType, PostgresSettings, Row } from '../types.js';
import { BinaryKind, binaryKindOf, CopyBinaryPacker } from './copy-binary.js';
import { CopyTextPacker, copyKindOf } from './copy-text.js';

/** PostgreSQL type OIDs → normalised type and a readable name. */
const PG_TYPES: Readonly<Record<number, readonly [ColumnType, string]>> = {
  16: ['boolean', 'bool'],
  17: ['binary', 'bytea'],
  18: ['string', 'char'],
  19: ['string', 'name'],
  20: ['integer', 'int8'],
  21: ['integer', 'int2'],
  23: ['integer', 'int4'],
  25: ['string', 'text'],
  26: ['integer', 'oid'],
  114: ['string', 'json'],
  142: ['string', 'xml'],
  700: ['number', 'float4'],
  701: ['number', 'float8'],
  790: ['decimal', 'money'],
  1042: ['string', 'bpchar'],
  1043: ['string', 'varchar'],
  1082: ['date', 'date'],
  1083: ['time', 'time'],
  1114: ['datetime', 'timestamp'],
  1184: ['datetime', 'timestamptz'],
  1186: ['string', 'interval'],
  1266: ['time', 'timetz'],
  1700: ['decimal', 'numeric'],
  2950: ['string', 'uuid'],
  3802: ['string', 'jsonb'],
};

export function pgColumnType(oid: number): { type: ColumnType; dbType: string } {
  const t = PG_TYPES[oid];
  // Anything else (arrays, ranges, enums, …) arrives as its PostgreSQL text form.
  return t ? { type: t[0], dbType: t[1] } : { type: 'string', dbType: `oid ${oid}` };
}

const asText = (v: string): string => v;
const asNumber = (v: string): number => Number(v);
const asInt8 = (v: string): number | string => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
};
const asFlag = (v: string): number => (v === 't' ? 1 : 0);
// The session runs in UTC, so timestamptz text ends in +00.
const asUtc = (v: string): string => (v.endsWith('+00') ? `${v.slice(0, -3)}Z` : v);

/** Text parsers for every type: numbers become numbers, bool 0/1, everything else stays text. */
export function pgTypeParsers(types: typeof pg.types): pg.CustomTypesConfig {
  const bytea = types.getTypeParser(17, 'text');
  return {
    getTypeParser: ((oid: number) => {
      switch (oid) {
        case 16:
          return asFlag;
        case 17:
          return bytea;
        case 20:
          return asInt8;
        case 21:
        case 23:
        case 26:
        case 700:
        case 701:
          return asNumber;
        case 1184:
          return asUtc;
        default:
          return asText;
      }
    }) as pg.CustomTypesConfig['getTypeParser'],
  };
}

interface PgTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  ssl: boolean | 'no-verify';
}

/** Settings → where to connect; a URL must not hold a password (it is passed separately). */
export function pgTarget(settings: PostgresSettings): PgTarget {
  let host = settings.host;
  let port = settings.port;
  let database = settings.database;
  let user = settings.user;
  let ssl = settings.ssl ?? false;
  if (settings.url !== undefined) {
    let u: URL;
    try {
      u = new URL(settings.url);
    } catch {
      throw new MisError('mis.bad_config', 'postgres: url is not a valid URL');
    }
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
      throw new MisError('mis.bad_config', 'postgres: url must start with postgres://');
    }
    if (u.password) {
      throw new MisError(
        'mis.bad_config',
        'postgres: the url must not contain a password (it is stored separately)',
      );
    }
    host ??= decodeURIComponent(u.hostname) || undefined;
    port ??= u.port ? Number(u.port) : undefined;
    database ??= decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined;
    user ??= decodeURIComponent(u.username) || undefined;
    const mode = u.searchParams.get('sslmode');
    if (settings.ssl === undefined && mode) {
      ssl =
        mode === 'disable' || mode === 'allow' || mode === 'prefer'
          ? false
          : mode === 'require'
            ? 'no-verify'
            : true;
    }
  }
  if (!host) throw new MisError('mis.bad_config', 'postgres: host (or url) is required');
  if (!user) throw new MisError('mis.bad_config', 'postgres: user (or url) is required');
  return { host, port: port ?? 5432, database: database ?? user, user, ssl };
}

/** Ends the statement's transaction. A cancel request that arrived late may hit the ROLLBACK itself; once more is enough. */
async function rollback(client: pg.Client): Promise<void> {
  try {
    await client.query('ROLLBACK');
  } catch (err) {
    if (errorCodeOf(err) !== '57014') throw err;
    await client.query('ROLLBACK');
  }
}

class PgSource implements BatchSource {
  private cols: Column[] = [];
  private reading = false;
  private ended = false;
  private failed = false;
  private limit: number;

  constructor(
    private readonly owner: PostgresConnector,
    private readonly client: pg.Client,
    private readonly cursor: Cursor,
    private readonly maxRows: number,
  ) {
    // A small first fetch: the row width is unknown until rows arrive.
    this.limit = Math.min(maxRows, 16);
  }

  columns(): readonly Column[] {
    return this.cols;
  }

  buffered(): number {
    return 0;
  }

  next(): Promise<Row[] | null> {
    if (this.ended || this.failed) return Promise.resolve(null);
    this.reading = true;
    const asked = this.limit;
    return new Promise((resolve, reject) => {
      this.cursor.read(asked, (err, rows, result) => {
        this.reading = false;
        if (err) {
          this.failed = true;
          reject(err);
          return;
        }
        if (this.cols.length === 0 && result?.fields) {
          this.cols = result.fields.map((f) => ({ name: f.name, ...pgColumnType(f.dataTypeID) }));
        }
        if (rows.length < asked) this.ended = true;
        if (rows.length === 0) {
          resolve(null);
          return;
        }
        this.limit = rowsPerBatch(rows[0] as Row, this.maxRows);
        resolve(rows as Row[]);
      });
    });
  }

  async interrupt(): Promise<void> {
    // Between fetches the portal is merely suspended: closing it (in release) stops it.
    if (this.reading) await this.owner.cancelServerStatement();
  }

  async release(): Promise<void> {
    if (!this.failed && !this.ended) await this.cursor.close();
    await rollback(this.client);
  }
}

/**
 * Parses and describes one statement without running it (Parse, Describe, Sync): its result
 * columns, or null for a statement that returns none. The extended protocol takes exactly one
 * statement, so text that is not one complete statement is refused here.
 */
class DescribeStatement implements pg.Submittable {
  private fields: pg.FieldDef[] | null = null;
  private settled = false;

  constructor(
    readonly text: string,
    private readonly done: (err: Error | null, fields: pg.FieldDef[] | null) => void,
  ) {}

  submit(connection: unknown): void {
    const c = connection as {
      parse(q: { text: string; name: string; types: number[] }): void;
      describe(m: { type: 'S'; name: string }): void;
      sync(): void;
    };
    c.parse({ text: this.text, name: '', types: [] });
    c.describe({ type: 'S', name: '' });
    c.sync();
  }

  handleRowDescription(msg: { fields: pg.FieldDef[] }): void {
    this.fields = msg.fields;
  }

  handleError(err: Error): void {
    this.settle(err);
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  handleEmptyQuery(): void {}
  handleCommandComplete(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}

  private settle(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.done(err, err ? null : this.fields);
  }
}

/** Packed bytes per batch of the COPY path (the agent seals ≈ 1 MiB per chunk). */
const COPY_BATCH_BYTES = 1024 * 1024;

/**
 * Whether a statement starts as a query (`SELECT`, `WITH`, `VALUES`, `TABLE`, after whitespace,
 * comments and parentheses): the statements the COPY path takes. A loop, not a regular
 * expression, so that no text can make it slow.
 */
function startsAsQuery(sql: string): boolean {
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i] as string;
    if (ch === '(' || /\s/.test(ch)) i++;
    else if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      if (nl < 0) return false;
      i = nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) return false;
      i = close + 2;
    } else break;
  }
  return /^(?:select|with|values|table)\b/i.test(sql.slice(i, i + 7));
}

/** The statement without trailing whitespace and semicolons (a loop: no quadratic regex). */
function withoutTrailingSemicolons(sql: string): string {
  let end = sql.length;
  while (end > 0 && (sql[end - 1] === ';' || /\s/.test(sql[end - 1] as string))) end--;
  return sql.slice(0, end);
}

/**
 * The rows of `COPY (<statement>) TO STDOUT`, packed as they arrive (see copy-text.ts). The
 * server streams the whole result without waiting for fetches; the socket is read only as fast
 * as batches are taken, so it stays bounded by the stream's buffer and TCP.
 */
class PgCopySource implements BatchSource {
  private readonly iterator: AsyncIterator<Buffer>;
  private ended = false;
  private failed = false;
  private cancelled = false;

  constructor(
    private readonly owner: PostgresConnector,
    private readonly client: pg.Client,
    stream: AsyncIterable<Buffer>,
    private readonly cols: Column[],
    private readonly packer: CopyTextPacker | CopyBinaryPacker,
  ) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  columns(): readonly Column[] {
    return this.cols;
  }

  buffered(): number {
    return this.packer.pendingRows;
  }

  async next(): Promise<PackedBatch | null> {
    if (this.ended || this.failed) return this.packer.take();
    while (this.packer.packedBytes < COPY_BATCH_BYTES) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.iterator.next();
      } catch (err) {
        this.failed = true;
        throw err;
      }
      if (r.done) {
        this.ended = true;
        this.packer.end();
        break;
      }
      // A row the packer refuses leaves the COPY running: release() cancels and drains it.
      this.packer.write(r.value);
    }
    return this.packer.take();
  }

  async interrupt(): Promise<void> {
    // A COPY runs on until its end whether or not it is read: cancel it on the server.
    if (!this.ended && !this.failed && !this.cancelled) {
      this.cancelled = true;
      await this.owner.cancelServerStatement();
    }
  }

  async release(): Promise<void> {
    if (!this.ended && !this.failed) {
      await this.interrupt();
      // Read what the server sent before it stopped, to the error its cancel ends the COPY with.
      try {
        while (!(await this.iterator.next()).done) {
          // discarded
        }
      } catch {
        // 57014 (cancelled), as asked
      }
    }
    await rollback(this.client);
  }
}

export class PostgresConnector extends BaseConnector {
  readonly kind = 'postgres' as const;
  /**
   * A cursor fetch is a round trip: 2,000 rows per fetch read ~15 % faster than 500 here (see
   * docs/benchmarks-pipeline.md); batches stay bounded in bytes by `rowsPerBatch`.
   */
  protected override readonly defaultBatchSize = 2000;
  readonly display: string;
  private readonly target: PgTarget;
  private readonly schema: string;
  private client: pg.Client | null = null;
  private pgModule: typeof pg | null = null;
  private types: pg.CustomTypesConfig | null = null;
  private backendPid = 0;
  private account = '';
  /** The database's encoding is UTF8: its text is valid UTF-8, so COPY text can be passed on as bytes. */
  private utf8 = false;
  /**
   * Timestamps are 64-bit microseconds (always since PostgreSQL 10; a 9.x server built with
   * `--disable-integer-datetimes` sends them as float8 seconds, which copy-binary.ts does not read).
   */
  private integerDatetimes = false;

  constructor(
    private readonly settings: PostgresSettings,
    private readonly password: string | undefined,
  ) {
    super(settings);
    this.target = pgTarget(settings);
    this.schema = checkIdentifier('postgres: schema', settings.schema ?? 'sims');
    const t = this.target;
    this.display = `postgres://${encodeURIComponent(t.user)}@${t.host}:${t.port}/${encodeURIComponent(t.database)}`;
  }

  private clientConfig(withSessionOptions: boolean): pg.ClientConfig {
    const t = this.target;
    return {
      host: t.host,
      port: t.port,
      database: t.database,
      user: t.user,
      password: this.password ?? '',
      ssl: t.ssl === false ? false : t.ssl === 'no-verify' ? { rejectUnauthorized: false } : true,
      connectionTimeoutMillis: this.settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      application_name: this.settings.applicationName ?? 'keystage-agent',
      keepAlive: true,
      ...(withSessionOptions
        ? {
            options: `-c default_transaction_read_only=on -c TimeZone=UTC -c DateStyle=ISO -c search_path=${this.schema},public`,
            types: this.types as pg.CustomTypesConfig,
          }
        : {}),
    };
  }

  protected isOpen(): boolean {
    return this.client !== null;
  }

  protected async openConnection(): Promise<void> {
    if (!this.pgModule) {
      this.pgModule = (await import('pg')).default;
      this.types = pgTypeParsers(this.pgModule.types);
    }
    const client = new this.pgModule.Client(this.clientConfig(true));
    // A connection dropped by the server must not crash the agent; the next stream reconnects.
    client.on('error', () => {
      if (this.client === client) this.drop();
    });
    try {
      await client.connect();
      const r = await client.query<[string, number, string, string, string]>({
        text: "SELECT current_setting('server_version'), pg_backend_pid(), current_user, current_setting('server_encoding'), current_setting('integer_datetimes')",
        rowMode: 'array',
      });
      const [version, pid, user, encoding, integerDatetimes] = r.rows[0] as [
        string,
        number,
        string,
        string,
        string,
      ];
      this.version = `PostgreSQL ${version.split(' ')[0]}`;
      this.backendPid = pid;
      this.account = user;
      this.utf8 = encoding === 'UTF8';
      this.integerDatetimes = integerDatetimes === 'on';
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    this.client = client;
  }

  protected async closeConnection(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  drop(): void {
    const client = this.client;
    this.client = null;
    // end() closes the socket even with a query in flight; its error is of no interest now.
    client?.end().catch(() => {});
  }

  protected login(): string {
    return this.account;
  }

  protected misTable(name: string): string {
    return `${this.schema}.${name}`;
  }

  /** Cancels the statement running on our backend, from a second short connection. */
  async cancelServerStatement(): Promise<void> {
    const pid = this.backendPid;
    if (!this.pgModule || !pid) return;
    const side = new this.pgModule.Client(this.clientConfig(false));
    side.on('error', () => {});
    try {
      await side.connect();
      await side.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      // Cannot reach the server a second time: dropping our connection stops the statement too.
      this.drop();
    } finally {
      await side.end().catch(() => {});
    }
  }

  protected async startStatement(bound: BoundStatement, options: StartOptions): Promise<BatchSource> {
    const client = this.client as pg.Client;
    const { default: CursorClass } = await import('pg-cursor');
    const setup =
      options.timeoutMs > 0
        ? `BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${options.timeoutMs}`
        : 'BEGIN TRANSACTION READ ONLY';
    try {
      await client.query(setup);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
    // COPY takes no parameters; a `;` (but a trailing one) would not fit inside its parentheses.
    const statement = withoutTrailingSemicolons(bound.sql);
    if (
      options.packed &&
      bound.values.length === 0 &&
      this.utf8 &&
      !statement.includes(';') &&
      startsAsQuery(statement)
    ) {
      try {
        const copy = await this.startCopy(client, statement);
        if (copy) return copy;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    const cursor = client.query(
      new CursorClass(bound.sql, [...bound.values], {
        rowMode: 'array',
        types: this.types as pg.CustomTypesConfig,
      }),
    );
    return new PgSource(this, client, cursor, options.batchSize);
  }

  /**
   * The COPY path: the statement is first parsed alone (one complete statement, or the server
   * refuses it) and described (its columns and types; nothing runs), then streamed as
   * `COPY (\n<statement>\n) TO STDOUT`. Being one complete statement, its text cannot end inside a
   * string, a comment or a parenthesis, so it stays inside COPY's parentheses. Null (use the
   * cursor) for a statement without result columns.
   */
  private async startCopy(client: pg.Client, sql: string): Promise<PgCopySource | null> {
    const fields = await new Promise<pg.FieldDef[] | null>((resolve, reject) => {
      client.query(new DescribeStatement(sql, (err, f) => (err ? reject(err) : resolve(f))));
    });
    if (!fields || fields.length === 0) return null;
    const { to } = await import('pg-copy-streams');
    // Binary when every column's type is one copy-binary.ts reads; text otherwise.
    const binaryKinds = fields.map((f) => binaryKindOf(f.dataTypeID));
    const binary = binaryKinds.every(
      (k) =>
        k !== undefined &&
        (this.integerDatetimes || (k !== BinaryKind.Timestamp && k !== BinaryKind.Timestamptz)),
    );
    const packer = binary
      ? new CopyBinaryPacker(binaryKinds as BinaryKind[])
      : // bytea through the cursor path's own parser, so both agree on it.
        new CopyTextPacker(
          fields.map((f) => copyKindOf(f.dataTypeID)),
          (this.types as pg.CustomTypesConfig).getTypeParser(17, 'text') as (text: string) => Uint8Array,
        );
    const format = packer instanceof CopyBinaryPacker ? ' (FORMAT binary)' : '';
    const stream = client.query(to(`COPY (\n${sql}\n) TO STDOUT${format}`));
    // pg-copy-streams emits its error even when nothing reads yet (a cancel during open): keep it
    // as the stream's error, which a later read (or the drain in release) then gets.
    stream.on('error', (err) => {
      if (!stream.destroyed) stream.destroy(err);
    });
    const cols = fields.map((f) => ({ name: f.name, ...pgColumnType(f.dataTypeID) }));
    return new PgCopySource(this, client, stream, cols, packer);
  }

  protected async databaseAccess(): Promise<DatabaseAccess> {
    const schema = [{ name: 'schema', type: 'string' as const, value: this.schema }];
    const tables = await this.collect(
      `SELECT c.relname,
              has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'),
              has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :schema AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        ORDER BY c.relname`,
      schema,
    );
    const create = await this.collect(
      `SELECT has_schema_privilege(n.oid, 'CREATE') FROM pg_catalog.pg_namespace n WHERE n.nspname = :schema`,
      schema,
    );
    const notes = create.length === 0 ? [`schema ${this.schema} does not exist`] : [];
    return {
      readableTables: tables.filter((r) => r[1] === 1).map((r) => String(r[0])),
      canWrite: tables.some((r) => r[2] === 1) || create.some((r) => r[0] === 1),
      grants: [],
      notes,
    };
  }

  mapError(err: unknown): MisError {
    return mapPgError(err, `${this.target.host}:${this.target.port}`, this.target.user, this.password);
  }
}

/** SQLSTATE classes whose messages name SQL objects, never row values. */
const SAFE_CLASSES = new Set(['0A', '25', '28', '2B', '3D', '3F', '40', '42', '53', '54', '55', '57', '08']);

export function mapPgError(err: unknown, where: string, user: string, password?: string): MisError {
  if (err instanceof MisError) return err;
  const code = errorCodeOf(err) ?? '';
  const raw = messageOf(err);
  const msg = withoutSecret(raw, password);
  if (NETWORK_CODES.has(code)) {
    return new MisError(
      'mis.unavailable',
      `cannot reach PostgreSQL at ${where}: ${networkReason(code)}`,
      code,
    );
  }
  if (/timeout expired|connection timeout/i.test(raw)) {
    return new MisError(
      'mis.unavailable',
      `cannot reach PostgreSQL at ${where}: connection timed out`,
      'ETIMEDOUT',
    );
  }
  if (/Connection terminated|Client has encountered a connection error|not queryable/i.test(raw)) {
    return new MisError(
      'mis.unavailable',
      `lost the connection to PostgreSQL at ${where}`,
      code || 'ECONNRESET',
    );
  }
  if (code === '28P01' || code === '28000') {
    return new MisError(
      'mis.auth_failed',
      `PostgreSQL at ${where} refused the login for user "${user}"`,
      code,
    );
  }
  if (code === '3D000') {
    return new MisError('mis.unavailable', `PostgreSQL at ${where}: ${msg}`, code);
  }
  if (code === '42501') return new MisError('mis.permission_denied', `PostgreSQL: ${msg}`, code);
  if (code === '25006') {
    return new MisError(
      'mis.permission_denied',
      `PostgreSQL refused a write in the read-only transaction: ${msg}`,
      code,
    );
  }
  if (code === '57014') {
    return /statement timeout/i.test(raw)
      ? new MisError('mis.timeout', 'the query passed its time limit and was stopped by PostgreSQL', code)
      : new MisError('mis.cancelled', 'the query was cancelled', code);
  }
  if (code === '53300' || code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('08')) {
    return new MisError(
      'mis.unavailable',
      `PostgreSQL at ${where} is not accepting the connection: ${msg}`,
      code,
    );
  }
  if (/^[0-9A-Z]{5}$/.test(code)) {
    return SAFE_CLASSES.has(code.slice(0, 2))
      ? new MisError('mis.query_failed', `PostgreSQL: ${msg}`, code)
      : new MisError('mis.query_failed', `PostgreSQL query failed (SQLSTATE ${code})`, code);
  }
  return new MisError('mis.query_failed', `PostgreSQL query failed: ${msg}`, code || undefined);
}
