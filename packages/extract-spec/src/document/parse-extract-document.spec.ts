import { describe, expect, it } from 'vitest';
import { type ExtractProblem, parseExtractDocument } from './parse-extract-document.js';

const VALID = `keystage: extract/v1
name: pupil-list
description: Pupils on roll.
mis: DEMO_SQLITE
parameters:
  - name: as_of
    type: date
    description: Day of the roll
    default: today
datasets:
  - name: pupils
    description: Pupils on roll
    key: [pupil_id]
    columns:
      - { name: pupil_id, type: integer, description: MIS id, category: identity }
      - { name: upn, type: string, description: UPN, category: identity }
    sql: |
      SELECT s.person_id AS pupil_id, s.unique_pupil_no AS upn
      FROM sims.stud_student s
      JOIN sims.stud_school_history h ON h.person_id = s.person_id
      WHERE h.start_date <= :as_of AND (h.end_date IS NULL OR h.end_date >= :as_of)
delivery: { format: ndjson, target: webhook }
`;

/** code, path and positions of each problem, for exact assertions. */
function brief(problems: readonly ExtractProblem[]): string[] {
  return problems.map(
    (p) =>
      `${p.code} ${p.path || '(root)'}${p.line !== undefined ? ` @${p.line}:${p.column}` : ''}${
        p.sql ? ` sql@${p.sql.line}:${p.sql.column}` : ''
      }`,
  );
}

function problemsOf(text: string): string[] {
  const r = parseExtractDocument(text);
  return r.ok ? [] : brief(r.problems);
}

describe('parseExtractDocument: valid documents', () => {
  it('returns the normalised document and its hash', () => {
    const r = parseExtractDocument(VALID);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.document.datasets[0]?.delta).toBe('changes'); // default
    expect(r.document.datasets[0]?.columns[0]?.nullable).toBe(false); // default
    expect(r.document.parameters[0]).toMatchObject({ name: 'as_of', required: true, default: 'today' });
    expect(r.document.datasets[0]?.sql.endsWith('\n')).toBe(false);
  });

  it('hashes the meaning, not the text: JSON, key order, comments and chomping do not matter', () => {
    const yaml = parseExtractDocument(VALID);
    if (!yaml.ok) throw new Error('valid document rejected');
    const json = parseExtractDocument(JSON.stringify(yaml.document, null, 2));
    const reordered = parseExtractDocument(
      `# a comment\ndelivery: { target: webhook, format: ndjson }\n${VALID.replace(
        'delivery: { format: ndjson, target: webhook }\n',
        '',
      ).replace('sql: |', 'sql: |-')}`,
    );
    expect(json.ok && json.hash).toBe(yaml.hash);
    expect(reordered.ok && reordered.hash).toBe(yaml.hash);
    const changed = parseExtractDocument(VALID.replace('s.unique_pupil_no AS upn', 's.former_upn AS upn'));
    expect(changed.ok && changed.hash).not.toBe(yaml.hash);
  });

  it('accepts the schedule object and checks only its shape', () => {
    const withSchedule = `${VALID}schedule:
  windows:
    - { days: [mon, tue, wed, thu, fri], from: "08:30", to: "14:00" }
  frequency: PT15M
  termTimeOnly: true
  asap: false
  timezone: Europe/London
`;
    expect(problemsOf(withSchedule)).toEqual([]);
    const bad = `${VALID}schedule:
  windows:
    - { days: [mon, mon, funday], from: "14:00", to: "8:30" }
  frequency: every 15 minutes
  sometimes: true
`;
    expect(problemsOf(bad)).toEqual([
      'document.schema schedule.windows.0.days.2 @25:26',
      'document.schema schedule.windows.0.to @25:54',
      'document.schema schedule.frequency @26:14',
      'document.unknown_field schedule.sometimes @27:3',
    ]);
  });

  it('accepts a window crossing midnight and refuses one whose from equals its to', () => {
    const crossing = `${VALID}schedule:
  windows:
    - { days: [sat], from: "22:00", to: "02:00" }
`;
    expect(problemsOf(crossing)).toEqual([]);
    const empty = parseExtractDocument(`${VALID}schedule:
  windows:
    - { days: [sat], from: "08:00", to: "08:00" }
`);
    expect(empty.ok ? [] : empty.problems.map((p) => [p.path, p.message])).toEqual([
      [
        'schedule.windows.0.to',
        'from and to are the same time: a window needs a length (leave windows out for the whole day)',
      ],
    ]);
  });
});

describe('parseExtractDocument: every problem at once, with its path and position', () => {
  it('reports YAML syntax errors with line and column', () => {
    const r = parseExtractDocument('keystage: extract/v1\nname: [unclosed\ndescription: x\n');
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems[0]).toMatchObject({ code: 'document.syntax', line: expect.any(Number) });
    expect(problemsOf('a: 1\na: 2\n')).toEqual(['document.syntax (root) @2:1']);
  });

  it('reports JSON syntax errors with line and column', () => {
    const r = parseExtractDocument('{\n  "keystage": "extract/v1",\n  "name": oops\n}', { format: 'json' });
    expect(r.ok ? [] : brief(r.problems)).toEqual(['document.syntax (root) @3:11']);
  });

  it('lists schema, cross-field and SQL problems of a bad document together', () => {
    const text = `keystage: extract/v1
name: Bad Name
description: Everything wrong at once
mis: ORACLE
parameters:
  - name: since
    type: date
    description: never used
  - name: years
    type: string_list
    description: used outside IN
  - name: colour
    type: rainbow
    description: not a type
datasets:
  - name: pupils
    description: d
    key: [pupil_id, missing_key]
    columns:
      - { name: pupil_id, type: integer, description: id, category: identity }
      - { name: upn, type: string, description: UPN, category: identity }
      - { name: upn, type: string, description: again, category: identity }
      - { name: dob, type: datetime, description: bad type, category: identity }
    sql: SELECT 1 AS pupil_id
    colour: blue
  - name: marks
    description: d
    delta: none
    columns:
      - { name: mark, type: string, description: m, category: attendance }
    sql: "SELECT 1"
`;
    const r = parseExtractDocument(text);
    expect(r.ok ? [] : brief(r.problems)).toEqual([
      // delivery is missing: reported at the document root
      'document.schema delivery @1:1',
      'document.schema name @2:7',
      'document.unknown_mis mis @4:6',
      'document.parameter_unused parameters.0.name @6:11',
      'document.parameter_unused parameters.1.name @9:11',
      'document.schema parameters.2.type @13:11',
      'document.key_not_in_output datasets.0.key.1 @18:21',
      'document.duplicate_column datasets.0.columns.2.name @22:17',
      'document.schema datasets.0.columns.3.type @23:28',
      'document.unknown_field datasets.0.colour @25:5',
    ]);
    const messages = r.ok ? [] : r.problems.map((p) => p.message);
    expect(messages).toContain(
      'unknown MIS kind "ORACLE": expected one of SIMS, CMIS, DEMO_SQLITE, POSTGRES, MYSQL',
    );
    expect(messages).toContain(
      'unknown parameter type "rainbow": expected one of date, date_window, academic_year, string, string_list, integer, boolean',
    );
    expect(messages).toContain('column upn is declared twice (also datasets.0.columns.1)');
    expect(messages).toContain("key column missing_key is not one of the dataset's columns");
    expect(messages).toContain('parameter since is declared but no SQL uses :since');
  });

  it('checks SQL in the dialect of the MIS kind, with positions inside the SQL and in the document', () => {
    const text = `keystage: extract/v1
name: checks
description: SQL problems
mis: DEMO_SQLITE
parameters:
  - name: codes
    type: string_list
    description: marks
datasets:
  - name: a
    description: forbidden function and undeclared parameter
    key: [x]
    columns:
      - { name: x, type: integer, description: x, category: none }
    sql: |
      SELECT m.mark_id AS x
      FROM sims.att_mark_normalised m
      WHERE m.mark IN (:codes)
        AND m.person_id IN (SELECT load_extension('x'))
        AND m.session_start > :sinse
  - name: b
    description: list parameter outside IN, columns that do not match
    delta: none
    columns:
      - { name: x, type: integer, description: x, category: none }
      - { name: y, type: integer, description: y, category: none }
    sql: "SELECT m.mark_id AS x, m.mark AS z FROM sims.att_mark_normalised m WHERE m.mark = :codes"
  - name: c
    description: wildcard and unnamed output
    delta: none
    columns:
      - { name: x, type: integer, description: x, category: none }
    sql: |-
      SELECT * FROM sims.sims_school; DELETE FROM sims.sims_school
  - name: d
    description: an unnamed expression
    delta: none
    columns:
      - { name: x, type: integer, description: x, category: none }
    sql: SELECT 1 + 1
delivery: { format: csv, target: file }
`;
    const r = parseExtractDocument(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(brief(r.problems)).toEqual([
      // sql: | block: the SQL's own line/column and the document's
      'sql.forbidden_function datasets.0.sql @19:36 sql@4:30',
      'document.parameter_undeclared datasets.0.sql @20:31 sql@5:25',
      // sql: "…" one-line string: the position is offset by the opening quote
      'document.columns_mismatch datasets.1.sql @27:10',
      'document.parameter_not_list datasets.1.sql @27:93 sql@1:83',
      'sql.multiple_statements datasets.2.sql @34:39 sql@1:33',
      'document.unnamed_output datasets.3.sql @40:10',
    ]);
    const undeclared = r.problems.find((p) => p.code === 'document.parameter_undeclared');
    expect(undeclared?.message).toBe(':sinse is used but no parameter provides it');
    const mismatch = r.problems.find((p) => p.code === 'document.columns_mismatch');
    expect(mismatch?.message).toContain('declared but not returned: y; returned but not declared: z');
  });

  it('rejects SELECT * in a document even when the SQL itself is fine', () => {
    const text = VALID.replace(
      'SELECT s.person_id AS pupil_id, s.unique_pupil_no AS upn',
      'SELECT s.*, s.unique_pupil_no AS upn',
    );
    // positioned at the `sql: |` block
    expect(problemsOf(text)).toEqual(['document.wildcard_output datasets.0.sql @17:10']);
  });

  it('validates each variant in its own dialect and names unknown MIS kinds', () => {
    const text = `${VALID}`.replace(
      'delivery:',
      `    variants:
      SIMS: |
        SELECT s.person_id AS pupil_id, s.unique_pupil_no AS upn
        FROM sims.stud_student s WITH (UPDLOCK)
        WHERE :as_of IS NOT NULL
      ORACLE: SELECT 1 FROM dual
delivery:`,
    );
    expect(problemsOf(text)).toEqual([
      'sql.locking_clause datasets.0.variants.SIMS @25:40 sql@2:32',
      'document.unknown_mis datasets.0.variants.ORACLE @27:7',
    ]);
  });

  it('requires key columns for delta and refuses duplicate dataset and parameter names', () => {
    const text = VALID.replace('    key: [pupil_id]\n', '')
      .replace(
        'datasets:\n',
        'datasets:\n  - name: pupils\n    description: again\n    delta: none\n    columns: [{ name: one, type: integer, description: x, category: none }]\n    sql: SELECT 1 AS one\n',
      )
      .replace('parameters:\n', 'parameters:\n  - { name: as_of, type: date, description: twice }\n');
    expect(problemsOf(text)).toEqual([
      'document.duplicate_parameter parameters.1.name @7:11',
      'document.key_required datasets.1 @17:5',
      'document.duplicate_dataset datasets.1.name @17:11',
    ]);
  });

  it('says what is missing', () => {
    expect(problemsOf('keystage: extract/v1\nname: x\n')).toEqual([
      'document.schema description @1:1',
      'document.schema mis @1:1',
      'document.schema datasets @1:1',
      'document.schema delivery @1:1',
    ]);
    const r = parseExtractDocument('keystage: extract/v1\nname: x\n');
    expect(r.ok ? '' : r.problems[0]?.message).toBe('description is required');
  });
});
