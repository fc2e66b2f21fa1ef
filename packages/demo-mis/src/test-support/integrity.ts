/**
 * Referential-integrity checks as portable SQL: each query returns the orphan rows (it
 * must return none). `t(name)` qualifies a table for the dialect; `date(x)` works in
 * SQLite, PostgreSQL (function-style cast) and MariaDB alike.
 */
export function integrityQueries(t: (name: string) => string): [string, string][] {
  const orphan = (label: string, child: string, col: string, parent: string, pcol: string, extra = '') =>
    [
      label,
      `SELECT c.${col} AS k FROM ${t(child)} c LEFT JOIN ${t(parent)} p ON p.${pcol} = c.${col} WHERE c.${col} IS NOT NULL AND p.${pcol} IS NULL${extra}`,
    ] as [string, string];
  return [
    orphan('person of a pupil', 'stud_student', 'person_id', 'sims_person', 'person_id'),
    orphan('person of a contact', 'stud_contact', 'person_id', 'sims_person', 'person_id'),
    orphan('person of an employee', 'per_employee', 'person_id', 'sims_person', 'person_id'),
    orphan('pupil of a school history', 'stud_school_history', 'person_id', 'stud_student', 'person_id'),
    orphan('dual school', 'stud_school_history', 'dual_school_id', 'sims_school', 'school_id'),
    orphan('pupil of a ULN', 'sims_person_unique_learner_number', 'person_id', 'stud_student', 'person_id'),
    orphan('pupil of an exam candidate', 'exam_candidate', 'person_id', 'stud_student', 'person_id'),
    orphan('pupil of a session mark', 'att_mark_normalised', 'person_id', 'stud_student', 'person_id'),
    orphan('code of a session mark', 'att_mark_normalised', 'mark', 'att_code', 'code'),
    orphan('pupil of a lesson mark', 'att_lesson_mark', 'person_id', 'stud_student', 'person_id'),
    orphan('lesson of a lesson mark', 'att_lesson_mark', 'lesson_id', 'tt_lesson', 'lesson_id'),
    orphan('code of a lesson mark', 'att_lesson_mark', 'mark', 'att_code', 'code'),
    orphan('group of a membership', 'sims_member', 'base_group_id', 'sims_base_group', 'base_group_id'),
    orphan('person of a membership', 'sims_member', 'person_id', 'sims_person', 'person_id'),
    orphan('type of a group', 'sims_base_group', 'group_type_id', 'sims_base_group_type', 'group_type_id'),
    orphan(
      'group of a supervisor',
      'sims_group_supervisor',
      'base_group_id',
      'sims_base_group',
      'base_group_id',
    ),
    orphan('staff of a supervisor', 'sims_group_supervisor', 'person_id', 'per_employee', 'person_id'),
    orphan('group of a class', 'curr_class', 'base_group_id', 'sims_base_group', 'base_group_id'),
    orphan('subject of a class', 'curr_class', 'subject_code_id', 'curr_subject_code', 'subject_code_id'),
    orphan('class of a lesson', 'tt_lesson', 'base_group_id', 'curr_class', 'base_group_id'),
    orphan('period of a lesson', 'tt_lesson', 'period_id', 'tt_period', 'period_id'),
    orphan('teacher of a lesson', 'tt_lesson', 'staff_id', 'per_employee', 'person_id'),
    orphan('pupil of a relation', 'stud_relation', 'student_id', 'stud_student', 'person_id'),
    orphan('contact of a relation', 'stud_relation', 'contact_id', 'stud_contact', 'person_id'),
    orphan('code of a relation', 'stud_relation', 'relation_code', 'stud_relation_type', 'code'),
    orphan('address of a link', 'sims_address_link', 'address_id', 'sims_address', 'address_id'),
    orphan('person of an address link', 'sims_address_link', 'person_id', 'sims_person', 'person_id'),
    orphan('person of a telephone', 'sims_telephone', 'person_id', 'sims_person', 'person_id'),
    orphan('person of an email', 'sims_email', 'person_id', 'sims_person', 'person_id'),
    orphan('employee of a role', 'per_role', 'person_id', 'per_employee', 'person_id'),
    orphan('pupil of an incident', 'beh_incident', 'person_id', 'stud_student', 'person_id'),
    orphan('recorder of an incident', 'beh_incident', 'recorded_by', 'per_employee', 'person_id'),
    orphan('class of an incident', 'beh_incident', 'base_group_id', 'curr_class', 'base_group_id'),
    orphan('pupil of an achievement', 'ach_event', 'person_id', 'stud_student', 'person_id'),
    orphan('recorder of an achievement', 'ach_event', 'recorded_by', 'per_employee', 'person_id'),
    orphan('class of an achievement', 'ach_event', 'base_group_id', 'curr_class', 'base_group_id'),
    orphan('pupil of an exclusion', 'excl_exclusion', 'person_id', 'stud_student', 'person_id'),
    orphan('pupil of a medical condition', 'med_condition', 'person_id', 'stud_student', 'person_id'),
    orphan('grade set of a grade', 'asm_grade', 'gradeset_id', 'asm_gradeset', 'gradeset_id'),
    orphan('grade set of an aspect', 'asm_aspect', 'gradeset_id', 'asm_gradeset', 'gradeset_id'),
    orphan('subject of an aspect', 'asm_aspect', 'subject_code_id', 'curr_subject_code', 'subject_code_id'),
    orphan('pupil of a result', 'asm_result', 'person_id', 'stud_student', 'person_id'),
    orphan('aspect of a result', 'asm_result', 'aspect_id', 'asm_aspect', 'aspect_id'),
    orphan('result set of a result', 'asm_result', 'resultset_id', 'asm_resultset', 'resultset_id'),
    orphan('grade of a result', 'asm_result', 'grade_id', 'asm_grade', 'grade_id'),
    orphan('user of a user group', 'sys_user_group', 'user_id', 'sys_user', 'user_id'),
    orphan('group of a user group', 'sys_user_group', 'group_id', 'sys_group', 'group_id'),
    orphan('group of a permission', 'sys_group_permission', 'group_id', 'sys_group', 'group_id'),
    orphan('staff of a user', 'sys_user', 'person_id', 'per_employee', 'person_id'),
    [
      'grade outside its aspect’s grade set',
      `SELECT r.result_id AS k FROM ${t('asm_result')} r JOIN ${t('asm_aspect')} a ON a.aspect_id = r.aspect_id
        JOIN ${t('asm_grade')} g ON g.grade_id = r.grade_id WHERE g.gradeset_id <> a.gradeset_id`,
    ],
    [
      'grade aspect result without a grade, or other result without a value',
      `SELECT r.result_id AS k FROM ${t('asm_result')} r JOIN ${t('asm_aspect')} a ON a.aspect_id = r.aspect_id
        WHERE (a.aspect_type = 'G' AND r.grade_id IS NULL) OR (a.aspect_type <> 'G' AND r.result_value IS NULL)`,
    ],
    [
      'session mark outside the enrolment (Z excepted)',
      `SELECT m.mark_id AS k FROM ${t('att_mark_normalised')} m JOIN ${t('stud_school_history')} h ON h.person_id = m.person_id
        WHERE m.mark <> 'Z' AND (date(m.session_start) < h.start_date OR date(m.session_start) > h.end_date)`,
    ],
    [
      'membership outside its group’s dates',
      `SELECT m.member_id AS k FROM ${t('sims_member')} m JOIN ${t('sims_base_group')} g ON g.base_group_id = m.base_group_id
        WHERE m.start_date < g.start_date OR m.end_date > g.end_date OR m.end_date < m.start_date`,
    ],
    [
      'mark code not valid on its date',
      `SELECT m.mark_id AS k FROM ${t('att_mark_normalised')} m JOIN ${t('att_code')} c ON c.code = m.mark
        WHERE date(m.session_start) < c.valid_from OR date(m.session_start) > c.valid_to`,
    ],
  ];
}
