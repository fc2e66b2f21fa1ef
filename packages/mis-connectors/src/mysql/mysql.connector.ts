/**
 * MariaDB / MySQL (mysql2). Read-only by the database: the session is set to
 * `SET SESSION TRANSACTION READ ONLY` and every statement runs inside
 * `START TRANSACTION READ ONLY`, rolled back at the end. Both are needed: DDL such as
 * CREATE TABLE commits the open transaction implicitly and would run outside it, but the
 * session default refuses it (measured on MariaDB 10.11). The time limit is the server's
 * `max_statement_time` (MariaDB, seconds) or `max_execution_time` (MySQL, SELECT only).
 *
 * Statements are prepared (binary protocol: the server binds the values, nothing is
 * escaped client-side) and streamed row by row into a bounded queue that pauses the socket
 * when full. `cancel()` sends `KILL QUERY <id>` over a short second connection, then
 * drains what is still in flight, so the connection is idle and usable afterwards.
 */
import type { Connection, FieldPacket } from 'mysql2';
import {
  BaseConnector,
  checkIdentifier,
  type DatabaseAccess,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type StartOptions,
} from '../connector.js';
import { MisError, messageOf, NETWORK_CODES, networkReason, withoutSecret } from '../errors.js';
import type { BoundStatement, ScanOptions } from '../params.js';
import { type BatchSource, RowQueue } from '../stream.js';
import type { CellValue, Column, ColumnType, MysqlSettings, Row } from '../types.js';

type Mysql2 = typeof import('mysql2');

const TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'DECIMAL',
  1: 'TINY',
  2: 'SHORT',
  3: 'LONG',
  4: 'FLOAT',
  5: 'DOUBLE',
  6: 'NULL',
  7: 'TIMESTAMP',
  8: 'LONGLONG',
  9: 'INT24',
  10: 'DATE',
  11: 'TIME',
  12: 'DATETIME',
  13: 'YEAR',
  14: 'NEWDATE',
  15: 'VARCHAR',
  16: 'BIT',
  245: 'JSON',
  246: 'NEWDECIMAL',
  247: 'ENUM',
  248: 'SET',
  249: 'TINY_BLOB',
  250: 'MEDIUM_BLOB',
  251: 'LONG_BLOB',
  252: 'BLOB',
  253: 'VAR_STRING',
  254: 'STRING',
  255: 'GEOMETRY',
};

const BINARY_CHARSET = 63;

export function mysqlColumnType(
  field: Pick<FieldPacket, 'columnType' | 'characterSet' | 'columnLength'>,
): ColumnType {
  switch (field.columnType) {
    case 1:
    case 2:
    case 3:
    case 8:
    case 9:
    case 13:
      return 'integer';
    case 4:
    case 5:
      return 'number';
    case 0:
    case 246:
      return 'decimal';
    case 16:
      return field.columnLength === 1 ? 'boolean' : 'integer';
    case 10:
    case 14:
      return 'date';
    case 7:
    case 12:
      return 'datetime';
    case 11:
      return 'time';
    case 6:
      return 'unknown';
    case 255:
      return 'binary';
    case 245:
    case 247:
    case 248:
      return 'string';
    default:
      return field.characterSet === BINARY_CHARSET ? 'binary' : 'string';
  }
}

/** BIT(n) arrives as bytes: as a number, like every flag. */
function bitToNumber(v: unknown): CellValue {
  if (!(v instanceof Uint8Array)) return v as CellValue;
  let n = 0;
  for (const byte of v) n = n * 256 + byte;
  return n;
}

/** `2025-07-09 08:30:00.500000` → `2025-07-09 08:30:00.5`, as PostgreSQL prints it. */
function trimFraction(v: unknown): CellValue {
  if (typeof v !== 'string' || v.length <= 19) return v as CellValue;
  return v.replace(/\.?0+$/, '');
}

type Fixer = [number, (v: unknown) => CellValue];

function fixersFor(fields: readonly FieldPacket[]): Fixer[] {
  const out: Fixer[] = [];
  fields.forEach((f, i) => {
    if (f.columnType === 16) out.push([i, bitToNumber]);
    else if ((f.columnType === 7 || f.columnType === 12 || f.columnType === 11) && f.decimals > 0) {
      out.push([i, trimFraction]);
    }
  });
  return out;
}

interface MysqlTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  ssl: boolean | 'no-verify';
}

export function mysqlTarget(settings: MysqlSettings): MysqlTarget {
  let { host, port, database, user } = settings;
  if (settings.url !== undefined) {
    let u: URL;
    try {
      u = new URL(settings.url);
    } catch {
      throw new MisError('mis.bad_config', 'mysql: url is not a valid URL');
    }
    if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
      throw new MisError('mis.bad_config', 'mysql: url must start with mysql:// or mariadb://');
    }
    if (u.password) {
      throw new MisError(
        'mis.bad_config',
        'mysql: the url must not contain a password (it is stored separately)',
      );
    }
    host ??= decodeURIComponent(u.hostname) || undefined;
    port ??= u.port ? Number(u.port) : undefined;
    database ??= decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined;
    user ??= decodeURIComponent(u.username) || undefined;
  }
  if (!host) throw new MisError('mis.bad_config', 'mysql: host (or url) is required');
  if (!user) throw new MisError('mis.bad_config', 'mysql: user (or url) is required');
  return {
    host,
    port: port ?? 3306,
    database: checkIdentifier('mysql: database', database ?? 'sims'),
    user,
    ssl: settings.ssl ?? false,
  };
}

/** mysql2's callback API, as promises. */
function run(conn: Connection, sql: string): Promise<unknown[][]> {
  return new Promise((resolve, reject) => {
    conn.query({ sql, rowsAsArray: true }, (err, rows) => (err ? reject(err) : resolve(rows as unknown[][])));
  });
}

class MysqlSource implements BatchSource {
  private cols: Column[] = [];
  private fixers: Fixer[] = [];
  private readonly queue: RowQueue;
  private readonly finished: Promise<void>;
  private killed = false;

  constructor(
    private readonly owner: MysqlConnector,
    private readonly conn: Connection,
    private readonly sql: string,
    values: readonly unknown[],
    maxRows: number,
  ) {
    this.queue = new RowQueue({ pause: () => conn.pause(), resume: () => conn.resume() }, maxRows);
    const execute = conn.execute.bind(conn) as unknown as (o: object, v: unknown[]) => NodeJS.EventEmitter;
    const cmd = execute({ sql, rowsAsArray: true }, [...values]);
    this.finished = new Promise((resolve) => {
      cmd.on('fields', (fields: FieldPacket[]) => {
        this.cols = fields.map((f) => ({
          name: f.name,
          type: mysqlColumnType(f),
          dbType: TYPE_NAMES[f.columnType ?? -1] ?? `type ${f.columnType}`,
        }));
        this.fixers = fixersFor(fields);
      });
      cmd.on('result', (row: unknown) => {
        // A statement without a result set reports a ResultSetHeader instead of rows.
        if (!Array.isArray(row)) return;
        for (const [i, fix] of this.fixers) if (row[i] !== null) row[i] = fix(row[i]);
        this.queue.push(row as Row);
      });
      cmd.on('error', (err: unknown) => {
        this.queue.fail(err);
        resolve();
      });
      cmd.on('end', () => {
        this.queue.end();
        resolve();
      });
    });
  }

  columns(): readonly Column[] {
    return this.cols;
  }

  buffered(): number {
    return this.queue.size;
  }

  next(): Promise<Row[] | null> {
    return this.queue.take();
  }

  async interrupt(): Promise<void> {
    if (this.queue.done || this.killed) return;
    this.killed = true;
    await this.owner.killQuery();
    // The server notices the kill between rows: let it write what it has, and drop it.
    this.queue.discard();
  }

  async release(): Promise<void> {
    if (!this.queue.done) await this.interrupt();
    await this.finished;
    try {
      await run(this.conn, 'ROLLBACK');
    } catch (err) {
      // A KILL QUERY that arrived late can hit the ROLLBACK; once more is enough.
      if ((err as { errno?: number }).errno !== 1317) throw err;
      await run(this.conn, 'ROLLBACK');
    }
    // The cached statement's key includes rowsAsArray, so unprepare with the same options.
    (this.conn.unprepare as unknown as (o: object) => void)({ sql: this.sql, rowsAsArray: true });
  }
}

export class MysqlConnector extends BaseConnector {
  readonly kind = 'mysql' as const;
  readonly display: string;
  private readonly target: MysqlTarget;
  private conn: Connection | null = null;
  private mysql: Mysql2 | null = null;
  private threadId = 0;
  private account = '';
  private mariadb = true;
  private backslashEscapes = true;

  constructor(
    private readonly settings: MysqlSettings,
    private readonly password: string | undefined,
  ) {
    super(settings);
    this.target = mysqlTarget(settings);
    const t = this.target;
    this.display = `mysql://${encodeURIComponent(t.user)}@${t.host}:${t.port}/${t.database}`;
  }

  private async openRaw(withDatabase: boolean): Promise<Connection> {
    if (!this.mysql) this.mysql = (await import('mysql2')).default as unknown as Mysql2;
    const t = this.target;
    const conn = this.mysql.createConnection({
      host: t.host,
      port: t.port,
      user: t.user,
      password: this.password ?? '',
      ...(withDatabase ? { database: t.database } : {}),
      charset: 'utf8mb4',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
      decimalNumbers: false,
      jsonStrings: true,
      multipleStatements: false,
      connectTimeout: this.settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      enableKeepAlive: true,
      // No LOAD DATA LOCAL: the server must never be able to ask the agent for a file.
      flags: ['-LOCAL_FILES'],
      ...(t.ssl === false ? {} : { ssl: { rejectUnauthorized: t.ssl !== 'no-verify' } }),
    });
    conn.on('error', () => {
      if (this.conn === conn) this.drop();
    });
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      conn.destroy();
      throw err;
    }
    return conn;
  }

  protected isOpen(): boolean {
    return this.conn !== null;
  }

  protected async openConnection(): Promise<void> {
    const conn = await this.openRaw(true);
    try {
      const [info] = await run(conn, 'SELECT VERSION(), CONNECTION_ID(), CURRENT_USER(), @@SESSION.sql_mode');
      const [version, id, user, sqlMode] = (info ?? []) as [string, number, string, string];
      this.mariadb = /mariadb/i.test(version);
      this.version = `${this.mariadb ? 'MariaDB' : 'MySQL'} ${version.split('-')[0]}`;
      this.threadId = Number(id);
      this.account = String(user).replace(/@[^@]*$/, '');
      this.backslashEscapes = !String(sqlMode).includes('NO_BACKSLASH_ESCAPES');
      await run(conn, 'SET SESSION TRANSACTION READ ONLY');
      await run(conn, "SET time_zone = '+00:00'");
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.conn = conn;
  }

  protected async closeConnection(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (conn) await new Promise<void>((resolve) => conn.end(() => resolve()));
  }

  drop(): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
  }

  protected override scanOptions(): ScanOptions {
    return { backslashEscapes: this.backslashEscapes };
  }

  protected login(): string {
    return this.account;
  }

  protected misTable(name: string): string {
    return `\`${this.target.database}\`.${name}`;
  }

  /** `KILL QUERY` for our statement, from a second short connection (a user may kill its own). */
  async killQuery(): Promise<void> {
    let side: Connection | null = null;
    try {
      side = await this.openRaw(false);
      await run(side, `KILL QUERY ${this.threadId}`);
    } catch {
      // No second connection: closing ours stops the statement too.
      this.drop();
    } finally {
      side?.destroy();
    }
  }

  protected async startStatement(bound: BoundStatement, options: StartOptions): Promise<BatchSource> {
    const conn = this.conn as Connection;
    // Again for every statement: a previous one may have changed the session.
    await run(conn, 'SET SESSION TRANSACTION READ ONLY');
    const ms = options.timeoutMs;
    if (this.mariadb) {
      await run(
        conn,
        ms > 0
          ? `SET SESSION max_statement_time = ${(ms / 1000).toFixed(3)}`
          : 'SET SESSION max_statement_time = @@GLOBAL.max_statement_time',
      );
    } else {
      await run(
        conn,
        ms > 0
          ? `SET SESSION max_execution_time = ${ms}`
          : 'SET SESSION max_execution_time = @@GLOBAL.max_execution_time',
      );
    }
    await run(conn, 'START TRANSACTION READ ONLY');
    return new MysqlSource(this, conn, bound.sql, bound.values, options.batchSize);
  }

  protected async databaseAccess(): Promise<DatabaseAccess> {
    const raw = (await run(this.conn as Connection, 'SHOW GRANTS')).map((r) => String(r[0]));
    // The user's own line can carry a password hash.
    const grants = raw.map((g) =>
      g.replace(/IDENTIFIED (BY PASSWORD|VIA \S+ USING|BY) '[^']*'/gi, "IDENTIFIED $1 '***'"),
    );
    const db = this.target.database.toLowerCase();
    let all = false;
    let canWrite = false;
    const tables = new Set<string>();
    for (const g of grants) {
      const m = /^GRANT (.+?) ON (\S+) TO /i.exec(g);
      if (!m) continue;
      const privs = (m[1] ?? '').toUpperCase();
      const on = (m[2] ?? '').replace(/`/g, '').toLowerCase();
      const [scopeDb, scopeTable] = on.split('.');
      if (scopeDb !== '*' && scopeDb !== db) continue;
      const reads = /\bALL PRIVILEGES\b|\bSELECT\b/.test(privs);
      if (/\bALL PRIVILEGES\b|\bINSERT\b|\bUPDATE\b|\bDELETE\b|\bCREATE\b|\bDROP\b|\bALTER\b/.test(privs))
        canWrite = true;
      if (!reads) continue;
      if (scopeTable === '*') all = true;
      else if (scopeTable) tables.add(scopeTable);
    }
    let readable: string[];
    if (all) {
      const rows = await this.collect(
        'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db ORDER BY TABLE_NAME',
        [{ name: 'db', type: 'string', value: this.target.database }],
      );
      readable = rows.map((r) => String(r[0]));
    } else {
      readable = [...tables].sort();
    }
    return { readableTables: readable, canWrite, grants };
  }

  mapError(err: unknown): MisError {
    return mapMysqlError(err, `${this.target.host}:${this.target.port}`, this.target.user, this.password);
  }
}

/** Error numbers whose messages name SQL objects or quote the (agreed) SQL text, never row values. */
const SAFE_ERRNOS = new Set([
  1044, 1045, 1046, 1049, 1052, 1054, 1060, 1064, 1109, 1111, 1140, 1142, 1143, 1146, 1149, 1222, 1227, 1235,
  1241, 1247, 1248, 1290, 1305, 1317, 1370, 1792, 1969, 3024,
]);

export function mapMysqlError(err: unknown, where: string, user: string, password?: string): MisError {
  if (err instanceof MisError) return err;
  const e = err as { code?: string; errno?: number; fatal?: boolean };
  const code = e.code ?? '';
  const errno = e.errno ?? 0;
  const msg = withoutSecret(messageOf(err), password);
  const named = (text: string) =>
    SAFE_ERRNOS.has(errno) ? `${text}: ${msg}` : `${text} (error ${errno} ${code})`;
  if (NETWORK_CODES.has(code)) {
    return new MisError(
      'mis.unavailable',
      `cannot reach MariaDB/MySQL at ${where}: ${networkReason(code)}`,
      code,
    );
  }
  if (
    code === 'PROTOCOL_CONNECTION_LOST' ||
    code === 'PROTOCOL_SEQUENCE_TIMEOUT' ||
    code === 'ER_CON_COUNT_ERROR'
  ) {
    return new MisError('mis.unavailable', `lost the connection to MariaDB/MySQL at ${where}`, code);
  }
  if (errno === 1045 || code === 'ER_ACCESS_DENIED_ERROR' || errno === 1698) {
    return new MisError(
      'mis.auth_failed',
      `MariaDB/MySQL at ${where} refused the login for user "${user}"`,
      code,
    );
  }
  if (errno === 1049) return new MisError('mis.unavailable', named(`MariaDB/MySQL at ${where}`), code);
  if ([1044, 1142, 1143, 1227, 1370].includes(errno)) {
    return new MisError('mis.permission_denied', named('MariaDB/MySQL refused the statement'), code);
  }
  if (errno === 1792 || errno === 1290) {
    return new MisError(
      'mis.permission_denied',
      named('MariaDB/MySQL refused a write in the read-only transaction'),
      code,
    );
  }
  if (errno === 1969 || errno === 3024) {
    return new MisError('mis.timeout', 'the query passed its time limit and was stopped by the server', code);
  }
  if (errno === 1317) return new MisError('mis.cancelled', 'the query was cancelled', code);
  if (errno > 0) return new MisError('mis.query_failed', named('MariaDB/MySQL query failed'), code);
  if (e.fatal)
    return new MisError('mis.unavailable', `lost the connection to MariaDB/MySQL at ${where}`, code);
  return new MisError('mis.query_failed', `MariaDB/MySQL query failed: ${msg}`, code || undefined);
}
