import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEW_CODES_FROM, NO_END_DATE } from './calendar.js';
import { generateToSqlite } from './generate.js';
import { createGenerator } from './generator.js';
import { PERMISSION_GROUPS } from './permissions.js';
import { TABLES } from './tables.js';
import { tempDir } from './test-support/databases.js';
import { integrityQueries } from './test-support/integrity.js';
import { isValidUln, isValidUpn } from './upn.js';

type Q = <T = Record<string, unknown>>(sql: string, ...params: unknown[]) => T[];

/** Opens a generated file the way consumers do: attached as `sims`. */
function attach(path: string): {
  q: Q;
  one: (sql: string, ...params: unknown[]) => number;
  close: () => void;
} {
  const db = new Database(':memory:');
  db.prepare('ATTACH DATABASE ? AS sims').run(path);
  const q: Q = (sql, ...params) => db.prepare(sql).all(...params) as never;
  const one = (sql: string, ...params: unknown[]) =>
    Number(Object.values(q(sql, ...params)[0] ?? { n: 0 })[0]);
  return { q, one, close: () => db.close() };
}

const dir = tempDir();
afterAll(() => dir.remove());

const ON_ROLL_TODAY = `SELECT count(*) FROM sims.stud_school_history h, sims.demo_meta m
  WHERE h.start_date <= m.today AND (h.end_date IS NULL OR h.end_date >= m.today)`;

describe('tiny preset (SQLite)', () => {
  const path = join(dir.path, 'tiny.sqlite');
  let db: ReturnType<typeof attach>;
  beforeAll(async () => {
    await generateToSqlite(path, { preset: 'tiny', seed: 7 });
    db = attach(path);
  });
  afterAll(() => db.close());

  it('fills every table and has about 30 pupils on roll over two academic years', () => {
    for (const t of TABLES) expect(db.one(`SELECT count(*) FROM sims.${t.name}`), t.name).toBeGreaterThan(0);
    expect(db.one(ON_ROLL_TODAY)).toBeGreaterThanOrEqual(25);
    expect(db.one(ON_ROLL_TODAY)).toBeLessThanOrEqual(40);
    expect(db.one('SELECT count(DISTINCT academic_year) FROM sims.curr_class')).toBe(2);
  });

  it('has valid, unique UPNs and ULNs', () => {
    const upns = db.q<{ u: string }>('SELECT unique_pupil_no AS u FROM sims.stud_student');
    const former = db.q<{ u: string }>(
      'SELECT former_upn AS u FROM sims.stud_student WHERE former_upn IS NOT NULL',
    );
    expect(former.length).toBeGreaterThan(0);
    const all = [...upns, ...former].map((r) => r.u);
    expect(all.every(isValidUpn)).toBe(true);
    expect(new Set(all).size).toBe(all.length);
    const ulns = db
      .q<{ u: string }>('SELECT uln AS u FROM sims.sims_person_unique_learner_number')
      .map((r) => r.u);
    expect(ulns.length).toBeGreaterThan(0);
    expect(ulns.every(isValidUln)).toBe(true);
    expect(new Set(ulns).size).toBe(ulns.length);
  });

  it('has no orphans and no rows outside their dates', () => {
    for (const [label, sql] of integrityQueries((n) => `sims.${n}`)) {
      expect(db.q(sql), label).toEqual([]);
    }
  });

  it('gives every row a distinct rowversion', () => {
    const parts = TABLES.map((t) => `SELECT rowversion FROM sims.${t.name}`).join(' UNION ALL ');
    const total = db.one(`SELECT count(*) FROM (${parts})`);
    expect(db.one(`SELECT count(DISTINCT rowversion) FROM (${parts})`)).toBe(total);
    expect(db.one(`SELECT count(*) FROM (${parts}) WHERE rowversion IS NULL OR rowversion < 1`)).toBe(0);
  });

  describe('seeds the edge cases of DOMAIN.md', () => {
    const pupilNames = () =>
      db.q<{ surname: string; forename: string }>(
        'SELECT p.surname, p.forename FROM sims.sims_person p JOIN sims.stud_student s ON s.person_id = p.person_id',
      );

    it("names with apostrophes, hyphens and non-ASCII letters (Zoë, O'Brien, Nguyễn)", () => {
      const names = pupilNames();
      expect(names.some((n) => n.forename === 'Zoë')).toBe(true);
      expect(names.some((n) => n.surname === "O'Brien")).toBe(true);
      expect(names.some((n) => n.surname === 'Nguyễn')).toBe(true);
      expect(names.some((n) => /\w-\w/.test(n.surname))).toBe(true);
      expect(names.some((n) => /[^\x20-\x7e]/.test(n.forename + n.surname))).toBe(true);
    });

    it('split families: priority 1 and 2 at different addresses, one link with a court order', () => {
      const rows = db.q(`
        SELECT r1.student_id FROM sims.stud_relation r1
          JOIN sims.stud_relation r2 ON r2.student_id = r1.student_id AND r2.priority = 2 AND r2.via_applicant = 0
          JOIN sims.sims_address_link a1 ON a1.person_id = r1.contact_id AND a1.end_date = '${NO_END_DATE}'
          JOIN sims.sims_address_link a2 ON a2.person_id = r2.contact_id AND a2.end_date = '${NO_END_DATE}'
         WHERE r1.priority = 1 AND r1.via_applicant = 0 AND a1.address_id <> a2.address_id
           AND (r1.court_order = 1 OR r2.court_order = 1) AND r1.lives_with = 1 AND r2.lives_with = 0`);
      expect(rows.length).toBeGreaterThan(0);
    });

    it('applicant-only contact links, whose direct link was deleted (recorded in sys_deletion)', () => {
      const rows = db.q(`
        SELECT a.relation_id FROM sims.stud_relation a
         WHERE a.via_applicant = 1 AND NOT EXISTS (
           SELECT 1 FROM sims.stud_relation d
            WHERE d.student_id = a.student_id AND d.contact_id = a.contact_id AND d.via_applicant = 0)`);
      expect(rows.length).toBeGreaterThan(0);
      const deleted = db.q<{ k: string }>(
        "SELECT entity_key AS k FROM sims.sys_deletion WHERE entity = 'stud_relation'",
      );
      expect(deleted.length).toBeGreaterThan(0);
      for (const { k } of deleted) {
        expect(db.one('SELECT count(*) FROM sims.stud_relation WHERE relation_id = ?', Number(k))).toBe(0);
      }
    });

    it('siblings sharing contacts, with parental responsibility and lives-with flags', () => {
      expect(
        db.one(`SELECT count(*) FROM (SELECT contact_id FROM sims.stud_relation WHERE via_applicant = 0
                 GROUP BY contact_id HAVING count(DISTINCT student_id) > 1)`),
      ).toBeGreaterThan(0);
      expect(
        db.one('SELECT count(*) FROM sims.stud_relation WHERE parental_responsibility = 0'),
      ).toBeGreaterThan(0);
      expect(
        db.one('SELECT count(*) FROM sims.stud_relation WHERE parental_responsibility = 1'),
      ).toBeGreaterThan(0);
    });

    it('a looked-after pupil with a foster carer and a social worker', () => {
      expect(
        db.one(`SELECT count(*) FROM sims.stud_student s
                 JOIN sims.stud_relation f ON f.student_id = s.person_id AND f.relation_code = 'FOF'
                 JOIN sims.stud_relation w ON w.student_id = s.person_id AND w.relation_code = 'SWR'
                WHERE s.in_care = 1`),
      ).toBeGreaterThan(0);
    });

    it('leavers, mid-year joiners and a prospective pupil registered with Z', () => {
      expect(
        db.one(
          'SELECT count(*) FROM sims.stud_school_history h, sims.demo_meta m WHERE h.end_date < m.today',
        ),
      ).toBeGreaterThan(0);
      // Joined after the first month of an academic year covered by the data.
      expect(
        db.one(`SELECT count(*) FROM sims.stud_school_history
                 WHERE start_date >= '2023-10-01' AND substr(start_date, 6, 2) NOT IN ('08', '09')`),
      ).toBeGreaterThan(0);
      expect(db.one("SELECT count(*) FROM sims.att_mark_normalised WHERE mark = 'Z'")).toBeGreaterThan(0);
    });

    it('dual registration (code D) and sixth-formers marked X', () => {
      expect(
        db.one(`SELECT count(*) FROM sims.att_mark_normalised m JOIN sims.stud_school_history h ON h.person_id = m.person_id
                 WHERE m.mark = 'D' AND h.enrol_status IN ('M', 'S') AND h.dual_school_id IS NOT NULL`),
      ).toBeGreaterThan(0);
      expect(
        db.one("SELECT count(*) FROM sims.stud_school_history WHERE enrol_status = 'S'"),
      ).toBeGreaterThan(0);
      expect(
        db.one(`SELECT count(*) FROM sims.att_mark_normalised m JOIN sims.stud_student s ON s.person_id = m.person_id
                 WHERE m.mark = 'X' AND s.current_ncyear >= 12`),
      ).toBeGreaterThan(0);
    });

    it('both attendance code sets, each with validity dates, and marks from both', () => {
      expect(
        db
          .q<{ code: string }>(
            `SELECT code FROM sims.att_code WHERE valid_to < '${NEW_CODES_FROM}' ORDER BY code`,
          )
          .map((r) => r.code),
      ).toEqual(['H', 'J', 'Y']);
      const newOnly = db
        .q<{ code: string }>(
          `SELECT code FROM sims.att_code WHERE valid_from = '${NEW_CODES_FROM}' ORDER BY code`,
        )
        .map((r) => r.code);
      expect(newOnly).toEqual(expect.arrayContaining(['C1', 'C2', 'J1', 'Y1', 'Y7']));
      expect(
        db.one(`SELECT count(*) FROM sims.att_mark_normalised m JOIN sims.att_code c ON c.code = m.mark
                 WHERE c.valid_to < '${NEW_CODES_FROM}'`),
      ).toBeGreaterThan(0);
      expect(
        db.one(`SELECT count(*) FROM sims.att_mark_normalised m JOIN sims.att_code c ON c.code = m.mark
                 WHERE c.valid_from = '${NEW_CODES_FROM}'`),
      ).toBeGreaterThan(0);
      for (const code of ['/', '\\', 'L', 'I', 'E', '#', 'V', 'W', 'S']) {
        expect(
          db.one('SELECT count(*) FROM sims.att_mark_normalised WHERE mark = ?', code),
          code,
        ).toBeGreaterThan(0);
      }
    });

    it("SIMS's no-end date 2079-06-06 and missing optional fields", () => {
      for (const t of ['sims_member', 'stud_relation', 'per_employee', 'sims_address_link']) {
        expect(db.one(`SELECT count(*) FROM sims.${t} WHERE end_date = '${NO_END_DATE}'`), t).toBeGreaterThan(
          0,
        );
      }
      expect(db.one('SELECT count(*) FROM sims.sims_person WHERE midname IS NULL')).toBeGreaterThan(0);
      expect(
        db.one(
          'SELECT count(*) FROM sims.sims_person p JOIN sims.stud_contact c ON c.person_id = p.person_id WHERE p.dob IS NULL',
        ),
      ).toBeGreaterThan(0);
      expect(db.one('SELECT count(*) FROM sims.stud_student WHERE ethnicity_code IS NULL')).toBeGreaterThan(
        0,
      );
      expect(db.one('SELECT count(*) FROM sims.sims_address WHERE locality IS NULL')).toBeGreaterThan(0);
      expect(
        db.one(`SELECT count(*) FROM sims.stud_contact c
                 WHERE NOT EXISTS (SELECT 1 FROM sims.sims_email e WHERE e.person_id = c.person_id)`),
      ).toBeGreaterThan(0);
    });

    it('exclusions with E marks, medical conditions, SEN, FSM and assessment of every aspect type', () => {
      expect(
        db.one(`SELECT count(*) FROM sims.att_mark_normalised m JOIN sims.excl_exclusion x ON x.person_id = m.person_id
                 WHERE m.mark = 'E' AND date(m.session_start) BETWEEN x.start_date AND x.end_date`),
      ).toBeGreaterThan(0);
      expect(db.one('SELECT count(*) FROM sims.med_condition')).toBeGreaterThan(0);
      expect(db.one("SELECT count(*) FROM sims.stud_student WHERE sen_provision = 'E'")).toBeGreaterThan(0);
      expect(db.one("SELECT count(*) FROM sims.stud_student WHERE sen_provision = 'K'")).toBeGreaterThan(0);
      expect(db.one('SELECT count(*) FROM sims.stud_student WHERE fsm_eligible = 1')).toBeGreaterThan(0);
      const types = db
        .q<{ t: string }>(
          'SELECT DISTINCT a.aspect_type AS t FROM sims.asm_result r JOIN sims.asm_aspect a ON a.aspect_id = r.aspect_id ORDER BY 1',
        )
        .map((r) => r.t);
      expect(types).toEqual(['C', 'D', 'G', 'I', 'R']);
    });

    it('the permission groups of DOMAIN.md, users in them, and grants naming real tables and columns', () => {
      const groups = db
        .q<{ g: string }>('SELECT group_name AS g FROM sims.sys_group ORDER BY group_id')
        .map((r) => r.g);
      expect(groups).toEqual(PERMISSION_GROUPS.map((g) => g.name));
      for (const name of [
        'Personnel Officer',
        'School Administrator',
        'Senior Management Team',
        'Third Party Reporter',
        'Assessment Coordinator',
        'Admissions Officer',
        'Administration Assistant',
        'Class Teacher',
        'Pastoral Manager',
        'SENCO',
      ]) {
        expect(groups).toContain(name);
      }
      const grants = db.q<{ t: string; c: string | null }>(
        'SELECT table_name AS t, column_name AS c FROM sims.sys_group_permission',
      );
      for (const g of grants) {
        const def = TABLES.find((t) => t.name === g.t);
        expect(def, g.t).toBeDefined();
        if (g.c !== null) expect(def!.columns.map((c) => c.name)).toContain(g.c);
      }
      expect(
        db.one(`SELECT count(*) FROM sims.sys_user u JOIN sims.sys_user_group ug ON ug.user_id = u.user_id
                 JOIN sims.sys_group g ON g.group_id = ug.group_id
                WHERE u.login_name = 'svc_keystage' AND g.group_name = 'Third Party Reporter'`),
      ).toBe(1);
    });
  });

  it('writes a byte-identical file for the same seed, and a different one for another seed', async () => {
    const again = join(dir.path, 'tiny-again.sqlite');
    const other = join(dir.path, 'tiny-other.sqlite');
    await generateToSqlite(again, { preset: 'tiny', seed: 7 });
    await generateToSqlite(other, { preset: 'tiny', seed: 8 });
    expect(readFileSync(again).equals(readFileSync(path))).toBe(true);
    expect(readFileSync(other).equals(readFileSync(path))).toBe(false);
  });
});

describe('primary preset (SQLite)', () => {
  const path = join(dir.path, 'primary.sqlite');
  let db: ReturnType<typeof attach>;
  beforeAll(async () => {
    await generateToSqlite(path, { preset: 'primary', seed: 1 });
    db = attach(path);
  });
  afterAll(() => db.close());

  it('has about 250 pupils in Reception to Year 6 and one year of AM/PM marks', () => {
    const roll = db.one(ON_ROLL_TODAY);
    expect(roll).toBeGreaterThanOrEqual(235);
    expect(roll).toBeLessThanOrEqual(265);
    expect(
      db.q('SELECT DISTINCT current_ncyear FROM sims.stud_student ORDER BY 1').map((r) => r.current_ncyear),
    ).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // 186 school days up to "today": about 372 sessions per pupil.
    const marks = db.one('SELECT count(*) FROM sims.att_mark_normalised');
    expect(marks / roll).toBeGreaterThan(355);
    expect(marks / roll).toBeLessThan(385);
    expect(db.one('SELECT count(DISTINCT session_name) FROM sims.att_mark_normalised')).toBe(2);
    const links = db.one('SELECT count(*) FROM sims.stud_relation WHERE via_applicant = 0');
    expect(links / db.one('SELECT count(*) FROM sims.stud_student')).toBeGreaterThan(2.0);
    expect(links / db.one('SELECT count(*) FROM sims.stud_student')).toBeLessThan(2.7);
  });

  it('has no orphans', () => {
    for (const [label, sql] of integrityQueries((n) => `sims.${n}`)) expect(db.q(sql), label).toEqual([]);
  });
});

describe('secondary preset (SQLite)', () => {
  const path = join(dir.path, 'secondary.sqlite');
  let db: ReturnType<typeof attach>;
  beforeAll(async () => {
    await generateToSqlite(path, { preset: 'secondary', seed: 3 });
    db = attach(path);
  }, 60_000);
  afterAll(() => db.close());

  // DOMAIN.md gives figures for a 2,000-pupil secondary; this one is ≈1,100 (×0.55).
  const within = (value: number, expected: number, tolerance: number) => {
    expect(value).toBeGreaterThanOrEqual(expected * (1 - tolerance));
    expect(value).toBeLessThanOrEqual(expected * (1 + tolerance));
  };

  it("matches DOMAIN.md's sizes scaled to about 1,100 pupils", () => {
    const roll = db.one(ON_ROLL_TODAY);
    within(roll, 1100, 0.05);
    const scale = roll / 2000;
    within(db.one("SELECT count(*) FROM sims.per_employee WHERE end_date = '2079-06-06'"), 300 * scale, 0.25);
    within(db.one('SELECT count(*) FROM sims.sims_base_group WHERE group_type_id = 2'), 70 * scale, 0.25);
    within(db.one('SELECT count(*) FROM sims.curr_class'), 900 * scale, 0.3);
    within(
      db.one(
        'SELECT count(*) FROM sims.sims_member m JOIN sims.curr_class c ON c.base_group_id = m.base_group_id',
      ),
      20_000 * scale,
      0.25,
    );
    within(db.one('SELECT count(*) FROM sims.beh_incident'), 13_600 * scale, 0.25);
    within(db.one('SELECT count(*) FROM sims.ach_event'), 150_000 * scale, 0.25);
    within(db.one('SELECT count(*) FROM sims.asm_result'), 165_000 * scale, 0.2);
    const pupils = db.one('SELECT count(*) FROM sims.stud_student');
    const links = db.one('SELECT count(*) FROM sims.stud_relation WHERE via_applicant = 0') / pupils;
    expect(links).toBeGreaterThanOrEqual(2.2);
    expect(links).toBeLessThanOrEqual(2.6);
    // 1 year: at least 380 sessions for a full-year pupil (186 of 191 days so far).
    expect(db.one('SELECT count(DISTINCT session_start) FROM sims.att_mark_normalised')).toBe(372);
  });

  it('has realistic proportions: ≈90% present, FSM ≈25%, SEND ≈15%, EHCP ≈2%', () => {
    const marks = db.one('SELECT count(*) FROM sims.att_mark_normalised');
    const present = db.one("SELECT count(*) FROM sims.att_mark_normalised WHERE mark IN ('/', '\\')");
    expect(present / marks).toBeGreaterThan(0.87);
    expect(present / marks).toBeLessThan(0.93);
    const pupils = db.one('SELECT count(*) FROM sims.stud_student');
    within(db.one('SELECT count(*) FROM sims.stud_student WHERE fsm_eligible = 1') / pupils, 0.246, 0.2);
    within(db.one("SELECT count(*) FROM sims.stud_student WHERE sen_provision <> 'N'") / pupils, 0.15, 0.25);
    within(db.one("SELECT count(*) FROM sims.stud_student WHERE sen_provision = 'E'") / pupils, 0.02, 0.5);
  });

  it('has valid, unique UPNs and no orphans', () => {
    const upns = db.q<{ u: string }>('SELECT unique_pupil_no AS u FROM sims.stud_student').map((r) => r.u);
    expect(upns.every(isValidUpn)).toBe(true);
    expect(new Set(upns).size).toBe(upns.length);
    for (const [label, sql] of integrityQueries((n) => `sims.${n}`)) expect(db.q(sql), label).toEqual([]);
  });
});

describe('large preset (model only, not written)', () => {
  it('plans 2,000 pupils over 3 years with ≈2.3 M session marks and the DOMAIN.md figures', () => {
    const g = createGenerator({ preset: 'large', seed: 1 });
    const w = g.world;
    const today = w.today;
    const onRoll = w.pupils.filter(
      (p) => p.admission <= today && (p.leave === null || p.leave >= today),
    ).length;
    expect(onRoll).toBeGreaterThanOrEqual(1950);
    expect(onRoll).toBeLessThanOrEqual(2100);
    expect(w.years).toHaveLength(3);
    expect(w.pupils.length).toBeGreaterThan(2700);
    expect(w.pupils.length).toBeLessThan(3300);
    expect(g.sessionMarkCount).toBeGreaterThan(2_150_000);
    expect(g.sessionMarkCount).toBeLessThan(2_450_000);
    expect(w.contacts.length).toBeGreaterThan(3200);
    expect(w.contacts.length).toBeLessThan(4100);
    const staff = w.staff.filter((s) => s.end === NO_END_DATE).length;
    expect(staff).toBeGreaterThan(260);
    expect(staff).toBeLessThan(340);
    const finalYear = w.yearGroups[w.yearGroups.length - 1]!;
    const regs = [...finalYear.regGroups.values()].flat().length;
    expect(regs).toBeGreaterThan(60);
    expect(regs).toBeLessThan(85);
    expect(finalYear.classes.length).toBeGreaterThan(750);
    expect(finalYear.classes.length).toBeLessThan(1000);
    const classIds = new Set(finalYear.classes.map((c) => c.group.id));
    const memberships = w.members.filter((m) => classIds.has(m.groupId)).length;
    expect(memberships).toBeGreaterThan(17_000);
    expect(memberships).toBeLessThan(23_500);
  }, 60_000);
});
