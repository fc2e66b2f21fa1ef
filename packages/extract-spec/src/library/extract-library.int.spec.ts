/**
 * Runs every library extract against a real demo MIS: the `primary` preset generated into a
 * temporary SQLite file by @keystage/demo-mis (imported from its built dist: it is not a
 * dependency of this package; build it with `pnpm --filter @keystage/demo-mis run build`),
 * queried through better-sqlite3 with the file attached as `sims`, read-only
 * (PRAGMA query_only), each statement validated first as the agent does, parameters bound by
 * name.
 *
 * Real: the generator, SQLite, the SQL, parameter resolution and binding. Changed on purpose:
 * one open contact link is ended before the run, to prove the extracts honour end dates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutputColumn } from '../document/extract-document.schema.js';
import { bindParameters, resolveParameters } from '../document/parameters.js';
import { loadPermissionMapping } from '../permissions/permission-mapping.js';
import { validateSql } from '../sql/sql-validator.js';
import { LIBRARY_EXTRACTS, loadLibraryExtract } from './extract-library.js';

interface DemoMis {
  generate(options: {
    preset: string;
    seed: number;
    targets: { sqlite: string };
  }): Promise<{ today: string }>;
  TABLES: readonly { name: string; columns: readonly { name: string }[] }[];
}
interface Statement {
  all(params?: Record<string, unknown>): Record<string, unknown>[];
  get(params?: unknown): Record<string, unknown> | undefined;
  run(...params: unknown[]): unknown;
  columns(): { name: string }[];
}
interface Db {
  prepare(sql: string): Statement;
  pragma(sql: string): unknown;
  close(): void;
}

const demoMisDist = new URL('../../../demo-mis/dist/index.js', import.meta.url);
const requireFromDemoMis = createRequire(new URL('../../../demo-mis/package.json', import.meta.url));

let dir: string;
let db: Db;
let demo: DemoMis;
let today: string;
/** The contact link ended before the run: (pupil, contact). */
let ended: { student_id: number; contact_id: number };

beforeAll(async () => {
  demo = (await import(demoMisDist.href).catch((err: unknown) => {
    throw new Error(
      `cannot load ${demoMisDist.pathname}: build it first with pnpm --filter @keystage/demo-mis run build (${String(err)})`,
    );
  })) as DemoMis;
  const Database = requireFromDemoMis('better-sqlite3') as new (path: string) => Db;
  dir = mkdtempSync(join(tmpdir(), 'extract-library-'));
  const file = join(dir, 'school.sqlite');
  ({ today } = await demo.generate({ preset: 'primary', seed: 1, targets: { sqlite: file } }));

  db = new Database(':memory:');
  db.prepare('ATTACH DATABASE ? AS sims').run(file);
  // End one open, direct, priority 1 link with parental responsibility (SIMS would set end_date).
  const link = db
    .prepare(
      `SELECT r.relation_id, r.student_id, r.contact_id FROM sims.stud_relation r
       JOIN sims.stud_school_history h ON h.person_id = r.student_id AND h.end_date IS NULL
       WHERE r.priority = 1 AND r.parental_responsibility = 1 AND r.via_applicant = 0 AND r.end_date = '2079-06-06'
       ORDER BY r.relation_id LIMIT 1`,
    )
    .get() as { relation_id: number; student_id: number; contact_id: number };
  db.prepare("UPDATE sims.stud_relation SET end_date = '2025-07-01' WHERE relation_id = ?").run(
    link.relation_id,
  );
  ended = { student_id: link.student_id, contact_id: link.contact_id };
  db.pragma('query_only = ON');
}, 60_000);

afterAll(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const TYPE_CHECKS: Record<OutputColumn['type'], (v: unknown) => boolean> = {
  integer: (v) => Number.isInteger(v),
  decimal: (v) => typeof v === 'number',
  boolean: (v) => v === 0 || v === 1,
  string: (v) => typeof v === 'string',
  date: (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v),
  timestamp: (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(v),
};

const parsedExtracts = new Map(LIBRARY_EXTRACTS.map((name) => [name, loadLibraryExtract(name)]));

function dataset(name: (typeof LIBRARY_EXTRACTS)[number], datasetName: string) {
  const parsed = parsedExtracts.get(name);
  if (!parsed?.ok) throw new Error(`${name} does not parse`);
  const d = parsed.document.datasets.find((x) => x.name === datasetName);
  if (!d) throw new Error(`${name} has no dataset ${datasetName}`);
  const params = resolveParameters(parsed.document.parameters, {}, { today });
  if (!params.ok) throw new Error(JSON.stringify(params.problems));
  return { d, bound: bindParameters(d.sql, 'sqlite', params.bindings, 'colon') };
}

/** Runs one dataset of a library extract as the agent would. */
function run(name: (typeof LIBRARY_EXTRACTS)[number], datasetName: string): Record<string, unknown>[] {
  const { bound } = dataset(name, datasetName);
  return db.prepare(bound.sql).all(bound.named);
}

describe('library extracts on the demo MIS (SQLite, preset primary)', () => {
  const cases = LIBRARY_EXTRACTS.flatMap((name) => {
    const parsed = parsedExtracts.get(name);
    return parsed?.ok
      ? parsed.document.datasets.map((d) => ({ name, dataset: d.name }))
      : [{ name, dataset: '?' }];
  });

  it.each(cases)(
    '$name / $dataset runs and returns exactly its declared columns',
    ({ name, dataset: which }) => {
      const { d, bound } = dataset(name, which);
      expect(validateSql(d.sql, 'sqlite').ok).toBe(true);
      const statement = db.prepare(bound.sql);
      const declared = d.columns.map((c) => c.name);
      expect(statement.columns().map((c) => c.name)).toEqual(declared);

      const rows = statement.all(bound.named);
      expect(rows.length).toBeGreaterThan(0);
      // Collected, then asserted once: tens of thousands of expect() calls would be slow.
      const wrong = new Set<string>();
      for (const row of rows) {
        if (Object.keys(row).join() !== declared.join()) wrong.add(`row keys ${Object.keys(row).join()}`);
        for (const c of d.columns) {
          const v = row[c.name];
          if (v === null ? !c.nullable : !TYPE_CHECKS[c.type](v))
            wrong.add(`${c.name} = ${JSON.stringify(v)} (${c.type})`);
        }
      }
      expect([...wrong].slice(0, 5)).toEqual([]);
      // Delta needs the key to identify one row.
      if (d.key) {
        const keys = rows.map((r) => JSON.stringify(d.key?.map((k) => r[k])));
        expect(new Set(keys).size).toBe(keys.length);
      }
    },
  );

  it('parent messaging leaves out applicant-only links, duplicate applicant links and ended links', () => {
    const applicant = db
      .prepare(
        `SELECT a.student_id, a.contact_id,
                (SELECT COUNT(*) FROM sims.stud_relation d
                  WHERE d.student_id = a.student_id AND d.contact_id = a.contact_id AND d.via_applicant = 0) AS direct
         FROM sims.stud_relation a
         WHERE a.via_applicant = 1 AND a.priority <= 2`,
      )
      .all() as { student_id: number; contact_id: number; direct: number }[];
    // The traps are in the data: a link left only through an applicant record (its direct link
    // was deleted) and applicant links that duplicate a direct one.
    expect(applicant.some((a) => a.direct === 0)).toBe(true);
    expect(applicant.some((a) => a.direct === 1)).toBe(true);
    const contacts = run('parent-messaging', 'contacts');
    const count = new Map<string, number>();
    for (const r of contacts)
      count.set(`${r.pupil_id}/${r.contact_id}`, (count.get(`${r.pupil_id}/${r.contact_id}`) ?? 0) + 1);
    for (const a of applicant) {
      const n = count.get(`${a.student_id}/${a.contact_id}`) ?? 0;
      expect(n).toBe(a.direct === 0 ? 0 : 1);
    }
    expect(count.has(`${ended.student_id}/${ended.contact_id}`)).toBe(false);
    expect(contacts.every((r) => r.priority === 1 || r.priority === 2)).toBe(true);
    // The payer in catering follows the same rules: the ended priority 1 contact is no payer.
    const pupil = run('cashless-catering', 'pupils').find((r) => r.pupil_id === ended.student_id);
    expect(pupil).toBeDefined();
    expect(pupil?.payer_id).not.toBe(ended.contact_id);
  });

  it("absence alerts send today's N, O and U marks, and only those", () => {
    const alerts = run('absence-alerts', 'absences');
    const expected = db
      .prepare(
        `SELECT COUNT(*) AS n FROM sims.att_mark_normalised
         WHERE date(session_start) = ? AND mark IN ('N', 'O', 'U')`,
      )
      .get(today) as { n: number };
    expect(alerts).toHaveLength(expected.n);
    expect(alerts.every((r) => r.session_date === today && ['N', 'O', 'U'].includes(String(r.mark)))).toBe(
      true,
    );
  });

  it('the demo MIS is read-only for the extracts', () => {
    expect(() => db.prepare('DELETE FROM sims.sims_school').run()).toThrow(/readonly|read-only|query_only/i);
  });

  it('the permission mapping covers every table and column of the demo MIS', () => {
    const mapping = loadPermissionMapping('sims-v1');
    const demoTables = Object.fromEntries(demo.TABLES.map((t) => [t.name, t.columns.map((c) => c.name)]));
    const mapped = Object.fromEntries([...mapping.tables].map(([name, t]) => [name, [...t.columns.keys()]]));
    expect(mapped).toEqual(demoTables);
  });
});
