/**
 * The SIMS permission groups of DOMAIN.md and what each may read, as rows for
 * sys_group and sys_group_permission. Semantics (see README):
 * - a row with column_name NULL grants every column of the table, except ID fields;
 * - a row with a column_name grants that column;
 * - ID fields (person_id, external_id …) need a row from 'Third Party Reporter';
 * - scope 'own classes' limits the rows to the user's own classes.
 */
import { type DataArea, TABLES } from './tables.js';

export interface GroupDef {
  readonly id: number;
  readonly name: string;
  readonly description: string;
  readonly areas: readonly DataArea[];
  readonly scope?: 'own classes';
  /** Grants the ID fields of every table. */
  readonly idFields?: boolean;
}

export const PERMISSION_GROUPS: readonly GroupDef[] = [
  {
    id: 1,
    name: 'Admissions Officer',
    description: 'Pupil core details, registration, medical and contacts',
    areas: ['School', 'Pupil core details', 'Medical', 'Contacts'],
  },
  {
    id: 2,
    name: 'Administration Assistant',
    description: 'Pupil core details, medical, ethnicity, language, dietary needs and FSM',
    areas: ['School', 'Pupil core details', 'Medical', 'Pupil sensitive details'],
  },
  { id: 3, name: 'Personnel Officer', description: 'Staff', areas: ['Staff'] },
  {
    id: 4,
    name: 'Class Teacher',
    description: 'Classes, teaching groups, teachers of a class and attendance',
    areas: ['Groups and classes', 'Attendance'],
  },
  {
    id: 5,
    name: 'Pastoral Manager',
    description: 'Classes and groups; behaviour, achievement and exclusions',
    areas: ['Groups and classes', 'Behaviour'],
  },
  { id: 6, name: 'Attendance Operator', description: 'Attendance marks', areas: ['Attendance'] },
  { id: 7, name: 'Attendance Manager', description: 'Attendance marks and summaries', areas: ['Attendance'] },
  {
    id: 8,
    name: 'Third Party Reporter',
    description: 'Timetable, ID fields in reports, deletions',
    areas: ['Timetable', 'Deletions'],
    idFields: true,
  },
  { id: 9, name: 'Assessment Coordinator', description: 'All assessment marksheets', areas: ['Assessment'] },
  {
    id: 10,
    name: 'Assessment Operator',
    description: 'Assessment marksheets of own classes',
    areas: ['Assessment'],
    scope: 'own classes',
  },
  { id: 11, name: 'SENCO', description: 'Special educational needs', areas: ['SEN'] },
  { id: 12, name: 'Senior Management Team', description: 'SEN, behaviour', areas: ['SEN', 'Behaviour'] },
  {
    id: 13,
    name: 'School Administrator',
    description: 'School set-up, pupil core details and contacts',
    areas: ['School', 'Pupil core details', 'Contacts'],
  },
];

export function groupByName(name: string): GroupDef {
  const g = PERMISSION_GROUPS.find((x) => x.name === name);
  if (!g) throw new Error(`unknown permission group ${name}`);
  return g;
}

export interface PermissionRow {
  groupId: number;
  area: string;
  table: string;
  column: string | null;
  scope: string;
}

/** Every (group, table[, column]) grant, in a fixed order. */
export function permissionRows(): PermissionRow[] {
  const rows: PermissionRow[] = [];
  for (const g of PERMISSION_GROUPS) {
    const scope = g.scope ?? 'all';
    const areas: DataArea[] = [...g.areas, 'Permission model'];
    for (const area of areas) {
      for (const t of TABLES) {
        const effective = (col: string): DataArea => t.columnAreas?.[col] ?? t.area;
        if (t.columnAreas) {
          const cols = t.columns.filter((col) => effective(col.name) === area).map((col) => col.name);
          const whole = t.alsoIn?.includes(area) ?? false;
          if (whole) rows.push({ groupId: g.id, area, table: t.name, column: null, scope });
          else for (const col of cols) rows.push({ groupId: g.id, area, table: t.name, column: col, scope });
        } else if (t.area === area || t.alsoIn?.includes(area)) {
          rows.push({ groupId: g.id, area, table: t.name, column: null, scope });
        }
      }
    }
    if (g.idFields) {
      for (const t of TABLES) {
        for (const col of t.columns) {
          if (col.idField)
            rows.push({ groupId: g.id, area: 'ID fields', table: t.name, column: col.name, scope });
        }
      }
    }
  }
  return rows;
}

/** Which groups staff in a role get, for the generated SIMS users. */
export const ROLE_GROUPS: Readonly<Record<string, readonly string[]>> = {
  Headteacher: ['Senior Management Team', 'Pastoral Manager', 'Class Teacher'],
  'Deputy Headteacher': ['Senior Management Team', 'Pastoral Manager', 'Class Teacher'],
  'Assistant Headteacher': ['Senior Management Team', 'Pastoral Manager', 'Class Teacher'],
  Teacher: ['Class Teacher', 'Assessment Operator'],
  SENCO: ['SENCO'],
  'Data Manager': [
    'School Administrator',
    'Assessment Coordinator',
    'Third Party Reporter',
    'Admissions Officer',
  ],
  'Office Manager': ['Administration Assistant', 'Admissions Officer'],
  Administrator: ['Administration Assistant'],
  'Attendance Officer': ['Attendance Manager', 'Attendance Operator'],
  'HR Officer': ['Personnel Officer'],
  'Exams Officer': ['Assessment Coordinator'],
  'Cover Supervisor': ['Attendance Operator'],
};

/** Service accounts: one per application, with only the groups it needs (Capita's advice). */
export const SERVICE_ACCOUNTS: readonly { login: string; groups: readonly string[]; enabled: boolean }[] = [
  {
    login: 'svc_keystage',
    groups: ['Admissions Officer', 'Administration Assistant', 'Class Teacher', 'Third Party Reporter'],
    enabled: true,
  },
  {
    login: 'svc_xporter',
    groups: [
      'Personnel Officer',
      'School Administrator',
      'Senior Management Team',
      'Third Party Reporter',
      'Assessment Coordinator',
    ],
    enabled: true,
  },
  { login: 'svc_catering', groups: ['Administration Assistant'], enabled: true },
  { login: 'svc_old_library', groups: ['Admissions Officer'], enabled: false },
];
