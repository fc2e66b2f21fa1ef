import { InvalidDatabaseUrlError } from './errors.js';

/** Used when DATABASE_URL is not set: the local development database. */
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/keystage';

/** The parts of a PostgreSQL connection URL the tooling needs. */
export interface ParsedDatabaseUrl {
  /** The URL as given (it may hold a password: never print it, print `server` instead). */
  url: string;
  host: string;
  port: number;
  database: string;
  /** `host:port`, safe to print. */
  server: string;
  /** Value of the `?schema=` parameter (Prisma convention), if any. */
  schema: string | undefined;
}

/**
 * Checks that `url` is a PostgreSQL URL with a host and a database name.
 * Throws {@link InvalidDatabaseUrlError} otherwise (its message never contains the URL itself,
 * which may hold a password).
 */
export function parseDatabaseUrl(url: string): ParsedDatabaseUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError('it cannot be parsed as a URL');
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new InvalidDatabaseUrlError(
      `its scheme is "${parsed.protocol.replace(/:$/, '')}", expected "postgresql"`,
    );
  }
  if (!parsed.hostname) {
    throw new InvalidDatabaseUrlError('it has no host');
  }
  let database: string;
  try {
    database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  } catch {
    throw new InvalidDatabaseUrlError('its database name is not valid percent-encoding');
  }
  if (!database || database.includes('/')) {
    throw new InvalidDatabaseUrlError('it names no database (expected postgresql://user@host:5432/database)');
  }
  const port = parsed.port ? Number(parsed.port) : 5432;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    url,
    host,
    port,
    database,
    server: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    schema: parsed.searchParams.get('schema') ?? undefined,
  };
}

/** The same server and credentials, another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Quotes an SQL identifier (database names are user input in tests and URLs). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
