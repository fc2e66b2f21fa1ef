/**
 * One small interface over the three databases the demo MIS lives in, used by `mutate`
 * and by tests. SQL uses `?` placeholders and table names from `table()`; results come
 * back as plain objects. Dates, timestamps and BIGINTs are strings in PostgreSQL and
 * MariaDB, and what was stored (text, numbers) in SQLite.
 */
import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import type { Dialect } from './ddl.js';
import { DemoMisError } from './errors.js';
import type { Row, Value } from './generator.js';
import { connectMysql } from './mysql-connect.js';
import { connectPostgres } from './pg-connect.js';
import type { TableDef } from './tables.js';
import { parseTarget, type Target } from './targets.js';

export type DbRow = Record<string, unknown>;

export interface MisConnection {
  readonly dialect: Dialect;
  readonly display: string;
  /** The qualified name of a demo MIS table (`sims.stud_student`, `` `sims`.stud_student ``). */
  table(name: string): string;
  all(sql: string, params?: readonly Value[]): Promise<DbRow[]>;
  run(sql: string, params?: readonly Value[]): Promise<void>;
  insert(table: TableDef, rows: readonly Row[]): Promise<void>;
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  close(): Promise<void>;
}

/** Opens a demo MIS: a SQLite file path, a postgres:// URL or a mysql:// URL. */
export async function openMis(target: string | Target): Promise<MisConnection> {
  const t = typeof target === 'string' ? parseTarget(target) : target;
  switch (t.kind) {
    case 'sqlite':
      return openSqlite(t.path);
    case 'postgres':
      return new PgMis(await connectPostgres(t), t.display);
    case 'mysql':
      return new MysqlMis(await connectMysql(t), t.display, t.database);
  }
}

function openSqlite(path: string): MisConnection {
  if (!existsSync(path))
    throw new DemoMisError('demo_mis.target_missing', `database file not found: ${path}`);
  if (statSync(path).isDirectory())
    throw new DemoMisError('demo_mis.target_missing', `not a database file: ${path}`);
  const db = new Database(':memory:');
  try {
    db.prepare('ATTACH DATABASE ? AS sims').run(path);
    db.prepare('SELECT count(*) FROM sims.sqlite_master').get();
  } catch (err) {
    db.close();
    throw new DemoMisError('demo_mis.not_demo_database', `not a SQLite database: ${path}`, { cause: err });
  }
  return new SqliteMis(db, path);
}

class SqliteMis implements MisConnection {
  readonly dialect = 'sqlite' as const;
  constructor(
    private readonly db: Database.Database,
    readonly display: string,
  ) {}
  table(name: string): string {
    return `sims.${name}`;
  }
  async all(sql: string, params: readonly Value[] = []): Promise<DbRow[]> {
    return this.db.prepare(sql).all(...params) as DbRow[];
  }
  async run(sql: string, params: readonly Value[] = []): Promise<void> {
    this.db.prepare(sql).run(...params);
  }
  async insert(table: TableDef, rows: readonly Row[]): Promise<void> {
    const cols = table.columns.map((c) => c.name);
    const stmt = this.db.prepare(
      `INSERT INTO ${this.table(table.name)} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
    );
    for (const row of rows) stmt.run(...row);
  }
  async begin(): Promise<void> {
    this.db.exec('BEGIN');
  }
  async commit(): Promise<void> {
    this.db.exec('COMMIT');
  }
  async rollback(): Promise<void> {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

class PgMis implements MisConnection {
  readonly dialect = 'postgres' as const;
  constructor(
    private readonly client: pg.Client,
    readonly display: string,
  ) {}
  table(name: string): string {
    return `sims.${name}`;
  }
  async all(sql: string, params: readonly Value[] = []): Promise<DbRow[]> {
    return (await this.client.query(numbered(sql), [...params])).rows as DbRow[];
  }
  async run(sql: string, params: readonly Value[] = []): Promise<void> {
    await this.client.query(numbered(sql), [...params]);
  }
  async insert(table: TableDef, rows: readonly Row[]): Promise<void> {
    const cols = table.columns.map((c) => c.name);
    for (let start = 0; start < rows.length; start += 500) {
      const chunk = rows.slice(start, start + 500);
      const tuples = chunk.map((_, r) => `(${cols.map((_, c) => `$${r * cols.length + c + 1}`).join(', ')})`);
      await this.client.query(
        `INSERT INTO ${this.table(table.name)} (${cols.join(', ')}) VALUES ${tuples.join(', ')}`,
        chunk.flat(),
      );
    }
  }
  async begin(): Promise<void> {
    await this.client.query('BEGIN');
  }
  async commit(): Promise<void> {
    await this.client.query('COMMIT');
  }
  async rollback(): Promise<void> {
    await this.client.query('ROLLBACK');
  }
  async close(): Promise<void> {
    await this.client.end();
  }
}

class MysqlMis implements MisConnection {
  readonly dialect = 'mysql' as const;
  constructor(
    private readonly conn: mysql.Connection,
    readonly display: string,
    private readonly database: string,
  ) {}
  table(name: string): string {
    return `\`${this.database}\`.${name}`;
  }
  async all(sql: string, params: readonly Value[] = []): Promise<DbRow[]> {
    const [rows] = await this.conn.query(sql, [...params]);
    return rows as DbRow[];
  }
  async run(sql: string, params: readonly Value[] = []): Promise<void> {
    await this.conn.query(sql, [...params]);
  }
  async insert(table: TableDef, rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    const cols = table.columns.map((c) => c.name);
    await this.conn.query(`INSERT INTO ${this.table(table.name)} (${cols.join(', ')}) VALUES ?`, [
      rows.map((r) => [...r]),
    ]);
  }
  async begin(): Promise<void> {
    await this.conn.query('START TRANSACTION');
  }
  async commit(): Promise<void> {
    await this.conn.query('COMMIT');
  }
  async rollback(): Promise<void> {
    await this.conn.query('ROLLBACK');
  }
  async close(): Promise<void> {
    await this.conn.end();
  }
}
