import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMis } from './connection.js';
import { DemoMisError } from './errors.js';
import { generateToSqlite } from './generate.js';
import { type MutationReport, mutate, mutationDate } from './mutate.js';
import { dump, tempDir } from './test-support/databases.js';
import { integrityQueries } from './test-support/integrity.js';
import { expectExactly } from './test-support/mutation-check.js';

const dir = tempDir();
afterAll(() => dir.remove());

async function snapshot(path: string) {
  const conn = await openMis(path);
  try {
    return await dump(conn);
  } finally {
    await conn.close();
  }
}

describe('mutate on SQLite', () => {
  const path = join(dir.path, 'school.sqlite');
  let before: Awaited<ReturnType<typeof snapshot>>;
  let report: MutationReport;
  beforeAll(async () => {
    await generateToSqlite(path, { preset: 'tiny', seed: 11 });
    copyFileSync(path, join(dir.path, 'pristine.sqlite'));
    before = await snapshot(path);
    report = await mutate(path);
  });

  it('applies the next school day after the generated today', () => {
    expect(report.day).toBe(1);
    const today = JSON.parse(before.get('demo_meta')!.get('1')!)[3];
    expect(report.date).toBe(mutationDate(today, 1));
    expect(report.date > today).toBe(true);
  });

  it('changes exactly what it reports, each change with a new rowversion', async () => {
    expectExactly(before, await snapshot(path), report);
  });

  it('contains every kind of change of a school day', () => {
    const c = report.changes;
    expect(c.att_mark_normalised!.inserted.length).toBeGreaterThan(50); // the day's AM and PM marks
    expect(c.att_mark_normalised!.updated.length).toBeGreaterThan(0); // late corrections
    expect(c.stud_school_history!.updated).toHaveLength(1); // a leaver
    expect(c.stud_school_history!.inserted).toHaveLength(1); // a joiner
    expect(c.stud_student!.inserted).toHaveLength(1);
    expect(c.stud_relation!.inserted.length).toBeGreaterThan(0); // the joiner's contacts
    expect(c.stud_contact!.inserted.length).toBeGreaterThan(0);
    expect(c.sims_telephone!.updated).toHaveLength(1); // a changed phone number
    expect(c.stud_relation!.deleted).toHaveLength(1); // a removed contact link …
    expect(c.sys_deletion!.inserted).toHaveLength(1); // … recorded as a deletion
    expect(c.sims_member!.inserted.length).toBeGreaterThan(1); // class change and joiner
    expect(c.sims_member!.updated.length).toBeGreaterThan(1); // leaver and class change
    expect(report.summary.some((l) => l.startsWith('class change:'))).toBe(true);
  });

  it('records the removed link in sys_deletion with its key', async () => {
    const after = await snapshot(path);
    const deletion = JSON.parse(after.get('sys_deletion')!.get(report.changes.sys_deletion!.inserted[0]!)!);
    expect(deletion[1]).toBe('stud_relation');
    expect(deletion[2]).toBe(report.changes.stud_relation!.deleted[0]);
    expect(String(deletion[3]).slice(0, 10)).toBe(report.date);
  });

  it('refuses a day already applied, and continues with the next day by default', async () => {
    await expect(mutate(path, { day: 1 })).rejects.toMatchObject({ code: 'demo_mis.day_applied' });
    await expect(mutate(path, { day: 1 })).rejects.toBeInstanceOf(DemoMisError);
    const b = await snapshot(path);
    const second = await mutate(path);
    expect(second.day).toBe(2);
    expect(second.date > report.date).toBe(true);
    expect(second.rowversionBefore).toBe(report.rowversionAfter);
    expectExactly(b, await snapshot(path), second);
  });

  it('keeps referential integrity after two days of change', async () => {
    const conn = await openMis(path);
    try {
      for (const [label, sql] of integrityQueries((n) => conn.table(n)))
        expect(await conn.all(sql), label).toEqual([]);
    } finally {
      await conn.close();
    }
  });

  it('is deterministic for (seed, day): the same day on a copy gives a byte-identical file', async () => {
    const a = join(dir.path, 'a.sqlite');
    const b = join(dir.path, 'b.sqlite');
    copyFileSync(join(dir.path, 'pristine.sqlite'), a);
    copyFileSync(join(dir.path, 'pristine.sqlite'), b);
    const ra = await mutate(a, { day: 3 });
    const rb = await mutate(b, { day: 3 });
    expect(rb).toEqual({ ...ra, target: b });
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    // Another day makes other choices.
    const c = join(dir.path, 'c.sqlite');
    copyFileSync(join(dir.path, 'pristine.sqlite'), c);
    const rc = await mutate(c, { day: 4 });
    expect(rc.summary.slice(1)).not.toEqual(ra.summary.slice(1));
  });

  it('rejects a missing file and a file that is not a demo MIS', async () => {
    await expect(mutate(join(dir.path, 'missing.sqlite'))).rejects.toMatchObject({
      code: 'demo_mis.target_missing',
    });
    const empty = join(dir.path, 'empty.sqlite');
    const { default: Database } = await import('better-sqlite3');
    new Database(empty).close();
    await expect(mutate(empty)).rejects.toMatchObject({ code: 'demo_mis.not_demo_database' });
  });
});
