/**
 * The one list of tables of the demo MIS. DDL for SQLite, PostgreSQL and MariaDB, the row
 * layout of the generator, the writers and `mutate` all come from here, so the three
 * databases cannot drift apart.
 *
 * Conventions (see README): every table has a single-column integer primary key and ends
 * with `rowversion BIGINT`; flags are 0/1 integers (SQL Server `bit`, so `= 1` works in
 * every dialect); dates are `YYYY-MM-DD`, timestamps `YYYY-MM-DD HH:MM:SS` without zone;
 * an open end date is SIMS's `2079-06-06`.
 */

export type PortableType =
  | 'int'
  | 'bigint'
  | 'flag'
  | 'date'
  | 'timestamp'
  | 'uuid'
  | 'text'
  | `varchar(${number})`
  | `char(${number})`;

export interface ColumnDef {
  readonly name: string;
  readonly type: PortableType;
  readonly nullable?: boolean;
  /** An ID field: SIMS reports leave these out unless the user is a Third Party Reporter. */
  readonly idField?: boolean;
}

/** Data areas of DOMAIN.md's permission table; `sys_group_permission` is generated from them. */
export const DATA_AREAS = [
  'School',
  'Pupil core details',
  'Pupil sensitive details',
  'SEN',
  'Medical',
  'Contacts',
  'Staff',
  'Groups and classes',
  'Attendance',
  'Timetable',
  'Assessment',
  'Behaviour',
  'Permission model',
  'Deletions',
] as const;
export type DataArea = (typeof DATA_AREAS)[number];

export interface TableDef {
  readonly name: string;
  readonly description: string;
  readonly area: DataArea;
  readonly primaryKey: string;
  readonly columns: readonly ColumnDef[];
  /** Secondary indexes, created after the bulk load. */
  readonly indexes: readonly (readonly string[])[];
  /** Columns of this table that belong to a narrower data area than the table's own. */
  readonly columnAreas?: Readonly<Record<string, DataArea>>;
  /** Further data areas that need the whole table (sims_person holds contacts and staff too). */
  readonly alsoIn?: readonly DataArea[];
}

const ROWVERSION: ColumnDef = { name: 'rowversion', type: 'bigint' };

function c(name: string, type: PortableType, opts: { null?: boolean; id?: boolean } = {}): ColumnDef {
  return {
    name,
    type,
    ...(opts.null ? { nullable: true } : {}),
    ...(opts.id ? { idField: true } : {}),
  };
}
const n = { null: true } as const;
const id = { id: true } as const;

function table(
  def: Omit<TableDef, 'indexes' | 'columns'> & { columns: ColumnDef[]; indexes?: string[][] },
): TableDef {
  return { ...def, columns: [...def.columns, ROWVERSION], indexes: def.indexes ?? [] };
}

export const TABLES: readonly TableDef[] = [
  table({
    name: 'sims_school',
    description: "Schools: this one (status 'S') and others it exchanges pupils with (status 'O')",
    area: 'School',
    primaryKey: 'school_id',
    columns: [
      c('school_id', 'int'),
      c('school_name', 'varchar(120)'),
      c('status', 'char(1)'),
      c('lea_code', 'char(3)'),
      c('estab', 'char(4)'),
      c('urn', 'char(6)'),
      c('phase', 'varchar(20)'),
    ],
  }),
  table({
    name: 'sims_person',
    description: 'Every person: pupils, contacts and staff',
    area: 'Pupil core details',
    alsoIn: ['Contacts', 'Staff'],
    primaryKey: 'person_id',
    columns: [
      c('person_id', 'int', id),
      c('surname', 'varchar(60)'),
      c('forename', 'varchar(60)'),
      c('midname', 'varchar(60)', n),
      c('legal_surname', 'varchar(60)'),
      c('legal_forename', 'varchar(60)'),
      c('chosen_forename', 'varchar(60)', n),
      c('gender', 'char(1)'),
      c('dob', 'date', n),
      c('title', 'varchar(10)', n),
      c('salutation', 'varchar(100)', n),
      c('external_id', 'uuid', id),
    ],
  }),
  table({
    name: 'stud_student',
    description: 'Pupil details, current and former pupils',
    area: 'Pupil core details',
    primaryKey: 'person_id',
    columns: [
      c('person_id', 'int', id),
      c('unique_pupil_no', 'char(13)'),
      c('former_upn', 'char(13)', n),
      c('current_year', 'varchar(20)', n),
      c('current_ncyear', 'int', n),
      c('current_reg', 'varchar(10)', n),
      c('current_house', 'varchar(30)', n),
      c('ethnicity_code', 'varchar(4)', n),
      c('first_language', 'varchar(4)', n),
      c('eal', 'flag'),
      c('fsm_eligible', 'flag'),
      c('ever6_fsm', 'flag'),
      c('pupil_premium', 'flag'),
      c('in_care', 'flag'),
      c('service_child', 'flag'),
      c('sen_provision', 'char(1)'),
      c('photo_consent', 'flag'),
      c('dietary_need', 'varchar(60)', n),
    ],
    indexes: [['unique_pupil_no']],
    columnAreas: {
      ethnicity_code: 'Pupil sensitive details',
      first_language: 'Pupil sensitive details',
      eal: 'Pupil sensitive details',
      fsm_eligible: 'Pupil sensitive details',
      ever6_fsm: 'Pupil sensitive details',
      pupil_premium: 'Pupil sensitive details',
      dietary_need: 'Pupil sensitive details',
      sen_provision: 'SEN',
    },
  }),
  table({
    name: 'sims_person_unique_learner_number',
    description: 'ULNs (pupils aged 14 and over)',
    area: 'Pupil core details',
    primaryKey: 'person_id',
    columns: [c('person_id', 'int', id), c('uln', 'char(10)')],
  }),
  table({
    name: 'exam_candidate',
    description: 'Exam candidates (Years 10 to 13): UCI and candidate number',
    area: 'Assessment',
    primaryKey: 'person_id',
    columns: [c('person_id', 'int', id), c('uci', 'char(13)'), c('candidate_number', 'char(4)')],
  }),
  table({
    name: 'stud_school_history',
    description:
      'Enrolment at this school; end_date NULL while on roll; enrol_status C single, M main or S subsidiary dual registration',
    area: 'Pupil core details',
    primaryKey: 'history_id',
    columns: [
      c('history_id', 'int'),
      c('person_id', 'int', id),
      c('admission_number', 'varchar(10)'),
      c('start_date', 'date'),
      c('end_date', 'date', n),
      c('enrol_status', 'char(1)'),
      c('leaving_reason', 'varchar(60)', n),
      c('dual_school_id', 'int', n),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'sims_base_group_type',
    description: 'Group types: Class, RegGrp, YearGrp, HouseGrp',
    area: 'Groups and classes',
    primaryKey: 'group_type_id',
    columns: [c('group_type_id', 'int'), c('code', 'varchar(10)'), c('description', 'varchar(60)')],
  }),
  table({
    name: 'sims_base_group',
    description: 'Year, registration, house and teaching groups, each valid between two dates',
    area: 'Groups and classes',
    primaryKey: 'base_group_id',
    columns: [
      c('base_group_id', 'int'),
      c('group_type_id', 'int'),
      c('code', 'varchar(20)'),
      c('description', 'varchar(100)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
  }),
  table({
    name: 'sims_member',
    description: 'Group memberships over time',
    area: 'Groups and classes',
    primaryKey: 'member_id',
    columns: [
      c('member_id', 'int'),
      c('base_group_id', 'int'),
      c('person_id', 'int', id),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['person_id'], ['base_group_id']],
  }),
  table({
    name: 'sims_group_supervisor',
    description: 'Tutors, heads of year and house, teachers of classes',
    area: 'Groups and classes',
    primaryKey: 'supervisor_id',
    columns: [
      c('supervisor_id', 'int'),
      c('base_group_id', 'int'),
      c('person_id', 'int', id),
      c('supervisor_role', 'varchar(30)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['base_group_id']],
  }),
  table({
    name: 'curr_subject_code',
    description: 'Subjects',
    area: 'Groups and classes',
    primaryKey: 'subject_code_id',
    columns: [c('subject_code_id', 'int'), c('code', 'varchar(10)'), c('description', 'varchar(60)')],
  }),
  table({
    name: 'curr_class',
    description: 'Teaching groups: the sims_base_group of type Class with its subject',
    area: 'Groups and classes',
    primaryKey: 'base_group_id',
    columns: [
      c('base_group_id', 'int'),
      c('subject_code_id', 'int'),
      c('nc_year', 'int'),
      c('academic_year', 'varchar(7)'),
    ],
  }),
  table({
    name: 'tt_period',
    description: 'Timetable periods of the one-week cycle',
    area: 'Timetable',
    primaryKey: 'period_id',
    columns: [
      c('period_id', 'int'),
      c('day_of_week', 'int'),
      c('period_no', 'int'),
      c('period_name', 'varchar(20)'),
      c('start_time', 'varchar(5)'),
      c('end_time', 'varchar(5)'),
    ],
  }),
  table({
    name: 'tt_lesson',
    description: 'Timetabled lessons: a class in a period with a teacher and room, between two dates',
    area: 'Timetable',
    primaryKey: 'lesson_id',
    columns: [
      c('lesson_id', 'int'),
      c('base_group_id', 'int'),
      c('period_id', 'int'),
      c('staff_id', 'int', id),
      c('room', 'varchar(10)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['base_group_id']],
  }),
  table({
    name: 'att_code',
    description: 'Attendance codes (DfE), both the pre-2024/25 set and the set in force from 19 August 2024',
    area: 'Attendance',
    primaryKey: 'code_id',
    columns: [
      c('code_id', 'int'),
      c('code', 'varchar(2)'),
      c('description', 'varchar(120)'),
      c('category', 'varchar(30)'),
      c('possible_session', 'flag'),
      c('valid_from', 'date'),
      c('valid_to', 'date'),
    ],
  }),
  table({
    name: 'att_mark_normalised',
    description: 'Session attendance marks, AM and PM',
    area: 'Attendance',
    primaryKey: 'mark_id',
    columns: [
      c('mark_id', 'int'),
      c('person_id', 'int', id),
      c('session_start', 'timestamp'),
      c('session_name', 'char(2)'),
      c('mark', 'varchar(2)'),
      c('minutes_late', 'int', n),
      c('last_updated', 'timestamp'),
    ],
    indexes: [['person_id', 'session_start'], ['session_start']],
  }),
  table({
    name: 'att_lesson_mark',
    description: 'Lesson attendance marks (the last ten school days up to the generated "today")',
    area: 'Attendance',
    primaryKey: 'lesson_mark_id',
    columns: [
      c('lesson_mark_id', 'int'),
      c('person_id', 'int', id),
      c('lesson_id', 'int'),
      c('session_date', 'date'),
      c('mark', 'varchar(2)'),
      c('minutes_late', 'int', n),
      c('last_updated', 'timestamp'),
    ],
    indexes: [['person_id', 'session_date']],
  }),
  table({
    name: 'stud_relation_type',
    description: 'Relationship codes used by stud_relation',
    area: 'Contacts',
    primaryKey: 'relation_type_id',
    columns: [c('relation_type_id', 'int'), c('code', 'varchar(3)'), c('description', 'varchar(60)')],
  }),
  table({
    name: 'stud_contact',
    description: 'Contacts (parents, carers, others)',
    area: 'Contacts',
    primaryKey: 'person_id',
    columns: [
      c('person_id', 'int', id),
      c('occupation', 'varchar(60)', n),
      c('first_language', 'varchar(4)', n),
    ],
  }),
  table({
    name: 'stud_relation',
    description:
      'Links between pupils and contacts; via_applicant = 1 links come through an applicant record',
    area: 'Contacts',
    primaryKey: 'relation_id',
    columns: [
      c('relation_id', 'int'),
      c('student_id', 'int', id),
      c('contact_id', 'int', id),
      c('relation_code', 'varchar(3)'),
      c('priority', 'int'),
      c('parental_responsibility', 'flag'),
      c('lives_with', 'flag'),
      c('court_order', 'flag'),
      c('correspondence', 'flag'),
      c('via_applicant', 'flag'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['student_id'], ['contact_id']],
  }),
  table({
    name: 'sims_address',
    description: 'Postal addresses',
    area: 'Contacts',
    primaryKey: 'address_id',
    columns: [
      c('address_id', 'int'),
      c('house_name', 'varchar(60)', n),
      c('house_number', 'varchar(10)', n),
      c('street', 'varchar(80)'),
      c('locality', 'varchar(60)', n),
      c('town', 'varchar(60)'),
      c('county', 'varchar(60)', n),
      c('postcode', 'varchar(8)'),
    ],
  }),
  table({
    name: 'sims_address_link',
    description: 'Who lives where, and since when',
    area: 'Contacts',
    primaryKey: 'address_link_id',
    columns: [
      c('address_link_id', 'int'),
      c('address_id', 'int'),
      c('person_id', 'int', id),
      c('address_type', 'varchar(10)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'sims_telephone',
    description: 'Telephone numbers (Ofcom drama ranges only)',
    area: 'Contacts',
    primaryKey: 'telephone_id',
    columns: [
      c('telephone_id', 'int'),
      c('person_id', 'int', id),
      c('device', 'varchar(10)'),
      c('telephone_number', 'varchar(20)'),
      c('is_main', 'flag'),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'sims_email',
    description: 'Email addresses (reserved example domains only)',
    area: 'Contacts',
    primaryKey: 'email_id',
    columns: [
      c('email_id', 'int'),
      c('person_id', 'int', id),
      c('email_location', 'varchar(10)'),
      c('email_address', 'varchar(120)'),
      c('is_main', 'flag'),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'per_employee',
    description: 'Staff employment',
    area: 'Staff',
    primaryKey: 'employee_id',
    columns: [
      c('employee_id', 'int'),
      c('person_id', 'int', id),
      c('staff_code', 'varchar(4)'),
      c('employee_number', 'varchar(10)'),
      c('teaching_staff', 'flag'),
      c('work_email', 'varchar(120)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'per_role',
    description: 'Staff roles',
    area: 'Staff',
    primaryKey: 'role_id',
    columns: [
      c('role_id', 'int'),
      c('person_id', 'int', id),
      c('role_name', 'varchar(60)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
    ],
  }),
  table({
    name: 'beh_incident',
    description: 'Behaviour incidents',
    area: 'Behaviour',
    primaryKey: 'incident_id',
    columns: [
      c('incident_id', 'int'),
      c('person_id', 'int', id),
      c('incident_at', 'timestamp'),
      c('incident_type', 'varchar(40)'),
      c('points', 'int'),
      c('recorded_by', 'int', id),
      c('base_group_id', 'int', n),
      c('incident_status', 'varchar(12)'),
      c('comments', 'text', n),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'ach_event',
    description: 'Achievements',
    area: 'Behaviour',
    primaryKey: 'achievement_id',
    columns: [
      c('achievement_id', 'int'),
      c('person_id', 'int', id),
      c('event_at', 'timestamp'),
      c('achievement_type', 'varchar(40)'),
      c('points', 'int'),
      c('recorded_by', 'int', id),
      c('base_group_id', 'int', n),
      c('comments', 'text', n),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'excl_exclusion',
    description: 'Suspensions (FIXD), lunchtime (LNCH) and permanent (PERM) exclusions',
    area: 'Behaviour',
    primaryKey: 'exclusion_id',
    columns: [
      c('exclusion_id', 'int'),
      c('person_id', 'int', id),
      c('exclusion_type', 'varchar(4)'),
      c('reason_code', 'varchar(2)'),
      c('start_date', 'date'),
      c('end_date', 'date'),
      c('sessions', 'int'),
      c('appeal_status', 'varchar(20)', n),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'med_condition',
    description: 'Medical conditions',
    area: 'Medical',
    primaryKey: 'condition_id',
    columns: [
      c('condition_id', 'int'),
      c('person_id', 'int', id),
      c('condition_type', 'varchar(40)'),
      c('description', 'text', n),
      c('medication', 'varchar(80)', n),
      c('start_date', 'date', n),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'asm_gradeset',
    description: 'Grade sets',
    area: 'Assessment',
    primaryKey: 'gradeset_id',
    columns: [c('gradeset_id', 'int'), c('name', 'varchar(60)'), c('description', 'varchar(120)', n)],
  }),
  table({
    name: 'asm_grade',
    description: 'Grades of each grade set',
    area: 'Assessment',
    primaryKey: 'grade_id',
    columns: [
      c('grade_id', 'int'),
      c('gradeset_id', 'int'),
      c('code', 'varchar(10)'),
      c('description', 'varchar(60)'),
      c('sort_order', 'int'),
    ],
  }),
  table({
    name: 'asm_aspect',
    description: 'Aspects; aspect_type G grade, I integer, D decimal, C comment, R age (years/months)',
    area: 'Assessment',
    primaryKey: 'aspect_id',
    columns: [
      c('aspect_id', 'int'),
      c('name', 'varchar(80)'),
      c('aspect_type', 'char(1)'),
      c('gradeset_id', 'int', n),
      c('subject_code_id', 'int', n),
    ],
  }),
  table({
    name: 'asm_resultset',
    description: 'Result sets (data drops)',
    area: 'Assessment',
    primaryKey: 'resultset_id',
    columns: [
      c('resultset_id', 'int'),
      c('name', 'varchar(60)'),
      c('academic_year', 'varchar(7)'),
      c('result_date', 'date'),
    ],
  }),
  table({
    name: 'asm_result',
    description: 'Assessment results: grade_id for grade aspects, result_value for the others',
    area: 'Assessment',
    primaryKey: 'result_id',
    columns: [
      c('result_id', 'int'),
      c('person_id', 'int', id),
      c('aspect_id', 'int'),
      c('resultset_id', 'int'),
      c('grade_id', 'int', n),
      c('result_value', 'varchar(1000)', n),
      c('result_date', 'date'),
    ],
    indexes: [['person_id']],
  }),
  table({
    name: 'sys_deletion',
    description: 'Deleted rows: the table and the primary key value of each deleted row',
    area: 'Deletions',
    primaryKey: 'deletion_id',
    columns: [
      c('deletion_id', 'int'),
      c('entity', 'varchar(60)'),
      c('entity_key', 'varchar(40)'),
      c('deleted_at', 'timestamp'),
    ],
  }),
  table({
    name: 'sys_group',
    description: 'SIMS permission groups',
    area: 'Permission model',
    primaryKey: 'group_id',
    columns: [c('group_id', 'int'), c('group_name', 'varchar(60)'), c('description', 'varchar(200)', n)],
  }),
  table({
    name: 'sys_user',
    description: 'SIMS users, staff and service accounts',
    area: 'Permission model',
    primaryKey: 'user_id',
    columns: [
      c('user_id', 'int'),
      c('login_name', 'varchar(60)'),
      c('person_id', 'int', { null: true, id: true }),
      c('is_service_account', 'flag'),
      c('enabled', 'flag'),
    ],
  }),
  table({
    name: 'sys_user_group',
    description: 'Group membership of users',
    area: 'Permission model',
    primaryKey: 'user_group_id',
    columns: [c('user_group_id', 'int'), c('user_id', 'int'), c('group_id', 'int')],
    indexes: [['user_id']],
  }),
  table({
    name: 'sys_group_permission',
    description:
      'What each group may read: a whole table (column_name NULL) or one column; scope "own classes" limits rows',
    area: 'Permission model',
    primaryKey: 'permission_id',
    columns: [
      c('permission_id', 'int'),
      c('group_id', 'int'),
      c('data_area', 'varchar(60)'),
      c('table_name', 'varchar(60)'),
      c('column_name', 'varchar(60)', n),
      c('scope', 'varchar(20)'),
    ],
    indexes: [['group_id']],
  }),
  table({
    name: 'demo_meta',
    description: 'How this demo database was generated (preset, seed, the fixed "today")',
    area: 'School',
    primaryKey: 'meta_id',
    columns: [
      c('meta_id', 'int'),
      c('preset', 'varchar(20)'),
      c('seed', 'bigint'),
      c('today', 'date'),
      c('academic_year', 'varchar(7)'),
      c('generator_version', 'varchar(20)'),
    ],
  }),
];

const BY_NAME = new Map(TABLES.map((t) => [t.name, t]));

export function tableDef(name: string): TableDef {
  const def = BY_NAME.get(name);
  if (!def) throw new Error(`unknown demo MIS table ${name}`);
  return def;
}
