import pg from 'pg';
import { DemoMisError } from './errors.js';
import type { Target } from './targets.js';

type PgTarget = Target & { kind: 'postgres' };

/** Dates, timestamps and bigints stay strings: the same text every dialect returns. */
const RAW = (v: string) => v;
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    // 1082 date, 1114 timestamp, 1184 timestamptz, 20 int8
    if (oid === 1082 || oid === 1114 || oid === 1184 || oid === 20) return RAW;
    return pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

/** Connects, turning the usual failures into one clear line. */
export async function connectPostgres(target: PgTarget): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: target.url,
    connectionTimeoutMillis: 5000,
    types: TYPES,
    application_name: 'keystage-demo-mis',
  });
  // A dropped connection must not crash the process with an unhandled 'error' event.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw pgConnectError(target, err);
  }
  return client;
}

export function pgConnectError(target: PgTarget, err: unknown): DemoMisError {
  const e = err as { code?: string; message?: string };
  const reason = (e.message ?? String(err)).split('\n')[0];
  switch (e.code) {
    case 'ECONNREFUSED':
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot reach PostgreSQL at ${target.host}: connection refused`,
        {
          cause: err,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot reach PostgreSQL at ${target.host}: unknown host`,
        {
          cause: err,
        },
      );
    case '3D000':
      return new DemoMisError(
        'demo_mis.target_missing',
        `database "${target.database}" does not exist on PostgreSQL at ${target.host} (create it first)`,
        { cause: err },
      );
    case '28P01':
    case '28000':
      return new DemoMisError(
        'demo_mis.auth_failed',
        `PostgreSQL at ${target.host} refused the credentials: ${reason}`,
        {
          cause: err,
        },
      );
    default:
      return new DemoMisError(
        'demo_mis.target_unreachable',
        `cannot connect to PostgreSQL at ${target.host}: ${reason}`,
        {
          cause: err,
        },
      );
  }
}
