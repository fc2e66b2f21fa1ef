/**
 * SQL Server (mssql over tedious), the engine behind SIMS. SQL Server has NO read-only
 * transaction: the connector runs each statement in a transaction (READ COMMITTED, or
 * SNAPSHOT when configured) that is always rolled back, and refuses at connect a login
 * that can write (sysadmin, db_owner, db_datawriter, db_ddladmin, or INSERT/UPDATE/DELETE/
 * ALTER/CREATE TABLE on the database or the MIS schema) unless `allowWritableAccount`.
 * What really keeps it read-only is the login: db_datareader (or SELECT on the tables it
 * needs) and nothing else — see docs/mis-connectors.md.
 *
 * Rows stream (`request.stream = true`, array rows) into a bounded queue that pauses the
 * request when full; `cancel()` is `request.cancel()` (a TDS attention). No SQL Server runs
 * where this was written: this code is exercised by the contract suite only when
 * KEYSTAGE_TEST_MSSQL_URL is set; its pure parts are unit-tested (mssql.parts.spec.ts).
 */
import type mssql from 'mssql';
import { BaseConnector, type DatabaseAccess, type StartOptions } from '../connector.js';
import { MisError } from '../errors.js';
import type { BoundStatement } from '../params.js';
import { type BatchSource, RowQueue } from '../stream.js';
import type { CellValue, Column, MssqlSettings, Row } from '../types.js';
import {
  mapMssqlError,
  mssqlColumnType,
  mssqlConfig,
  mssqlInputType,
  mssqlInputValue,
  mssqlNormaliser,
  WRITE_CHECK_SQL,
  writeFindings,
} from './mssql.parts.js';

type Mssql = typeof mssql;

interface MssqlColumn {
  name: string;
  type?: { declaration?: string };
  scale?: number;
}

class MssqlSource implements BatchSource {
  private cols: Column[] = [];
  private fixers: [number, (v: unknown) => CellValue][] = [];
  private readonly queue: RowQueue;
  private readonly finished: Promise<void>;
  private recordsets = 0;
  private cancelled = false;

  constructor(
    private readonly tx: mssql.Transaction,
    private readonly request: mssql.Request,
    sql: string,
    maxRows: number,
  ) {
    this.queue = new RowQueue({ pause: () => request.pause(), resume: () => request.resume() }, maxRows);
    this.finished = new Promise((resolve) => {
      request.on('recordset', (columns: MssqlColumn[]) => {
        this.recordsets++;
        if (this.recordsets > 1) {
          this.queue.fail(
            new MisError('mis.query_failed', 'the statement returned more than one result set'),
          );
          void this.interrupt();
          return;
        }
        this.cols = columns.map((c) => ({
          name: c.name,
          type: mssqlColumnType(c.type?.declaration),
          dbType: c.type?.declaration ?? 'unknown',
        }));
        this.fixers = [];
        columns.forEach((c, i) => {
          const fix = mssqlNormaliser(c.type?.declaration, c.scale);
          if (fix) this.fixers.push([i, fix]);
        });
      });
      request.on('row', (row: unknown[]) => {
        for (const [i, fix] of this.fixers) if (row[i] !== null && row[i] !== undefined) row[i] = fix(row[i]);
        this.queue.push(row as Row);
      });
      request.on('error', (err: unknown) => this.queue.fail(err));
      request.on('done', () => {
        this.queue.end();
        resolve();
      });
    });
    request.query(sql);
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
    if (this.queue.done || this.cancelled) return;
    this.cancelled = true;
    this.request.cancel();
    // A paused request must run on to see the attention acknowledged.
    this.queue.discard();
  }

  async release(): Promise<void> {
    if (!this.queue.done) await this.interrupt();
    await this.finished;
    try {
      await this.tx.rollback();
    } catch (err) {
      // The server may already have ended the transaction (an error that dooms it).
      const code = (err as { code?: string }).code;
      if (code !== 'EABORT' && code !== 'ENOTBEGUN') throw err;
    }
  }
}

export class MssqlConnector extends BaseConnector {
  readonly kind = 'mssql' as const;
  readonly display: string;
  private readonly config: mssql.config;
  private readonly schema: string;
  private pool: mssql.ConnectionPool | null = null;
  private driver: Mssql | null = null;
  private account = '';

  constructor(
    private readonly settings: MssqlSettings,
    private readonly password: string | undefined,
  ) {
    super(settings);
    this.config = mssqlConfig(settings, password);
    this.schema = settings.schema ?? 'sims';
    const where = settings.instanceName
      ? `${settings.server}\\${settings.instanceName}`
      : `${settings.server}:${settings.port ?? 1433}`;
    this.display = `mssql://${encodeURIComponent(settings.user)}@${where}/${encodeURIComponent(settings.database)}`;
  }

  protected isOpen(): boolean {
    return this.pool?.connected === true;
  }

  protected async openConnection(): Promise<void> {
    if (!this.driver) this.driver = (await import('mssql')).default as unknown as Mssql;
    const pool = new this.driver.ConnectionPool(this.config);
    pool.on('error', () => {});
    try {
      await pool.connect();
      const info = await pool
        .request()
        .query(
          "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), CAST(SERVERPROPERTY('Edition') AS nvarchar(128)), SUSER_SNAME()",
        );
      const [version, edition, login] = (info.recordset[0] ?? []) as unknown as [string, string, string];
      this.version = `Microsoft SQL Server ${version} (${edition})`;
      this.account = login;
      if (!this.settings.allowWritableAccount) {
        const check = await pool
          .request()
          .input('schema', this.driver.NVarChar(128), this.schema)
          .query(WRITE_CHECK_SQL);
        const findings = writeFindings((check.recordset[0] ?? []) as unknown as unknown[]);
        if (findings.length > 0) {
          throw new MisError(
            'mis.account_can_write',
            `the SQL Server login "${this.settings.user}" can change data (${findings.join(', ')}); SQL Server has no read-only transaction, so give the login db_datareader only`,
          );
        }
      }
    } catch (err) {
      await pool.close().catch(() => {});
      throw err;
    }
    this.pool = pool;
  }

  protected async closeConnection(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close().catch(() => {});
  }

  drop(): void {
    const pool = this.pool;
    this.pool = null;
    void pool?.close().catch(() => {});
  }

  protected login(): string {
    return this.account;
  }

  protected misTable(name: string): string {
    return `${this.schema}.${name}`;
  }

  protected async startStatement(bound: BoundStatement, options: StartOptions): Promise<BatchSource> {
    const driver = this.driver as Mssql;
    const tx = new driver.Transaction(this.pool as mssql.ConnectionPool);
    await tx.begin(
      this.settings.isolation === 'snapshot'
        ? driver.ISOLATION_LEVEL.SNAPSHOT
        : driver.ISOLATION_LEVEL.READ_COMMITTED,
    );
    try {
      const request = new driver.Request(tx);
      request.stream = true;
      request.arrayRowMode = true;
      for (const p of bound.named) {
        const typeName = mssqlInputType(p.type);
        const value = mssqlInputValue(p);
        const type =
          typeName === 'NVarChar'
            ? driver.NVarChar(typeof value === 'string' && value.length > 4000 ? driver.MAX : 4000)
            : typeName === 'DateTime2'
              ? driver.DateTime2(3)
              : driver[typeName];
        request.input(p.name, type, value);
      }
      return new MssqlSource(tx, request, bound.sql, options.batchSize);
    } catch (err) {
      await tx.rollback().catch(() => {});
      throw err;
    }
  }

  protected async databaseAccess(): Promise<DatabaseAccess> {
    const rows = await this.collect(
      `SELECT t.name, HAS_PERMS_BY_NAME(QUOTENAME(s.name) + '.' + QUOTENAME(t.name), 'OBJECT', 'SELECT')
         FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
        WHERE s.name = :schema ORDER BY t.name`,
      [{ name: 'schema', type: 'string', value: this.schema }],
    );
    const write = await this.collect(WRITE_CHECK_SQL.replaceAll('@schema', ':schema'), [
      { name: 'schema', type: 'string', value: this.schema },
    ]);
    return {
      readableTables: rows.filter((r) => Number(r[1]) === 1).map((r) => String(r[0])),
      canWrite: writeFindings(write[0] ?? []).length > 0,
      grants: [],
      notes: [
        'SQL Server has no read-only transaction: statements run in a transaction that is always rolled back',
      ],
    };
  }

  mapError(err: unknown): MisError {
    const where = this.settings.instanceName
      ? `${this.settings.server}\\${this.settings.instanceName}`
      : `${this.settings.server}:${this.settings.port ?? 1433}`;
    return mapMssqlError(err, where, this.settings.user, this.password);
  }
}
