import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../factory.js';
import { connectorContract, SQLITE_SQL } from '../test-support/contract.js';
import { createSqliteDemo } from '../test-support/databases.js';
import type { MisConnector } from '../types.js';
import { sqliteColumnType } from './sqlite.connector.js';

connectorContract('SQLite', async () => {
  const db = await createSqliteDemo();
  return {
    kind: 'sqlite',
    sql: SQLITE_SQL,
    table: (name) => `sims.${name}`,
    make: () => createConnector('sqlite', { path: db.path, misUser: 'svc_keystage' }),
    unreachable: () => createConnector('sqlite', { path: join(dirname(db.path), 'missing.sqlite') }),
    drop: () => db.drop(),
  };
});

describe('SQLite connector', () => {
  let db: Awaited<ReturnType<typeof createSqliteDemo>>;
  let c: MisConnector;
  beforeAll(async () => {
    db = await createSqliteDemo();
    c = createConnector('sqlite', { path: db.path });
    await c.connect();
  });
  afterAll(async () => {
    await c?.close();
    await db?.drop();
  });

  it('stays read-only after a statement switches query_only off: no temp table either', async () => {
    const s = await c.stream('PRAGMA query_only = 0');
    for await (const _ of s) {
      // drain
    }
    await expect(c.stream('CREATE TEMP TABLE scratch (a INTEGER)')).rejects.toMatchObject({
      code: 'mis.permission_denied',
      driverCode: 'SQLITE_READONLY',
    });
  });

  it('answers unqualified and sims.-qualified table names alike', async () => {
    const count = async (sql: string) => {
      const rows = [];
      for await (const r of await c.stream(sql)) rows.push(r);
      return rows;
    };
    expect(await count('SELECT count(*) FROM stud_student')).toEqual(
      await count('SELECT count(*) FROM sims.stud_student'),
    );
  });

  it('maps declared column types', () => {
    expect(sqliteColumnType('INTEGER')).toBe('integer');
    expect(sqliteColumnType('BIGINT')).toBe('integer');
    expect(sqliteColumnType('VARCHAR(60)')).toBe('string');
    expect(sqliteColumnType('DATE')).toBe('date');
    expect(sqliteColumnType('DATETIME')).toBe('datetime');
    expect(sqliteColumnType('BLOB')).toBe('binary');
    expect(sqliteColumnType('REAL')).toBe('number');
    expect(sqliteColumnType(null)).toBe('unknown');
  });
});
