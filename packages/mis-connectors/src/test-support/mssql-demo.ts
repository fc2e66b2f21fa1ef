/**
 * The demo MIS in SQL Server, for the contract suite when KEYSTAGE_TEST_MSSQL_URL points at
 * a real server (`mssql://admin:password@host:1433/master?encrypt=true&trustServerCertificate=true`).
 * @keystage/demo-mis has no SQL Server writer, so this loads the generator's rows with bulk
 * inserts into a uniquely named database (schema `sims`, flags as BIT like SIMS), and creates
 * a login with db_datareader only — what a school's DBA is asked for. Dropped afterwards.
 *
 * NOT RUN where it was written (no SQL Server there): treat as untested until a run with the
 * variable set has passed.
 */
import { randomBytes } from 'node:crypto';
import { createGenerator, type PortableType, TABLES } from '@keystage/demo-mis';
import sql from 'mssql';
import { DEMO, uniqueName } from './databases.js';

export interface MssqlServer {
  readonly server: string;
  readonly port?: number;
  readonly instanceName?: string;
  readonly user: string;
  readonly password: string;
  readonly encrypt: boolean;
  readonly trustServerCertificate: boolean;
}

export function parseMssqlUrl(url: string): MssqlServer {
  const u = new URL(url);
  if (u.protocol !== 'mssql:' && u.protocol !== 'sqlserver:')
    throw new Error('KEYSTAGE_TEST_MSSQL_URL must be mssql://…');
  const flag = (name: string, fallback: boolean) => {
    const v = u.searchParams.get(name);
    return v === null ? fallback : v === 'true' || v === '1';
  };
  const instanceName = u.searchParams.get('instanceName') ?? undefined;
  return {
    server: decodeURIComponent(u.hostname),
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(instanceName ? { instanceName } : {}),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    encrypt: flag('encrypt', true),
    trustServerCertificate: flag('trustServerCertificate', false),
  };
}

function poolConfig(s: MssqlServer, database: string): sql.config {
  return {
    server: s.server,
    ...(s.port ? { port: s.port } : {}),
    user: s.user,
    password: s.password,
    database,
    requestTimeout: 120_000,
    options: {
      encrypt: s.encrypt,
      trustServerCertificate: s.trustServerCertificate,
      ...(s.instanceName ? { instanceName: s.instanceName } : {}),
      useUTC: true,
    },
  };
}

function tsqlType(t: PortableType): string {
  const sized = /^(varchar|char)\((\d+)\)$/.exec(t);
  if (sized) return `${sized[1] === 'char' ? 'NCHAR' : 'NVARCHAR'}(${sized[2]})`;
  switch (t) {
    case 'int':
      return 'INT';
    case 'bigint':
      return 'BIGINT';
    case 'flag':
      return 'BIT';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'DATETIME2(0)';
    case 'uuid':
      return 'UNIQUEIDENTIFIER';
    default:
      return 'NVARCHAR(MAX)';
  }
}

function bulkType(t: PortableType): sql.ISqlType | (() => sql.ISqlType) {
  const sized = /^(varchar|char)\((\d+)\)$/.exec(t);
  if (sized) return sized[1] === 'char' ? sql.NChar(Number(sized[2])) : sql.NVarChar(Number(sized[2]));
  switch (t) {
    case 'int':
      return sql.Int;
    case 'bigint':
      return sql.BigInt;
    case 'flag':
      return sql.Bit;
    case 'date':
      return sql.Date;
    case 'timestamp':
      return sql.DateTime2(0);
    case 'uuid':
      return sql.UniqueIdentifier;
    default:
      return sql.NVarChar(sql.MAX);
  }
}

type BulkValue = string | number | boolean | Date | null;

function bulkValue(t: PortableType, v: unknown): BulkValue {
  if (v === null || v === undefined) return null;
  if (t === 'date') return new Date(`${String(v)}T00:00:00Z`);
  if (t === 'timestamp') return new Date(`${String(v).replace(' ', 'T')}Z`);
  if (t === 'flag') return Number(v) === 1;
  return v as BulkValue;
}

export interface MssqlDemo {
  readonly name: string;
  readonly server: MssqlServer;
  readonly reader: { readonly user: string; readonly password: string };
  drop(): Promise<void>;
}

export async function createMssqlDemo(url: string): Promise<MssqlDemo> {
  const server = parseMssqlUrl(url);
  const name = uniqueName('misconn');
  const reader = { user: uniqueName('ks_reader'), password: `Rd-${randomBytes(12).toString('hex')}-9x` };
  const master = await new sql.ConnectionPool(poolConfig(server, 'master')).connect();
  try {
    await master.request().batch(`CREATE DATABASE [${name}]`);
    await master
      .request()
      .batch(`CREATE LOGIN [${reader.user}] WITH PASSWORD = '${reader.password}', CHECK_POLICY = OFF`);
  } finally {
    await master.close();
  }
  const db = await new sql.ConnectionPool(poolConfig(server, name)).connect();
  try {
    await db.request().batch('CREATE SCHEMA sims');
    for (const t of TABLES) {
      const cols = t.columns.map(
        (c) => `[${c.name}] ${tsqlType(c.type)}${c.nullable ? ' NULL' : ' NOT NULL'}`,
      );
      await db
        .request()
        .batch(`CREATE TABLE sims.[${t.name}] (${cols.join(', ')}, PRIMARY KEY ([${t.primaryKey}]))`);
    }
    for (const batch of createGenerator(DEMO).batches()) {
      if (batch.rows.length === 0) continue;
      const table = new sql.Table(`sims.${batch.table.name}`);
      table.create = false;
      for (const c of batch.table.columns)
        table.columns.add(c.name, bulkType(c.type), { nullable: c.nullable ?? false });
      for (const row of batch.rows) {
        table.rows.add(...batch.table.columns.map((c, i) => bulkValue(c.type, row[i])));
      }
      await db.request().bulk(table);
    }
    await db
      .request()
      .batch(
        `CREATE USER [${reader.user}] FOR LOGIN [${reader.user}]; ALTER ROLE db_datareader ADD MEMBER [${reader.user}];`,
      );
  } finally {
    await db.close();
  }
  return {
    name,
    server,
    reader,
    async drop() {
      const m = await new sql.ConnectionPool(poolConfig(server, 'master')).connect();
      try {
        await m
          .request()
          .batch(
            `ALTER DATABASE [${name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [${name}];`,
          );
        await m.request().batch(`DROP LOGIN [${reader.user}]`);
      } finally {
        await m.close();
      }
    },
  };
}

export async function mssqlAdminQuery(
  server: MssqlServer,
  query: string,
  database: string,
): Promise<unknown[][]> {
  const pool = await new sql.ConnectionPool({
    ...poolConfig(server, 'master'),
    arrayRowMode: true,
  }).connect();
  try {
    const r = await pool.request().input('db', sql.NVarChar(128), database).query(query);
    return r.recordset as unknown as unknown[][];
  } finally {
    await pool.close();
  }
}
