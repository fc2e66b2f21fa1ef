/**
 * What each year group is taught: blocks of timetable periods, each one subject taught in
 * registration groups ('form'), in ability sets ('set'), or a choice of subjects ('option').
 * Every year group fills the 25 periods of the one-week timetable, except the sixth form,
 * which has free (study) periods.
 */

export interface Subject {
  readonly code: string;
  readonly description: string;
  readonly department: string;
}

export const SUBJECTS: readonly Subject[] = [
  { code: 'Ma', description: 'Mathematics', department: 'Maths' },
  { code: 'En', description: 'English', department: 'English' },
  { code: 'Sc', description: 'Science', department: 'Science' },
  { code: 'Bi', description: 'Biology', department: 'Science' },
  { code: 'Ch', description: 'Chemistry', department: 'Science' },
  { code: 'Ph', description: 'Physics', department: 'Science' },
  { code: 'Hi', description: 'History', department: 'Humanities' },
  { code: 'Gg', description: 'Geography', department: 'Humanities' },
  { code: 'RE', description: 'Religious Education', department: 'Humanities' },
  { code: 'Ps', description: 'Psychology', department: 'Humanities' },
  { code: 'So', description: 'Sociology', department: 'Humanities' },
  { code: 'Ec', description: 'Economics', department: 'Humanities' },
  { code: 'Fr', description: 'French', department: 'Languages' },
  { code: 'Sp', description: 'Spanish', department: 'Languages' },
  { code: 'Ar', description: 'Art and Design', department: 'Arts' },
  { code: 'Mu', description: 'Music', department: 'Arts' },
  { code: 'Dr', description: 'Drama', department: 'Arts' },
  { code: 'DT', description: 'Design and Technology', department: 'Technology' },
  { code: 'Co', description: 'Computing', department: 'Technology' },
  { code: 'Cs', description: 'Computer Science', department: 'Technology' },
  { code: 'Fd', description: 'Food Preparation and Nutrition', department: 'Technology' },
  { code: 'Bs', description: 'Business', department: 'Technology' },
  { code: 'PE', description: 'Physical Education', department: 'PE' },
  { code: 'Fm', description: 'Further Mathematics', department: 'Maths' },
  { code: 'PSHE', description: 'Personal, Social, Health and Economic Education', department: 'Humanities' },
  { code: 'Phon', description: 'Phonics and Reading', department: 'Primary' },
  { code: 'Top', description: 'Topic (History and Geography)', department: 'Primary' },
];

export const DEPARTMENT_ROOMS: Readonly<Record<string, string>> = {
  Maths: 'MA',
  English: 'EN',
  Science: 'SC',
  Humanities: 'HU',
  Languages: 'LA',
  Arts: 'AR',
  Technology: 'TE',
  PE: 'PE',
  Primary: 'CL',
};

export interface Block {
  /** Block letter, used in class codes of option blocks. */
  readonly letter: string;
  readonly periods: number;
  readonly kind: 'form' | 'set' | 'option' | 'practical';
  readonly subjects: readonly string[];
}

function form(subject: string, periods: number, letter = ''): Block {
  return { letter, periods, kind: 'form', subjects: [subject] };
}
function set(subject: string, periods: number): Block {
  return { letter: '', periods, kind: 'set', subjects: [subject] };
}
/** Practical subjects are taught in smaller groups than a registration group. */
function practical(subject: string, periods: number): Block {
  return { letter: '', periods, kind: 'practical', subjects: [subject] };
}
function option(letter: string, periods: number, subjects: string[]): Block {
  return { letter, periods, kind: 'option', subjects };
}

const KS3: readonly Block[] = [
  set('Ma', 4),
  set('En', 4),
  set('Sc', 3),
  form('Hi', 2),
  form('Gg', 2),
  form('Fr', 2),
  practical('Ar', 1),
  practical('Mu', 1),
  practical('Dr', 1),
  practical('Co', 1),
  form('PE', 2),
  form('RE', 1),
  practical('DT', 1),
];

const KS4: readonly Block[] = [
  set('Ma', 4),
  set('En', 4),
  set('Sc', 5),
  form('PE', 2),
  form('RE', 1),
  option('A', 3, ['Hi', 'Gg', 'Fr', 'Sp']),
  option('B', 2, ['Ar', 'Co', 'Bs', 'Hi']),
  option('C', 2, ['Gg', 'Mu', 'Dr', 'DT', 'Fr']),
  option('D', 2, ['Sp', 'Cs', 'Fd', 'RE']),
];

const KS5: readonly Block[] = [
  option('A', 5, ['Ma', 'Bi', 'Hi', 'Ps']),
  option('B', 5, ['Ch', 'En', 'Ec', 'Ar']),
  option('C', 5, ['Ph', 'Gg', 'So', 'Fm']),
  option('D', 5, ['Ps', 'Bs', 'Cs', 'Dr']),
];

const PRIMARY: readonly Block[] = [
  form('Ma', 5),
  form('En', 5),
  form('Phon', 3),
  form('Sc', 2),
  form('Top', 3),
  form('Ar', 1),
  form('Mu', 1),
  form('PE', 2),
  form('RE', 1),
  form('Co', 1),
  form('PSHE', 1),
];

export function curriculum(ncYear: number): readonly Block[] {
  if (ncYear <= 6) return PRIMARY;
  if (ncYear <= 9) return KS3;
  if (ncYear <= 11) return KS4;
  return KS5;
}

export const PERIODS_PER_DAY = 5;
export const DAYS_PER_WEEK = 5;
/** Period times; periods 1–3 fall in the AM session, 4–5 in the PM session. */
export const PERIOD_TIMES: readonly (readonly [string, string])[] = [
  ['08:55', '09:55'],
  ['09:55', '10:55'],
  ['11:15', '12:15'],
  ['13:20', '14:20'],
  ['14:20', '15:20'],
];
export const AM_SESSION_START = '08:45:00';
export const PM_SESSION_START = '13:10:00';
