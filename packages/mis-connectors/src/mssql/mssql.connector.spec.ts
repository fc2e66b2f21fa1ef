/**
 * The contract suite against a real SQL Server, only when KEYSTAGE_TEST_MSSQL_URL is set
 * (an admin login that may create a database and a login). No SQL Server exists where this
 * package was written and none is faked: without the variable the suite is reported skipped.
 */
import { describe, expect, it } from 'vitest';
import { createConnector } from '../factory.js';
import {
  connectorContract,
  type DialectSql,
  LARGE_TEXT_PIECE,
  LARGE_TEXT_REPEAT,
} from '../test-support/contract.js';
import { createMssqlDemo, type MssqlDemo, mssqlAdminQuery } from '../test-support/mssql-demo.js';
import type { MssqlSettings } from '../types.js';

const url = process.env.KEYSTAGE_TEST_MSSQL_URL;

const DIGITS = `d(x) AS (SELECT x FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) v(x))`;
const MSSQL_SQL: DialectSql = {
  series: (n, width) => `WITH ${DIGITS},
    s(n) AS (SELECT 1 + a.x + 10 * b.x + 100 * c.x + 1000 * e.x + 10000 * f.x
               FROM d a CROSS JOIN d b CROSS JOIN d c CROSS JOIN d e CROSS JOIN d f)
    SELECT n, REPLICATE('x', ${width}) AS pad FROM s WHERE n <= ${n}`,
  endless: `WITH ${DIGITS}
    SELECT 1 + a.x + 10 * b.x + 100 * c.x + 1000 * e.x + 10000 * f.x + 100000 * g.x + 1000000 * h.x
             + 10000000 * i.x + 100000000 * j.x AS n, 'some text to carry' AS pad
      FROM d a CROSS JOIN d b CROSS JOIN d c CROSS JOIN d e CROSS JOIN d f CROSS JOIN d g
      CROSS JOIN d h CROSS JOIN d i CROSS JOIN d j`,
  slow: `WAITFOR DELAY '00:00:30'; SELECT 1 AS slept`,
  literals: `SELECT NULL AS nul, N'Zoë' AS a, N'O''Brien' AS b, N'Nguyễn' AS c, CAST('2024-02-29' AS date) AS d,
    CAST('2025-07-09 08:30:00' AS datetime2(0)) AS dt, CAST(9007199254740993 AS bigint) AS big, CAST(1 AS bit) AS flag,
    CAST(1.5 AS float) AS f,
    REPLICATE(CAST(N'${LARGE_TEXT_PIECE.replace(/'/g, "''")}' AS nvarchar(max)), ${LARGE_TEXT_REPEAT}) AS large`,
  // No read-only transaction in SQL Server: the db_datareader login is what refuses (229 object, 262 CREATE).
  readOnlyCodes: ['229', '262'],
};

if (!url) {
  describe.skip('SQL Server connector contract — skipped: KEYSTAGE_TEST_MSSQL_URL is not set (no SQL Server on this machine, and none is faked)', () => {
    it('runs the connector contract suite against a real SQL Server', () => {});
  });
} else {
  let demo: MssqlDemo;
  const settings = (d: MssqlDemo): MssqlSettings => ({
    server: d.server.server,
    ...(d.server.port ? { port: d.server.port } : {}),
    ...(d.server.instanceName ? { instanceName: d.server.instanceName } : {}),
    database: d.name,
    user: d.reader.user,
    encrypt: d.server.encrypt,
    trustServerCertificate: d.server.trustServerCertificate,
    misUser: 'svc_keystage',
  });

  connectorContract('SQL Server', async () => {
    demo = await createMssqlDemo(url);
    const s = settings(demo);
    return {
      kind: 'mssql',
      sql: MSSQL_SQL,
      table: (name) => `sims.${name}`,
      make: () => createConnector('mssql', s, demo.reader.password),
      badLogin: () => createConnector('mssql', s, 'not-the-password'),
      unreachable: (pw) =>
        createConnector('mssql', { ...s, server: '127.0.0.1', port: 1, instanceName: undefined }, pw),
      activeStatements: async () => {
        const rows = await mssqlAdminQuery(
          demo.server,
          `SELECT COUNT(*) FROM sys.dm_exec_sessions s
            WHERE s.database_id = DB_ID(@db) AND s.program_name = 'keystage-agent' AND s.session_id <> @@SPID
              AND (s.open_transaction_count > 0
                   OR EXISTS (SELECT 1 FROM sys.dm_exec_requests r WHERE r.session_id = s.session_id))`,
          demo.name,
        );
        return Number(rows[0]?.[0]);
      },
      drop: () => demo.drop(),
    };
  });

  describe('SQL Server login checks', () => {
    it('refuses a login that can write (the admin login of the test server)', async () => {
      const d = await createMssqlDemo(url);
      try {
        const admin = createConnector('mssql', { ...settings(d), user: d.server.user }, d.server.password);
        await expect(admin.connect()).rejects.toMatchObject({ code: 'mis.account_can_write' });
        await admin.close();
      } finally {
        await d.drop();
      }
    });
  });
}
