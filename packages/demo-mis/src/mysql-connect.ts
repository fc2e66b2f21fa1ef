import mysql from 'mysql2/promise';
import { DemoMisError } from './errors.js';
import type { Target } from './targets.js';

type MysqlTarget = Target & { kind: 'mysql' };

/**
 * Connects to the server in a MySQL/MariaDB URL without selecting a database (the demo
 * tables are always qualified by database name). Dates and big numbers stay strings.
 */
export async function connectMysql(target: MysqlTarget): Promise<mysql.Connection> {
  const u = new URL(target.url);
  try {
    const conn = await mysql.createConnection({
      host: u.hostname || 'localhost',
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username) || 'root',
      password: decodeURIComponent(u.password),
      charset: 'utf8mb4',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: 5000,
      multipleStatements: false,
    });
    conn.on('error', () => {});
    return conn;
  } catch (err) {
    throw mysqlConnectError(target, err);
  }
}

export function mysqlConnectError(target: MysqlTarget, err: unknown): DemoMisError {
  const e = err as { code?: string; message?: string };
  const reason = (e.message ?? String(err)).split('\n')[0];
  switch (e.code) {
    case 'ECONNREFUSED':
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot reach MariaDB at ${target.host}: connection refused`,
        {
          cause: err,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot reach MariaDB at ${target.host}: unknown host`,
        {
          cause: err,
        },
      );
    case 'ER_ACCESS_DENIED_ERROR':
      return new DemoMisError(
        'demo_mis.auth_failed',
        `MariaDB at ${target.host} refused the credentials: ${reason}`,
        {
          cause: err,
        },
      );
    default:
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot connect to MariaDB at ${target.host}: ${reason}`,
        {
          cause: err,
        },
      );
  }
}
