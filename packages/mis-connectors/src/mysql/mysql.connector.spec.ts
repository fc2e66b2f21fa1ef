import { describe, expect, it } from 'vitest';
import { createConnector } from '../factory.js';
import {
  connectorContract,
  type DialectSql,
  LARGE_TEXT_PIECE,
  LARGE_TEXT_REPEAT,
} from '../test-support/contract.js';
import { createMysqlDemo, MYSQL_SERVER, mysqlExec } from '../test-support/databases.js';
import type { MysqlSettings } from '../types.js';
import { mapMysqlError, mysqlColumnType, mysqlTarget } from './mysql.connector.js';

const MYSQL_SQL: DialectSql = {
  // MariaDB's Sequence engine: seq_1_to_N is produced lazily.
  series: (n, width) => `SELECT seq AS n, REPEAT('x', ${width}) AS pad FROM seq_1_to_${n}`,
  endless: `SELECT seq AS n, 'some text to carry' AS pad FROM seq_1_to_1000000000`,
  slow: 'SELECT SLEEP(30) AS slept',
  literals: `SELECT NULL AS nul, 'Zoë' AS a, 'O''Brien' AS b, 'Nguyễn' AS c, DATE '2024-02-29' AS d,
    TIMESTAMP '2025-07-09 08:30:00' AS dt, CAST(9007199254740993 AS SIGNED) AS big, TRUE AS flag,
    CAST(1.5 AS DOUBLE) AS f, REPEAT('${LARGE_TEXT_PIECE.replace(/'/g, "''")}', ${LARGE_TEXT_REPEAT}) AS large`,
  readOnlyCodes: ['ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION'],
};

connectorContract('MariaDB', async () => {
  const db = await createMysqlDemo();
  const settings: MysqlSettings = {
    host: MYSQL_SERVER.host,
    port: MYSQL_SERVER.port,
    user: MYSQL_SERVER.user,
    database: db.name,
    misUser: 'svc_keystage',
  };
  return {
    kind: 'mysql',
    sql: MYSQL_SQL,
    table: (name) => `\`${db.name}\`.${name}`,
    make: () => createConnector('mysql', settings, MYSQL_SERVER.password),
    badLogin: () => createConnector('mysql', settings, 'not-the-password'),
    unreachable: (pw) => createConnector('mysql', { ...settings, port: 1 }, pw),
    activeStatements: async () => {
      const running = await mysqlExec(
        `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND <> 'Sleep' AND ID <> CONNECTION_ID()`,
        [db.name],
      );
      const open = await mysqlExec(
        `SELECT COUNT(*) FROM information_schema.INNODB_TRX t
           JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = ?`,
        [db.name],
      );
      return Number(running[0]?.[0]) + Number(open[0]?.[0]);
    },
    drop: () => db.drop(),
  };
});

describe('MariaDB settings, types and errors', () => {
  it('reads a URL without a password and refuses one with a password', () => {
    expect(mysqlTarget({ url: 'mysql://keystage@10.0.0.5/school' })).toEqual({
      host: '10.0.0.5',
      port: 3306,
      database: 'school',
      user: 'keystage',
      ssl: false,
    });
    expect(() => mysqlTarget({ url: 'mysql://keystage:pw@h/db' })).toThrow(/must not contain a password/);
  });

  it('maps column types', () => {
    expect(mysqlColumnType({ columnType: 8, characterSet: 63, columnLength: 20 })).toBe('integer');
    expect(mysqlColumnType({ columnType: 246, characterSet: 63, columnLength: 10 })).toBe('decimal');
    expect(mysqlColumnType({ columnType: 16, characterSet: 63, columnLength: 1 })).toBe('boolean');
    expect(mysqlColumnType({ columnType: 252, characterSet: 224, columnLength: 100 })).toBe('string');
    expect(mysqlColumnType({ columnType: 252, characterSet: 63, columnLength: 100 })).toBe('binary');
    expect(mysqlColumnType({ columnType: 12, characterSet: 63, columnLength: 19 })).toBe('datetime');
  });

  it('maps errors to stable codes without row values or the password', () => {
    const e = (errno: number, code: string, message: string) =>
      Object.assign(new Error(message), { errno, code });
    expect(
      mapMysqlError(
        e(1045, 'ER_ACCESS_DENIED_ERROR', "Access denied for user 'k'@'h' (using password: YES)"),
        'h:1',
        'k',
        'pw',
      ),
    ).toMatchObject({ code: 'mis.auth_failed' });
    expect(
      mapMysqlError(
        e(1969, 'ER_STATEMENT_TIMEOUT', 'Query execution was interrupted (max_statement_time exceeded)'),
        'h:1',
        'k',
      ).code,
    ).toBe('mis.timeout');
    const data = mapMysqlError(
      e(1366, 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', "Incorrect integer value: 'Zoë' for column"),
      'h:1',
      'k',
    );
    expect(data.code).toBe('mis.query_failed');
    expect(data.message).not.toContain('Zoë');
  });

  it('reports SHOW GRANTS without password hashes', async () => {
    const db = await createMysqlDemo();
    const user = `ksr_${Date.now().toString(36)}`;
    await mysqlExec(`CREATE USER '${user}'@'%' IDENTIFIED BY 'Reader-Pa55'`);
    await mysqlExec(`GRANT SELECT ON \`${db.name}\`.stud_student TO '${user}'@'%'`);
    const c = createConnector('mysql', { host: MYSQL_SERVER.host, user, database: db.name }, 'Reader-Pa55');
    try {
      const p = await c.permissions();
      expect(p.database.readableTables).toEqual(['stud_student']);
      expect(p.database.canWrite).toBe(false);
      expect(p.database.grants.join('\n')).not.toMatch(/\*[0-9A-F]{40}/);
      await expect(c.stream(`SELECT * FROM \`${db.name}\`.per_employee`)).rejects.toMatchObject({
        code: 'mis.permission_denied',
      });
    } finally {
      await c.close();
      await mysqlExec(`DROP USER '${user}'@'%'`);
      await db.drop();
    }
  });
});
