import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createIndexSql, createTableSql } from '../ddl.js';
import { DemoMisError } from '../errors.js';
import type { Batch, Value } from '../generator.js';
import { connectPostgres } from '../pg-connect.js';
import { TABLES } from '../tables.js';
import { parsePostgresUrl } from '../targets.js';
import type { RowWriter } from './writer.js';

export const PG_SCHEMA = 'sims';

type CopyStream = ReturnType<typeof copyFrom>;

/** COPY text format: backslash, tab, newline and carriage return escaped; NULL is \N. */
export function copyValue(v: Value): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : v;
}
const COPY_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/**
 * Writes the demo MIS into schema `sims` of a PostgreSQL database with COPY, in one
 * transaction: the schema is dropped and created afresh, and a failure leaves the
 * previous contents untouched.
 */
export class PostgresWriter implements RowWriter {
  readonly display: string;
  private client: pg.Client | null = null;
  private copy: { table: string; stream: CopyStream; done: Promise<void> } | null = null;
  private readonly target;

  constructor(url: string) {
    this.target = parsePostgresUrl(url);
    this.display = this.target.display;
  }

  async open(): Promise<void> {
    this.client = await connectPostgres(this.target);
    const c = this.client;
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = off');
    await c.query("SET LOCAL client_min_messages = 'warning'");
    await c.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
    await c.query(`CREATE SCHEMA ${PG_SCHEMA}`);
    for (const t of TABLES) await c.query(createTableSql('postgres', t, PG_SCHEMA));
  }

  async write(batch: Batch): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('PostgresWriter.write before open');
    if (!this.copy || this.copy.table !== batch.table.name) {
      await this.endCopy();
      const cols = batch.table.columns.map((c) => c.name).join(', ');
      const stream = client.query(copyFrom(`COPY ${PG_SCHEMA}.${batch.table.name} (${cols}) FROM STDIN`));
      const done = new Promise<void>((resolve, reject) => {
        stream.on('finish', () => resolve());
        stream.on('error', reject);
      });
      // Errors surface through `done`; avoid an unhandled rejection before it is awaited.
      done.catch(() => {});
      this.copy = { table: batch.table.name, stream, done };
    }
    const { stream } = this.copy;
    let text = '';
    for (const row of batch.rows) {
      let line = copyValue(row[0]!);
      for (let i = 1; i < row.length; i++) line += `\t${copyValue(row[i]!)}`;
      text += `${line}\n`;
    }
    if (text.length > 0 && !stream.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          stream.off('drain', onDrain);
          reject(err);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
    if (batch.last) await this.endCopy();
  }

  private async endCopy(): Promise<void> {
    if (!this.copy) return;
    const { stream, done, table } = this.copy;
    this.copy = null;
    stream.end();
    try {
      await done;
    } catch (err) {
      throw new DemoMisError(
        'demo_mis.write_failed',
        `PostgreSQL COPY into ${table} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    if (!c) return;
    await this.endCopy();
    for (const t of TABLES) for (const sql of createIndexSql('postgres', t, PG_SCHEMA)) await c.query(sql);
    await c.query('COMMIT');
    // Statistics for the planner, outside the load transaction.
    await c.query(`ANALYZE ${TABLES.map((t) => `${PG_SCHEMA}.${t.name}`).join(', ')}`);
    await c.end();
    this.client = null;
  }

  async abort(): Promise<void> {
    const c = this.client;
    const copying = this.copy !== null;
    this.client = null;
    this.copy = null;
    if (!c) return;
    if (!copying) {
      try {
        await c.query('ROLLBACK');
      } catch {
        // The connection may already be broken; closing it discards the transaction anyway.
      }
    }
    // Closing the connection discards an open transaction (and an unfinished COPY).
    await c.end().catch(() => {});
  }
}
