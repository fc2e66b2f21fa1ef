import { NEW_CODES_FROM, NO_END_DATE } from './calendar.js';

export type CodeCategory =
  | 'Present'
  | 'Attending elsewhere'
  | 'Authorised absence'
  | 'Unable to attend'
  | 'Unauthorised absence'
  | 'Administrative';

export interface AttendanceCode {
  readonly code: string;
  readonly description: string;
  readonly category: CodeCategory;
  /** Counts as a possible session in DfE statistics. */
  readonly possible: boolean;
  readonly validFrom: string;
  readonly validTo: string;
}

const ALWAYS = '2006-09-01';
const OLD_TO = '2024-08-18';

function code(
  code: string,
  description: string,
  category: CodeCategory,
  possible: boolean,
  validFrom = ALWAYS,
  validTo = NO_END_DATE,
): AttendanceCode {
  return { code, description, category, possible, validFrom, validTo };
}

/** DfE codes; H, J and Y are the pre-2024/25 ones, C1, C2, J1, K, Q and Y1–Y7 came in on 19 August 2024. */
export const ATTENDANCE_CODES: readonly AttendanceCode[] = [
  code('/', 'Present (AM)', 'Present', true),
  code('\\', 'Present (PM)', 'Present', true),
  code('L', 'Late (before registers closed)', 'Present', true),
  code(
    'K',
    'Attending education provision arranged by the local authority',
    'Attending elsewhere',
    true,
    NEW_CODES_FROM,
  ),
  code('V', 'Attending an educational visit or trip', 'Attending elsewhere', true),
  code('P', 'Participating in a supervised sporting activity', 'Attending elsewhere', true),
  code('W', 'Attending work experience', 'Attending elsewhere', true),
  code('B', 'Attending any other approved educational activity', 'Attending elsewhere', true),
  code(
    'C1',
    'Leave of absence: regulated performance or employment abroad',
    'Authorised absence',
    true,
    NEW_CODES_FROM,
  ),
  code('M', 'Leave of absence: medical or dental appointment', 'Authorised absence', true),
  code('J1', 'Leave of absence: interview', 'Authorised absence', true, NEW_CODES_FROM),
  code('S', 'Leave of absence: study leave', 'Authorised absence', true),
  code('X', 'Not required to be in school (non-compulsory school age)', 'Administrative', false),
  code('C2', 'Leave of absence: part-time timetable', 'Authorised absence', true, NEW_CODES_FROM),
  code('C', 'Leave of absence: exceptional circumstances', 'Authorised absence', true),
  code('T', 'Parent travelling for occupational purposes', 'Authorised absence', true),
  code('R', 'Religious observance', 'Authorised absence', true),
  code('I', 'Illness (not medical or dental appointment)', 'Authorised absence', true),
  code('E', 'Suspended or permanently excluded, no alternative provision', 'Authorised absence', true),
  code('Q', 'Unable to attend: lack of access arrangements', 'Unable to attend', true, NEW_CODES_FROM),
  code('Y1', 'Unable to attend: transport not available', 'Unable to attend', false, NEW_CODES_FROM),
  code('Y2', 'Unable to attend: widespread travel disruption', 'Unable to attend', false, NEW_CODES_FROM),
  code(
    'Y3',
    'Unable to attend: part of the school premises closed',
    'Unable to attend',
    false,
    NEW_CODES_FROM,
  ),
  code(
    'Y4',
    'Unable to attend: whole school site unexpectedly closed',
    'Unable to attend',
    false,
    NEW_CODES_FROM,
  ),
  code('Y5', 'Unable to attend: in criminal justice detention', 'Unable to attend', false, NEW_CODES_FROM),
  code('Y6', 'Unable to attend: public health guidance or law', 'Unable to attend', false, NEW_CODES_FROM),
  code('Y7', 'Unable to attend: any other unavoidable cause', 'Unable to attend', false, NEW_CODES_FROM),
  code('G', 'Holiday not granted by the school', 'Unauthorised absence', true),
  code('N', 'Reason for absence not yet established', 'Unauthorised absence', true),
  code('O', 'Absent in other or unknown circumstances', 'Unauthorised absence', true),
  code('U', 'Arrived in school after registers closed', 'Unauthorised absence', true),
  code('D', 'Dual registered: at another setting', 'Administrative', false),
  code('Z', 'Prospective pupil not on admission register', 'Administrative', false),
  code('#', 'Planned whole-school closure', 'Administrative', false),
  code('H', 'Holiday authorised by the school (before 2024/25)', 'Authorised absence', true, ALWAYS, OLD_TO),
  code('J', 'Interview (before 2024/25)', 'Authorised absence', true, ALWAYS, OLD_TO),
  code('Y', 'Enforced closure (before 2024/25)', 'Unable to attend', false, ALWAYS, OLD_TO),
];

export const CODE_INDEX: ReadonlyMap<string, number> = new Map(ATTENDANCE_CODES.map((c, i) => [c.code, i]));

export function codeIndex(code: string): number {
  const i = CODE_INDEX.get(code);
  if (i === undefined) throw new Error(`unknown attendance code ${code}`);
  return i;
}

/** Codes that mean the pupil was on site (or on an approved activity) for the session. */
export const PRESENT_CODES: ReadonlySet<string> = new Set(['/', '\\', 'L']);
