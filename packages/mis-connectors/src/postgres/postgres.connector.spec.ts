import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../factory.js';
import {
  connectorContract,
  type DialectSql,
  LARGE_TEXT_PIECE,
  LARGE_TEXT_REPEAT,
} from '../test-support/contract.js';
import { createPgDemo, type DemoDatabase, PG_SERVER, pgExec, uniqueName } from '../test-support/databases.js';
import type { PostgresSettings } from '../types.js';
import { mapPgError, pgTarget } from './postgres.connector.js';

const PG_SQL: DialectSql = {
  series: (n, width) => `SELECT n, repeat('x', ${width}) AS pad FROM generate_series(1, ${n}) AS s(n)`,
  // A set-returning function in the select list is produced lazily (in FROM it would be materialised).
  endless: `SELECT generate_series(1, 1000000000) AS n, 'some text to carry' AS pad`,
  slow: 'SELECT pg_sleep(30) AS slept',
  literals: `SELECT NULL AS nul, 'Zoë' AS a, 'O''Brien' AS b, 'Nguyễn' AS c, DATE '2024-02-29' AS d,
    TIMESTAMP '2025-07-09 08:30:00' AS dt, 9007199254740993::int8 AS big, true AS flag, 1.5::float8 AS f,
    repeat('${LARGE_TEXT_PIECE.replace(/'/g, "''")}', ${LARGE_TEXT_REPEAT}) AS large`,
  readOnlyCodes: ['25006'],
};

const server = {
  host: PG_SERVER.hostname,
  port: Number(PG_SERVER.port || 5432),
  user: decodeURIComponent(PG_SERVER.username) || 'postgres',
};
const password = decodeURIComponent(PG_SERVER.password);
const applicationName = uniqueName('ks_contract');

connectorContract('PostgreSQL', async () => {
  const db = await createPgDemo();
  const settings: PostgresSettings = {
    ...server,
    database: db.name,
    applicationName,
    misUser: 'svc_keystage',
  };
  return {
    kind: 'postgres',
    sql: PG_SQL,
    table: (name) => `sims.${name}`,
    make: () => createConnector('postgres', settings, password),
    // The local server trusts 127.0.0.1, so a wrong password alone is not refused: an unknown role is.
    badLogin: () => createConnector('postgres', { ...settings, user: 'ks_no_such_role' }, 'wrong'),
    unreachable: (pw) => createConnector('postgres', { ...settings, host: '127.0.0.1', port: 1 }, pw),
    activeStatements: async () => {
      const rows = await pgExec(
        `SELECT count(*)::int FROM pg_stat_activity
          WHERE datname = $1 AND application_name = $2 AND state <> 'idle' AND pid <> pg_backend_pid()`,
        [db.name, applicationName],
      );
      return Number(rows[0]?.[0]);
    },
    drop: () => db.drop(),
  };
});

describe('PostgreSQL connector with a restricted login', () => {
  let db: DemoDatabase;
  const role = uniqueName('ks_reader');
  beforeAll(async () => {
    db = await createPgDemo();
    await pgExec(`CREATE ROLE ${role} LOGIN`);
    await pgExec(`GRANT USAGE ON SCHEMA sims TO ${role}`, [], db.name);
    await pgExec(`GRANT SELECT ON sims.stud_student, sims.sims_person TO ${role}`, [], db.name);
  });
  afterAll(async () => {
    await db?.drop();
    await pgExec(`DROP ROLE IF EXISTS ${role}`);
  });

  it('reports only the granted tables, cannot write, and is refused other tables', async () => {
    const c = createConnector(
      'postgres',
      { ...server, user: role, database: db.name, misUser: 'svc_keystage' },
      '',
    );
    try {
      const p = await c.permissions();
      expect(p.account).toBe(role);
      expect(p.database.readableTables).toEqual(['sims_person', 'stud_student']);
      expect(p.database.canWrite).toBe(false);
      // sys_user is not granted: the MIS groups cannot be read, and the note says so.
      expect(p.groups).toEqual([]);
      expect(p.notes.join(' ')).toMatch(/permission tables .* could not be read \(mis.permission_denied\)/);
      await expect(c.stream('SELECT * FROM sims.per_employee')).rejects.toMatchObject({
        code: 'mis.permission_denied',
        driverCode: '42501',
      });
      const rows = [];
      for await (const r of await c.stream('SELECT count(*) FROM stud_student')) rows.push(r);
      expect(Number(rows[0]?.[0])).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
  });
});

describe('PostgreSQL settings and errors', () => {
  it('reads a URL without a password and refuses one with a password', () => {
    expect(pgTarget({ url: 'postgres://keystage@mis.school.local:6543/sims?sslmode=require' })).toEqual({
      host: 'mis.school.local',
      port: 6543,
      database: 'sims',
      user: 'keystage',
      ssl: 'no-verify',
    });
    expect(() => pgTarget({ url: 'postgres://keystage:hunter2@h/db' })).toThrow(
      /must not contain a password/,
    );
    expect(() => pgTarget({ host: 'h' })).toThrow(/user/);
  });

  it('maps SQLSTATEs to stable codes and keeps row values out of messages', () => {
    const e = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(mapPgError(e('28P01', 'password authentication failed for user "x"'), 'h:1', 'x')).toMatchObject({
      code: 'mis.auth_failed',
    });
    expect(mapPgError(e('ECONNREFUSED', 'connect ECONNREFUSED'), 'h:1', 'x')).toMatchObject({
      code: 'mis.unavailable',
      message: 'cannot reach PostgreSQL at h:1: connection refused',
    });
    expect(mapPgError(e('57014', 'canceling statement due to statement timeout'), 'h:1', 'x').code).toBe(
      'mis.timeout',
    );
    expect(mapPgError(e('57014', 'canceling statement due to user request'), 'h:1', 'x').code).toBe(
      'mis.cancelled',
    );
    const data = mapPgError(e('22P02', 'invalid input syntax for type integer: "Zoë"'), 'h:1', 'x');
    expect(data).toMatchObject({ code: 'mis.query_failed', driverCode: '22P02' });
    expect(data.message).not.toContain('Zoë');
    expect(mapPgError(e('42P01', 'relation "nope" does not exist'), 'h:1', 'x').message).toContain('nope');
  });
});
