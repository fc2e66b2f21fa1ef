/**
 * @keystage/db: the Prisma client for Keystage's PostgreSQL database.
 *
 * The client is generated from prisma/schema.prisma into ./generated/prisma (`pnpm --filter
 * @keystage/db run build`); it talks to PostgreSQL through `@prisma/adapter-pg` (node-postgres), so
 * no native query engine is involved. Migrations live in `@keystage/db/migrator`.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

// Model types (Partner, School, ...), enums, the Prisma namespace and the PrismaClient class.
export * from './generated/prisma/client.js';

export interface CreatePrismaClientOptions {
  /** Maximum number of pooled connections (node-postgres default: 10). */
  poolSize?: number;
  /** Milliseconds to wait for a connection before failing (default 10 000). */
  connectionTimeoutMillis?: number;
}

/**
 * A PrismaClient connected to `databaseUrl` (e.g. `postgresql://postgres@127.0.0.1:5432/keystage`)
 * through a node-postgres pool. A `?schema=` parameter selects the PostgreSQL schema, as in
 * Prisma's URLs. Call `$disconnect()` to close the pool.
 */
export function createPrismaClient(
  databaseUrl: string,
  options: CreatePrismaClientOptions = {},
): PrismaClient {
  const schema = schemaParameter(databaseUrl);
  const adapter = new PrismaPg(
    {
      connectionString: databaseUrl,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    },
    schema ? { schema } : undefined,
  );
  return new PrismaClient({ adapter });
}

function schemaParameter(databaseUrl: string): string | undefined {
  try {
    return new URL(databaseUrl).searchParams.get('schema') ?? undefined;
  } catch {
    return undefined; // let node-postgres report the malformed URL when connecting
  }
}
