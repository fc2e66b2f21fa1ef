import { describe, expect, it } from 'vitest';
import { formatTable } from '../format-table.js';
import type { LineageColumn } from '../sql/lineage.js';
import {
  catalogueFromMapping,
  loadPermissionMapping,
  PermissionMappingError,
  parsePermissionMapping,
} from './permission-mapping.js';
import { aggregatePermissions, minimumGroups, requiredPermissions, whatBreaks } from './permission-report.js';
import { permissionReportRows, whatBreaksRows } from './permission-rows.js';

const AA = 'Administration Assistant';
const AO = 'Admissions Officer';
const SA = 'School Administrator';
const TPR = 'Third Party Reporter';

const mapping = loadPermissionMapping('sims-v1');

function lineageOf(...columns: [string, string, ...LineageColumn['usage']][]) {
  const cols = columns.map(([table, column, ...usage]) => ({ table, column, usage }));
  return { tables: [...new Set(cols.map((c) => c.table))].sort(), columns: cols };
}

describe('permission mapping (permissions/sims-v1.json)', () => {
  it('holds the SIMS groups of DOMAIN.md, table defaults and column overrides', () => {
    expect(mapping.id).toBe('sims-v1');
    expect([...mapping.groups].sort()).toEqual(
      [
        AO,
        AA,
        'Personnel Officer',
        'Class Teacher',
        'Pastoral Manager',
        'Attendance Operator',
        'Attendance Manager',
        TPR,
        'Assessment Coordinator',
        'Assessment Operator',
        'SENCO',
        'Senior Management Team',
        SA,
      ].sort(),
    );
    const student = mapping.tables.get('stud_student');
    expect(student?.columns.get('ethnicity_code')?.clauses).toEqual([[AA]]);
    expect(student?.columns.get('sen_provision')?.clauses).toEqual([['SENCO', 'Senior Management Team']]);
    // an ID field needs the table's groups and Third Party Reporter
    expect(student?.columns.get('person_id')?.clauses).toEqual([[AA, AO, SA], [TPR]]);
    expect(mapping.tables.get('sims_person')?.columns.get('external_id')?.clauses).toEqual([
      [AA, AO, SA, 'Personnel Officer'],
      [TPR],
    ]);
    expect(catalogueFromMapping(mapping)['sims.stud_relation']).toContain('via_applicant');
  });

  it('refuses a mapping with unknown groups, repeated columns or a bad shape, saying where', () => {
    const base = {
      id: 'x-v1',
      version: 1,
      description: 'test',
      schema: 'sims',
      groups: [{ name: 'G', description: 'g' }],
      idFields: { groups: ['G'], reason: 'id' },
      tables: { t: { area: 'A', groups: ['G'], columns: ['a', { name: 'b', groups: ['H'] }, 'a'] } },
    };
    expect(() => parsePermissionMapping(base)).toThrow(PermissionMappingError);
    try {
      parsePermissionMapping(base);
    } catch (err) {
      expect((err as PermissionMappingError).details).toEqual([
        'tables.t.b: unknown group "H"',
        'tables.t: column a listed twice',
      ]);
    }
    expect(() => parsePermissionMapping({ ...base, tables: 'nope' })).toThrow(/tables/);
    expect(() => loadPermissionMapping('../../etc/passwd')).toThrow(PermissionMappingError);
    expect(() => loadPermissionMapping('sims-v9')).toThrow(/no permission mapping sims-v9/);
  });
});

describe('requiredPermissions', () => {
  it('finds the smallest set of groups and which columns need each', () => {
    const report = requiredPermissions(
      lineageOf(
        ['sims.stud_student', 'unique_pupil_no', 'output'],
        ['sims.stud_student', 'ethnicity_code', 'output'],
        ['sims.stud_student', 'person_id', 'join'],
        ['sims.sims_person', 'surname', 'output'],
        ['sims.sims_person', 'person_id', 'join'],
      ),
      mapping,
    );
    expect(report.groups.map((g) => g.group)).toEqual([AA, TPR]);
    const [aa, tpr] = report.groups;
    expect(aa?.columns.map((c) => `${c.table}.${c.column}`)).toEqual([
      'sims.sims_person.person_id',
      'sims.sims_person.surname',
      'sims.stud_student.ethnicity_code',
      'sims.stud_student.person_id',
      'sims.stud_student.unique_pupil_no',
    ]);
    expect(tpr?.columns.map((c) => `${c.table}.${c.column}`)).toEqual([
      'sims.sims_person.person_id',
      'sims.stud_student.person_id',
    ]);
    expect(tpr?.columns[0]?.usage).toEqual(['join']);
    expect(report.complete).toBe(true);
  });

  it('reports unmapped tables and columns, never ignoring them', () => {
    const report = requiredPermissions(
      lineageOf(
        ['sims.stud_student', 'shoe_size', 'output'],
        ['dbo.secret_table', 'x', 'output'],
        ['otherschool.sims.stud_student', 'unique_pupil_no', 'output'],
        ['sims.stud_student', 'unique_pupil_no', 'filter'],
      ),
      mapping,
    );
    expect(report.complete).toBe(false);
    expect(report.unmappedTables).toEqual(['dbo.secret_table', 'otherschool.sims.stud_student']);
    expect(report.unmappedColumns).toEqual([{ table: 'sims.stud_student', column: 'shoe_size' }]);
    expect(report.groups.map((g) => g.group)).toEqual([AA]);
    expect(formatTable(permissionReportRows(report))).toBe(
      [
        'group                     table                          columns',
        '------------------------  -----------------------------  ---------------',
        'Administration Assistant  sims.stud_student              unique_pupil_no',
        '(unmapped)                dbo.secret_table               all',
        '(unmapped)                otherschool.sims.stud_student  all',
        '(unmapped)                sims.stud_student              shoe_size',
      ].join('\n'),
    );
  });

  it('reads * as every mapped column of the table, and a table read for its rows only', () => {
    const report = requiredPermissions(
      {
        tables: ['sims.stud_student', 'sims.sims_school'],
        columns: [{ table: 'sims.stud_student', column: '*', usage: ['output'] }],
      },
      mapping,
    );
    expect(report.requirements.some((r) => r.column === 'sen_provision')).toBe(true);
    expect(report.requirements.find((r) => r.table === 'sims.sims_school')?.column).toBe('(rows)');
    expect(report.groups.map((g) => g.group)).toEqual([AA, 'SENCO', TPR]);
  });
});

describe('minimumGroups', () => {
  it('is exact where greedy is not, and breaks ties by the preference order', () => {
    // Greedy takes X (meets 3 clauses) and then needs two more; {A, B} meets all four.
    const clauses = [['A', 'X'], ['A', 'X'], ['B', 'X'], ['A'], ['B']];
    expect(minimumGroups(clauses, ['X', 'A', 'B'])).toEqual(['A', 'B']);
    expect(minimumGroups([['P', 'Q']], ['Q', 'P'])).toEqual(['Q']);
    expect(minimumGroups([['P', 'Q']], ['P', 'Q'])).toEqual(['P']);
    expect(minimumGroups([], ['P'])).toEqual([]);
  });
});

describe('aggregatePermissions and whatBreaks', () => {
  const catering = {
    name: 'catering v3',
    report: requiredPermissions(lineageOf(['sims.stud_student', 'fsm_eligible', 'output']), mapping),
  };
  const messaging = {
    name: 'messaging v7',
    report: requiredPermissions(
      lineageOf(['sims.stud_relation', 'priority', 'filter'], ['sims.sims_person', 'surname', 'output']),
      mapping,
    ),
  };

  it('takes the smallest set over every extract and says who needs each group', () => {
    const agg = aggregatePermissions([catering, messaging]);
    expect(agg.groups.map((g) => g.group)).toEqual([AA, AO]);
    expect(agg.groups[0]?.extracts).toEqual([
      {
        extract: 'catering v3',
        columns: [{ table: 'sims.stud_student', column: 'fsm_eligible', usage: ['output'] }],
      },
    ]);
    expect(agg.groups[1]?.extracts.map((e) => e.extract)).toEqual(['messaging v7']);
    expect(agg.perExtract).toEqual([
      { extract: 'catering v3', groups: [AA] },
      { extract: 'messaging v7', groups: [AO] },
    ]);
    expect(agg.complete).toBe(true);
  });

  it('says which extracts and columns fail when a group is removed', () => {
    const report = whatBreaks([catering, messaging], AO);
    expect(report.granted).toEqual([AA, AO]);
    expect(report.unaffected).toEqual(['catering v3']);
    expect(report.broken).toEqual([
      {
        extract: 'messaging v7',
        columns: [
          { table: 'sims.stud_relation', column: 'priority', usage: ['filter'], missing: [[AO, SA]] },
        ],
      },
    ]);
    // sims_person.surname survives: Administration Assistant can read it too.
    expect(formatTable(whatBreaksRows(report))).toBe(
      [
        'extract       table               column    usage   needs one of',
        '------------  ------------------  --------  ------  -----------------------------------------',
        'messaging v7  sims.stud_relation  priority  filter  Admissions Officer / School Administrator',
      ].join('\n'),
    );
  });
});

describe('formatTable', () => {
  it('pads by characters, joins lists and prints empty cells for null', () => {
    expect(
      formatTable([
        { name: 'Zoë', n: 1, tags: ['a', 'b'] },
        { name: "O'Brien", n: null },
      ]),
    ).toBe(['name     n  tags', '-------  -  ----', 'Zoë      1  a, b', "O'Brien"].join('\n'));
    expect(formatTable([])).toBe('');
  });
});
