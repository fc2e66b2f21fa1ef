/**
 * Test databases: the demo MIS (`tiny` preset, seed 1) generated into a uniquely named
 * SQLite file, PostgreSQL database or MariaDB database per test file, dropped afterwards.
 * Not part of the package build.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToMysql, generateToPostgres, generateToSqlite } from '@keystage/demo-mis';
import mysql from 'mysql2/promise';
import pg from 'pg';

export const DEMO = { preset: 'tiny', seed: 1 } as const;

/** The server the tests use; only host, port and credentials are taken from it. */
export const PG_SERVER = new URL(
  process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
);
export const MYSQL_SERVER = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export function pgAdmin(database = 'postgres'): pg.Client {
  return new pg.Client({
    host: PG_SERVER.hostname,
    port: Number(PG_SERVER.port || 5432),
    user: decodeURIComponent(PG_SERVER.username) || 'postgres',
    password: decodeURIComponent(PG_SERVER.password),
    database,
  });
}

export async function pgExec(
  sql: string,
  params: unknown[] = [],
  database = 'postgres',
): Promise<unknown[][]> {
  const c = pgAdmin(database);
  await c.connect();
  try {
    return (await c.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
  } finally {
    await c.end();
  }
}

export interface DemoDatabase {
  readonly name: string;
  drop(): Promise<void>;
}

export async function createSqliteDemo(): Promise<DemoDatabase & { path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mis-connectors-'));
  const path = join(dir, 'school.sqlite');
  await generateToSqlite(path, DEMO);
  return {
    name: path,
    path,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createPgDemo(): Promise<DemoDatabase> {
  const name = uniqueName('misconn');
  await pgExec(`CREATE DATABASE ${name}`);
  const url = new URL(PG_SERVER.toString());
  url.pathname = `/${name}`;
  await generateToPostgres(url.toString(), DEMO);
  return {
    name,
    async drop() {
      await pgExec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export async function mysqlExec(sql: string, params: unknown[] = []): Promise<unknown[][]> {
  const c = await mysql.createConnection({ ...MYSQL_SERVER, rowsAsArray: true });
  try {
    const [rows] = await c.query(sql, params);
    return rows as unknown[][];
  } finally {
    await c.end();
  }
}

export async function createMysqlDemo(): Promise<DemoDatabase> {
  const name = uniqueName('misconn');
  await generateToMysql(
    `mysql://${MYSQL_SERVER.user}@${MYSQL_SERVER.host}:${MYSQL_SERVER.port}/${name}`,
    DEMO,
  );
  return {
    name,
    async drop() {
      await mysqlExec(`DROP DATABASE IF EXISTS \`${name}\``);
    },
  };
}
