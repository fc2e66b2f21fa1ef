import { DemoMisError } from './errors.js';

export type Target =
  | { kind: 'sqlite'; path: string; display: string }
  | { kind: 'postgres'; url: string; display: string; host: string; database: string }
  | { kind: 'mysql'; url: string; display: string; host: string; database: string };

export const DEFAULT_MYSQL_DATABASE = 'sims';

/** host:port/database without credentials, safe to print. */
function displayUrl(u: URL, database: string, defaultPort: number): { display: string; host: string } {
  const host = `${u.hostname || 'localhost'}:${u.port || defaultPort}`;
  return { display: `${u.protocol}//${host}/${database}`, host };
}

export function parsePostgresUrl(url: string): Target & { kind: 'postgres' } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DemoMisError('demo_mis.bad_option', `not a PostgreSQL URL: ${redact(url)}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new DemoMisError('demo_mis.bad_option', `not a PostgreSQL URL (postgres://…): ${redact(url)}`);
  }
  const database =
    decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  return { kind: 'postgres', url, database, ...displayUrl(u, database, 5432) };
}

export function parseMysqlUrl(url: string): Target & { kind: 'mysql' } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DemoMisError('demo_mis.bad_option', `not a MySQL/MariaDB URL: ${redact(url)}`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new DemoMisError('demo_mis.bad_option', `not a MySQL/MariaDB URL (mysql://…): ${redact(url)}`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || DEFAULT_MYSQL_DATABASE;
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
    throw new DemoMisError(
      'demo_mis.bad_option',
      `MariaDB database name must be letters, digits and _: ${database}`,
    );
  }
  return { kind: 'mysql', url, database, ...displayUrl(u, database, 3306) };
}

/** A --db argument: a PostgreSQL URL, a MySQL/MariaDB URL, or a SQLite file path. */
export function parseTarget(value: string): Target {
  if (/^postgres(ql)?:\/\//i.test(value)) return parsePostgresUrl(value);
  if (/^(mysql|mariadb):\/\//i.test(value)) return parseMysqlUrl(value);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new DemoMisError('demo_mis.bad_option', `unsupported database URL: ${redact(value)}`);
  }
  return { kind: 'sqlite', path: value, display: value };
}

/** Removes a password from a URL for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}
