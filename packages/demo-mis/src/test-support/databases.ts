/**
 * Test helpers: a uniquely named PostgreSQL or MariaDB database per test file (dropped
 * afterwards), temporary directories, and a canonical dump of every demo table for
 * comparing databases row for row. Not part of the package build.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { MisConnection } from '../connection.js';
import { TABLES } from '../tables.js';

export const PG_SERVER = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_SERVER = 'mysql://root@127.0.0.1:3306';

function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function createPgDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = uniqueName(`demomis_${prefix}`);
  const admin = new pg.Client({ connectionString: PG_SERVER });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_SERVER);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_SERVER });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function createMysqlDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = uniqueName(`demomis_${prefix}`);
  return {
    name,
    url: `${MYSQL_SERVER}/${name}`,
    async drop() {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'demo-mis-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A value as text, the same whichever database returned it. */
export function canonical(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) throw new Error('unexpected Date: type parsers should keep dates as text');
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

/** table → primary key → canonical row (JSON of the column values in table order). */
export type Dump = Map<string, Map<string, string>>;

export async function dump(conn: MisConnection): Promise<Dump> {
  const out: Dump = new Map();
  for (const t of TABLES) {
    const cols = t.columns.map((c) => c.name);
    const rows = await conn.all(
      `SELECT ${cols.join(', ')} FROM ${conn.table(t.name)} ORDER BY ${t.primaryKey}`,
    );
    const m = new Map<string, string>();
    for (const r of rows)
      m.set(canonical(r[t.primaryKey])!, JSON.stringify(cols.map((c) => canonical(r[c]))));
    out.set(t.name, m);
  }
  return out;
}

/** The first difference between two dumps, or null when equal row for row. */
export function firstDifference(a: Dump, b: Dump): string | null {
  for (const t of TABLES) {
    const x = a.get(t.name)!;
    const y = b.get(t.name)!;
    if (x.size !== y.size) return `${t.name}: ${x.size} rows vs ${y.size}`;
    for (const [k, v] of x) {
      const w = y.get(k);
      if (w !== v) return `${t.name} key ${k}: ${v} vs ${w}`;
    }
  }
  return null;
}

/** Per table: keys inserted, updated and deleted between two dumps. */
export function diff(
  before: Dump,
  after: Dump,
): Record<string, { inserted: string[]; updated: string[]; deleted: string[] }> {
  const out: Record<string, { inserted: string[]; updated: string[]; deleted: string[] }> = {};
  for (const t of TABLES) {
    const x = before.get(t.name)!;
    const y = after.get(t.name)!;
    const c = { inserted: [] as string[], updated: [] as string[], deleted: [] as string[] };
    for (const [k, v] of y) {
      const old = x.get(k);
      if (old === undefined) c.inserted.push(k);
      else if (old !== v) c.updated.push(k);
    }
    for (const k of x.keys()) if (!y.has(k)) c.deleted.push(k);
    if (c.inserted.length + c.updated.length + c.deleted.length > 0) out[t.name] = c;
  }
  return out;
}

/** Rowversion of every row (table/key → value), to check what a mutation bumped. */
export function rowversions(d: Dump): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of TABLES) {
    const idx = t.columns.findIndex((c) => c.name === 'rowversion');
    for (const [k, v] of d.get(t.name)!) out.set(`${t.name}/${k}`, Number((JSON.parse(v) as string[])[idx]));
  }
  return out;
}
