import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMis } from './connection.js';
import { generate, generateToMysql } from './generate.js';
import { mutate } from './mutate.js';
import {
  createMysqlDatabase,
  type Dump,
  dump,
  firstDifference,
  type ScratchDatabase,
  tempDir,
} from './test-support/databases.js';
import { integrityQueries } from './test-support/integrity.js';
import { expectExactly } from './test-support/mutation-check.js';

// Real MariaDB at 127.0.0.1:3306 (root, no password); the database is created by the writer and dropped here.
const dir = tempDir();
let db: ScratchDatabase;
const sqlite = join(dir.path, 'tiny.sqlite');

async function dumpOf(target: string): Promise<Dump> {
  const conn = await openMis(target);
  try {
    return await dump(conn);
  } finally {
    await conn.close();
  }
}

beforeAll(async () => {
  db = await createMysqlDatabase('my');
  await generate({ preset: 'tiny', seed: 9, targets: { sqlite, mysql: db.url } });
});
afterAll(async () => {
  await db.drop();
  dir.remove();
});

describe('MariaDB writer', () => {
  it('holds exactly the same rows as the SQLite file', async () => {
    expect(firstDifference(await dumpOf(sqlite), await dumpOf(db.url))).toBeNull();
  });

  it('has no orphans (the same portable SQL as the other dialects)', async () => {
    const conn = await openMis(db.url);
    try {
      for (const [label, sql] of integrityQueries((n) => conn.table(n)))
        expect(await conn.all(sql), label).toEqual([]);
    } finally {
      await conn.close();
    }
  });

  it('mutates MariaDB exactly as reported, and exactly like SQLite', async () => {
    const before = await dumpOf(db.url);
    const report = await mutate(db.url, { day: 1 });
    expectExactly(before, await dumpOf(db.url), report);
    const sqliteReport = await mutate(sqlite, { day: 1 });
    expect({ ...report, target: '' }).toEqual({ ...sqliteReport, target: '' });
    expect(firstDifference(await dumpOf(sqlite), await dumpOf(db.url))).toBeNull();
  });

  it('replaces the demo tables when generating again', async () => {
    await generateToMysql(db.url, { preset: 'tiny', seed: 9 });
    const fresh = join(dir.path, 'fresh.sqlite');
    await generate({ preset: 'tiny', seed: 9, targets: { sqlite: fresh } });
    expect(firstDifference(await dumpOf(fresh), await dumpOf(db.url))).toBeNull();
  });

  it('reports an unreachable server in one line', async () => {
    await expect(generateToMysql('mysql://root@127.0.0.1:1/x', { preset: 'tiny' })).rejects.toMatchObject({
      code: 'demo_mis.target_unreachable',
      message: 'cannot reach MariaDB at 127.0.0.1:1: connection refused',
    });
  });
});
