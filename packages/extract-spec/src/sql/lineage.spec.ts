import { describe, expect, it } from 'vitest';
import { type Lineage, lineage } from './lineage.js';

/** `table.column: usage,usage` lines, for compact and exact assertions. */
function uses(l: Lineage): string[] {
  return l.columns.map((c) => `${c.table}.${c.column}: ${c.usage.join(',')}`);
}

describe('lineage', () => {
  it('resolves aliases to schema-qualified tables and records each clause', () => {
    const l = lineage(
      `SELECT s.unique_pupil_no AS upn, p.surname, COUNT(*) AS n
       FROM sims.stud_student s
       JOIN sims.sims_person p ON p.person_id = s.person_id
       WHERE s.current_ncyear >= 7
       GROUP BY s.unique_pupil_no, p.surname
       HAVING MAX(p.dob) > '2010-01-01'
       ORDER BY p.forename`,
      'sqlite',
    );
    expect(l.tables).toEqual(['sims.sims_person', 'sims.stud_student']);
    expect(uses(l)).toEqual([
      'sims.sims_person.dob: filter',
      'sims.sims_person.forename: order',
      'sims.sims_person.person_id: join',
      'sims.sims_person.surname: output,group',
      'sims.stud_student.current_ncyear: filter',
      'sims.stud_student.person_id: join',
      'sims.stud_student.unique_pupil_no: output,group',
    ]);
    expect(l.outputs).toEqual([
      { name: 'upn', sources: [{ table: 'sims.stud_student', column: 'unique_pupil_no' }] },
      { name: 'surname', sources: [{ table: 'sims.sims_person', column: 'surname' }] },
      { name: 'n', sources: [] },
    ]);
    expect(l.problems).toEqual([]);
  });

  it('follows columns through CTEs and derived tables, and keeps what they read internally', () => {
    const l = lineage(
      `WITH contacts AS (
         SELECT r.student_id, r.contact_id, r.lives_with
         FROM sims.stud_relation r
         WHERE r.via_applicant = 0 AND r.priority <= 2)
       SELECT c.student_id AS pupil_id, x.surname
       FROM contacts c
       JOIN (SELECT person_id, surname FROM sims.sims_person) x ON x.person_id = c.contact_id`,
      'postgresql',
    );
    expect(uses(l)).toEqual([
      'sims.sims_person.person_id: join,subquery',
      'sims.sims_person.surname: output,subquery',
      'sims.stud_relation.contact_id: join,subquery',
      // selected by the CTE but never used: still read
      'sims.stud_relation.lives_with: subquery',
      'sims.stud_relation.priority: filter,subquery',
      'sims.stud_relation.student_id: output,subquery',
      'sims.stud_relation.via_applicant: filter,subquery',
    ]);
    expect(l.outputs.map((o) => o.name)).toEqual(['pupil_id', 'surname']);
  });

  it('reads scalar, IN and EXISTS subqueries, correlated or not', () => {
    const l = lineage(
      `SELECT s.person_id,
              (SELECT t.telephone_number FROM sims.sims_telephone t
                WHERE t.person_id = s.person_id AND t.device = 'Mobile' LIMIT 1) AS mobile
       FROM sims.stud_student s
       WHERE s.person_id IN (SELECT m.person_id FROM sims.sims_member m WHERE m.end_date > :d)
         AND EXISTS (SELECT 1 FROM sims.stud_school_history h WHERE h.person_id = s.person_id)`,
      'sqlite',
    );
    expect(uses(l)).toEqual([
      'sims.sims_member.end_date: filter,subquery',
      'sims.sims_member.person_id: filter,subquery',
      'sims.sims_telephone.device: filter,subquery',
      'sims.sims_telephone.person_id: filter,subquery',
      'sims.sims_telephone.telephone_number: output,subquery',
      'sims.stud_school_history.person_id: filter,subquery',
      'sims.stud_student.person_id: output,filter,subquery',
    ]);
    expect(l.outputs[1]).toEqual({
      name: 'mobile',
      sources: [{ table: 'sims.sims_telephone', column: 'telephone_number' }],
    });
  });

  it('reports * as all columns of a table without a catalogue, and expands it with one', () => {
    const without = lineage('SELECT * FROM sims.sims_school', 'sqlite');
    expect(uses(without)).toEqual(['sims.sims_school.*: output']);
    expect(without.problems.map((p) => p.code)).toEqual(['lineage.wildcard']);
    const withCatalogue = lineage('SELECT s.* FROM sims.sims_school s WHERE s.status = :s', 'sqlite', {
      'sims.sims_school': ['school_id', 'urn', 'status'],
    });
    expect(uses(withCatalogue)).toEqual([
      'sims.sims_school.school_id: output',
      'sims.sims_school.status: output,filter',
      'sims.sims_school.urn: output',
    ]);
    expect(withCatalogue.outputs.map((o) => o.name)).toEqual(['school_id', 'urn', 'status']);
    expect(withCatalogue.problems).toEqual([]);
  });

  it('attributes an unqualified column to every table it could belong to, and says so', () => {
    const sql =
      'SELECT surname FROM sims.sims_person p JOIN sims.stud_student s ON s.person_id = p.person_id';
    const guess = lineage(sql, 'sqlite');
    expect(uses(guess)).toContain('sims.sims_person.surname: output');
    expect(uses(guess)).toContain('sims.stud_student.surname: output');
    expect(guess.problems).toEqual([
      expect.objectContaining({ code: 'lineage.ambiguous_column', line: 1, column: 8 }),
    ]);
    const known = lineage(sql, 'sqlite', {
      'sims.sims_person': ['person_id', 'surname'],
      'sims.stud_student': ['person_id', 'unique_pupil_no'],
    });
    expect(uses(known)).toEqual([
      'sims.sims_person.person_id: join',
      'sims.sims_person.surname: output',
      'sims.stud_student.person_id: join',
    ]);
    expect(known.problems).toEqual([]);
  });

  it('flags columns a catalogue does not know', () => {
    const l = lineage('SELECT s.no_such_column FROM sims.stud_student s', 'sqlite', {
      'sims.stud_student': ['person_id'],
    });
    expect(l.problems.map((p) => p.code)).toEqual(['lineage.unknown_column']);
    expect(uses(l)).toEqual(['sims.stud_student.no_such_column: output']);
  });

  it('resolves ORDER BY aliases and positions to their sources; window clauses group and order', () => {
    const l = lineage(
      `SELECT r.student_id AS pupil, ROW_NUMBER() OVER (PARTITION BY r.student_id ORDER BY r.priority) AS rn,
              r.contact_id
       FROM sims.stud_relation r ORDER BY pupil, 3`,
      'postgresql',
    );
    expect(uses(l)).toEqual([
      'sims.stud_relation.contact_id: output,order',
      'sims.stud_relation.priority: order',
      'sims.stud_relation.student_id: output,group,order',
    ]);
  });

  it('takes the columns of every branch of a UNION', () => {
    const l = lineage(
      `SELECT p.external_id AS id, 'student' AS role FROM sims.sims_person p JOIN sims.stud_student s ON s.person_id = p.person_id
       UNION ALL
       SELECT e.staff_code, 'teacher' FROM sims.per_employee e WHERE e.teaching_staff = 1`,
      'sqlite',
    );
    expect(uses(l)).toEqual([
      'sims.per_employee.staff_code: output',
      'sims.per_employee.teaching_staff: filter',
      'sims.sims_person.external_id: output',
      'sims.sims_person.person_id: join',
      'sims.stud_student.person_id: join',
    ]);
    expect(l.outputs[0]).toEqual({
      name: 'id',
      sources: [
        { table: 'sims.sims_person', column: 'external_id' },
        { table: 'sims.per_employee', column: 'staff_code' },
      ],
    });
  });

  it('reads T-SQL names: brackets, three-part names, date parts that are not columns', () => {
    const l = lineage(
      `SELECT TOP 5 [s].[unique_pupil_no], DATEADD(day, 1, h.start_date) AS d
       FROM [sims].[stud_student] AS [s] WITH (NOLOCK)
       JOIN school.sims.stud_school_history h ON h.person_id = s.person_id`,
      'transactsql',
    );
    // another database keeps its name: it is not this school's sims schema
    expect(l.tables).toEqual(['school.sims.stud_school_history', 'sims.stud_student']);
    expect(uses(l)).toEqual([
      'school.sims.stud_school_history.person_id: join',
      'school.sims.stud_school_history.start_date: output',
      'sims.stud_student.person_id: join',
      'sims.stud_student.unique_pupil_no: output',
    ]);
    expect(l.problems).toEqual([]);
  });

  it('has no lineage for what it cannot parse', () => {
    const l = lineage('SELECT FROM WHERE', 'sqlite');
    expect(l.problems.map((p) => p.code)).toEqual(['lineage.parse_error']);
    expect(l.columns).toEqual([]);
  });
});
