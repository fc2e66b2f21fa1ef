import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/db.js';
import { createPrismaClient, Prisma } from './index.js';

describe('createPrismaClient', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('ks_client');
  });
  afterAll(() => db?.drop());

  it('returns a PrismaClient that queries PostgreSQL through adapter-pg', async () => {
    const client = createPrismaClient(db.url, { poolSize: 2 });
    try {
      const rows = await client.$queryRaw<Array<{ one: number; db: string }>>(
        Prisma.sql`SELECT 1::int AS one, current_database() AS db`,
      );
      expect(rows).toEqual([{ one: 1, db: db.name }]);
    } finally {
      await client.$disconnect();
    }
  });
});
