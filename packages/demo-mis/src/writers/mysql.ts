import { PassThrough } from 'node:stream';
import type mysql from 'mysql2/promise';
import { createIndexSql, createTableSql } from '../ddl.js';
import { DemoMisError } from '../errors.js';
import type { Batch } from '../generator.js';
import { connectMysql } from '../mysql-connect.js';
import { TABLES } from '../tables.js';
import { parseMysqlUrl } from '../targets.js';
import { copyValue } from './postgres.js';
import type { RowWriter } from './writer.js';

/**
 * Writes the demo MIS into a MariaDB/MySQL database (default `sims`) with
 * LOAD DATA LOCAL INFILE fed from a stream (the same tab-separated text as PostgreSQL's
 * COPY). Only the demo tables are dropped and re-created; the database is created if missing.
 */
export class MysqlWriter implements RowWriter {
  readonly display: string;
  private conn: mysql.Connection | null = null;
  private load: { table: string; stream: PassThrough; done: Promise<unknown> } | null = null;
  private readonly target;

  constructor(url: string) {
    this.target = parseMysqlUrl(url);
    this.display = this.target.display;
  }

  private get db(): string {
    return `\`${this.target.database}\``;
  }

  async open(): Promise<void> {
    this.conn = await connectMysql(this.target);
    const c = this.conn;
    await c.query(`CREATE DATABASE IF NOT EXISTS ${this.db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await c.query(`DROP TABLE IF EXISTS ${TABLES.map((t) => `${this.db}.${t.name}`).join(', ')}`);
    for (const t of TABLES) await c.query(createTableSql('mysql', t, this.db));
    await c.query('SET unique_checks = 0');
    await c.query('START TRANSACTION');
  }

  async write(batch: Batch): Promise<void> {
    const conn = this.conn;
    if (!conn) throw new Error('MysqlWriter.write before open');
    if (!this.load || this.load.table !== batch.table.name) {
      await this.endLoad();
      const stream = new PassThrough();
      const cols = batch.table.columns.map((c) => c.name).join(', ');
      const done = conn.query({
        sql: `LOAD DATA LOCAL INFILE 'demo-mis:${batch.table.name}' INTO TABLE ${this.db}.${batch.table.name} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${cols})`,
        infileStreamFactory: () => stream,
      });
      done.catch(() => {});
      this.load = { table: batch.table.name, stream, done };
    }
    let text = '';
    for (const row of batch.rows) {
      let line = copyValue(row[0]!);
      for (let i = 1; i < row.length; i++) line += `\t${copyValue(row[i]!)}`;
      text += `${line}\n`;
    }
    const { stream } = this.load;
    if (text.length > 0 && !stream.write(text)) {
      await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
    }
    if (batch.last) await this.endLoad();
  }

  private async endLoad(): Promise<void> {
    if (!this.load) return;
    const { stream, done, table } = this.load;
    this.load = null;
    stream.end();
    try {
      await done;
    } catch (err) {
      throw new DemoMisError(
        'demo_mis.write_failed',
        `MariaDB LOAD DATA into ${table} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {
    const c = this.conn;
    if (!c) return;
    await this.endLoad();
    await c.query('COMMIT');
    await c.query('SET unique_checks = 1');
    for (const t of TABLES) for (const sql of createIndexSql('mysql', t, this.db)) await c.query(sql);
    await c.end();
    this.conn = null;
  }

  async abort(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    this.load?.stream.destroy();
    this.load = null;
    if (!c) return;
    // DDL auto-commits in MariaDB, so drop what was created; then disconnect.
    try {
      await c.query('ROLLBACK');
      await c.query(`DROP TABLE IF EXISTS ${TABLES.map((t) => `${this.db}.${t.name}`).join(', ')}`);
    } catch {
      // Connection already broken: nothing more to clean up from here.
    }
    c.destroy();
  }
}
