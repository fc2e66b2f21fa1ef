import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MisConnection, openMis } from './connection.js';
import { generate, generateToPostgres } from './generate.js';
import { mutate } from './mutate.js';
import {
  createPgDatabase,
  type Dump,
  dump,
  firstDifference,
  type ScratchDatabase,
  tempDir,
} from './test-support/databases.js';
import { integrityQueries } from './test-support/integrity.js';
import { expectExactly } from './test-support/mutation-check.js';
import { isValidUpn } from './upn.js';

// Real PostgreSQL at 127.0.0.1:5432 (trust auth); each database here is created and dropped by this file.
const dir = tempDir();
const databases: ScratchDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
  dir.remove();
});

async function scratch(prefix: string): Promise<ScratchDatabase> {
  const db = await createPgDatabase(prefix);
  databases.push(db);
  return db;
}

async function dumpOf(target: string): Promise<Dump> {
  const conn = await openMis(target);
  try {
    return await dump(conn);
  } finally {
    await conn.close();
  }
}

describe('PostgreSQL writer', () => {
  let a: ScratchDatabase;
  const sqlite = join(dir.path, 'tiny.sqlite');
  beforeAll(async () => {
    a = await scratch('pg_a');
    // One generation, two targets.
    await generate({ preset: 'tiny', seed: 5, targets: { sqlite, postgres: a.url } });
  });

  it('holds exactly the same rows as the SQLite file', async () => {
    expect(firstDifference(await dumpOf(sqlite), await dumpOf(a.url))).toBeNull();
  });

  it('gives identical rows for the same seed in another database, and different rows for another seed', async () => {
    const b = await scratch('pg_b');
    await generateToPostgres(b.url, { preset: 'tiny', seed: 5 });
    expect(firstDifference(await dumpOf(a.url), await dumpOf(b.url))).toBeNull();
    await generateToPostgres(b.url, { preset: 'tiny', seed: 6 });
    expect(firstDifference(await dumpOf(a.url), await dumpOf(b.url))).not.toBeNull();
  });

  it('uses schema sims with typed columns, valid UPNs and no orphans', async () => {
    const conn: MisConnection = await openMis(a.url);
    try {
      const types = await conn.all(
        `SELECT table_name, column_name, data_type FROM information_schema.columns
          WHERE table_schema = 'sims' AND column_name IN ('session_start', 'dob', 'rowversion', 'external_id', 'eal')
          ORDER BY table_name, column_name`,
      );
      const typeOf = (t: string, c: string) =>
        types.find((r) => r.table_name === t && r.column_name === c)?.data_type as string | undefined;
      expect(typeOf('att_mark_normalised', 'session_start')).toBe('timestamp without time zone');
      expect(typeOf('sims_person', 'dob')).toBe('date');
      expect(typeOf('sims_person', 'external_id')).toBe('uuid');
      expect(typeOf('stud_student', 'rowversion')).toBe('bigint');
      expect(typeOf('stud_student', 'eal')).toBe('smallint');
      const upns = await conn.all(`SELECT unique_pupil_no AS u FROM ${conn.table('stud_student')}`);
      expect(upns.length).toBeGreaterThan(0);
      expect(upns.every((r) => isValidUpn(r.u))).toBe(true);
      for (const [label, sql] of integrityQueries((n) => conn.table(n)))
        expect(await conn.all(sql), label).toEqual([]);
    } finally {
      await conn.close();
    }
  });

  it('mutates PostgreSQL exactly as reported, and exactly like SQLite', async () => {
    const before = await dumpOf(a.url);
    const pgReport = await mutate(a.url, { day: 1 });
    expectExactly(before, await dumpOf(a.url), pgReport);
    const sqliteReport = await mutate(sqlite, { day: 1 });
    expect({ ...pgReport, target: '' }).toEqual({ ...sqliteReport, target: '' });
    expect(firstDifference(await dumpOf(sqlite), await dumpOf(a.url))).toBeNull();
  });

  it('re-creates schema sims from scratch when generating again', async () => {
    await generateToPostgres(a.url, { preset: 'tiny', seed: 5 });
    const fresh = join(dir.path, 'fresh.sqlite');
    await generate({ preset: 'tiny', seed: 5, targets: { sqlite: fresh } });
    expect(firstDifference(await dumpOf(fresh), await dumpOf(a.url))).toBeNull();
  });
});

describe('PostgreSQL and SQLite at primary size', () => {
  it('are equal row for row', async () => {
    const c = await scratch('pg_c');
    const sqlite = join(dir.path, 'primary.sqlite');
    await generate({ preset: 'primary', seed: 2, targets: { sqlite, postgres: c.url } });
    expect(firstDifference(await dumpOf(sqlite), await dumpOf(c.url))).toBeNull();
  }, 60_000);
});

describe('PostgreSQL targets that do not work', () => {
  it('reports an unreachable server, a missing database and a bad URL in one line', async () => {
    await expect(
      generateToPostgres('postgres://postgres@127.0.0.1:1/x', { preset: 'tiny' }),
    ).rejects.toMatchObject({
      code: 'demo_mis.target_unreachable',
      message: 'cannot reach PostgreSQL at 127.0.0.1:1: connection refused',
    });
    await expect(
      generateToPostgres('postgres://postgres@127.0.0.1:5432/demomis_no_such_db', { preset: 'tiny' }),
    ).rejects.toMatchObject({ code: 'demo_mis.target_missing' });
    await expect(generateToPostgres('http://example.com/x', { preset: 'tiny' })).rejects.toMatchObject({
      code: 'demo_mis.bad_option',
    });
  });
});
