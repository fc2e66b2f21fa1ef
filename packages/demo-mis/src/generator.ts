/**
 * Turns the in-memory school (world.ts) into rows, table by table, in batches. The
 * high-volume tables (marks, behaviour, achievements, results) are produced while they are
 * streamed, so memory stays flat however large the preset.
 *
 * Rows are arrays in the column order of `TABLES`; `rowversion` (always the last column)
 * is a global counter assigned as rows are emitted.
 */
import { type AcademicYear, NO_END_DATE, weekday, ymd } from './calendar.js';
import { ATTENDANCE_CODES, codeIndex } from './codes.js';
import { AM_SESSION_START, curriculum, PERIOD_TIMES, PM_SESSION_START, SUBJECTS } from './curriculum.js';
import {
  groupByName,
  PERMISSION_GROUPS,
  permissionRows,
  ROLE_GROUPS,
  SERVICE_ACCOUNTS,
} from './permissions.js';
import { getPreset, type Preset, type PresetName } from './presets.js';
import { TABLES, type TableDef } from './tables.js';
import { slug } from './text.js';
import {
  buildWorld,
  GROUP_TYPES,
  ncYearLabel,
  ncYearOf,
  type PupilRec,
  RELATION_TYPES,
  type World,
} from './world.js';

export const GENERATOR_VERSION = '1.0.0';

export type Value = string | number | null;
export type Row = Value[];

export interface Batch {
  readonly table: TableDef;
  readonly rows: Row[];
  /** True on the last batch of a table. */
  readonly last: boolean;
}

export interface GenerateOptions {
  readonly preset: PresetName | Preset;
  /** Any non-negative integer; default 1. */
  readonly seed?: number;
  /** Rows per batch; default 5,000. */
  readonly batchSize?: number;
}

const NO_MARK = 255;
const C = {
  AM: codeIndex('/'),
  PM: codeIndex('\\'),
  L: codeIndex('L'),
  U: codeIndex('U'),
  N: codeIndex('N'),
  X: codeIndex('X'),
  D: codeIndex('D'),
  Z: codeIndex('Z'),
  E: codeIndex('E'),
  S: codeIndex('S'),
  W: codeIndex('W'),
  V: codeIndex('V'),
  P: codeIndex('P'),
  B: codeIndex('B'),
  K: codeIndex('K'),
  CLOSED: codeIndex('#'),
  Y: codeIndex('Y'),
  Y4: codeIndex('Y4'),
  C2: codeIndex('C2'),
  C: codeIndex('C'),
} as const;
const CODE_STRINGS = ATTENDANCE_CODES.map((c) => c.code);
const PRESENT = new Set<number>([C.AM, C.PM, C.L]);
/** Codes recorded at registration (no later correction by the office). */
const AT_REGISTRATION = new Set<number>([
  C.AM,
  C.PM,
  C.L,
  C.N,
  C.X,
  C.D,
  C.Z,
  C.E,
  C.CLOSED,
  C.Y,
  C.Y4,
  C.S,
  C.W,
  C.V,
  C.C2,
]);

/** Absence episodes: [new code, code before 2024/25, weight, min length, max length] in sessions. */
const EPISODES: readonly (readonly [string, string, number, number, number])[] = [
  ['I', 'I', 58, 1, 7],
  ['M', 'M', 9, 1, 1],
  ['O', 'O', 7, 1, 2],
  ['G', 'G', 4, 8, 16],
  ['G', 'H', 1.5, 6, 10],
  ['C', 'C', 3, 1, 2],
  ['R', 'R', 2, 2, 2],
  ['T', 'T', 0.6, 4, 10],
  ['C1', 'C', 0.3, 2, 6],
  ['J1', 'J', 0.4, 1, 1],
  ['Q', 'O', 0.3, 1, 2],
  ['Y1', 'Y', 0.3, 1, 1],
  ['Y2', 'Y', 0.2, 1, 2],
  ['Y3', 'Y', 0.05, 1, 1],
  ['Y5', 'Y', 0.02, 6, 10],
  ['Y6', 'Y', 0.05, 2, 4],
  ['Y7', 'Y', 0.1, 1, 2],
];
const EPISODE_MEAN_LENGTH = (() => {
  let w = 0;
  let l = 0;
  for (const [, , weight, min, max] of EPISODES) {
    w += weight;
    l += weight * ((min + max) / 2);
  }
  return l / w;
})();

const BEHAVIOUR_TYPES: readonly (readonly [string, number, number])[] = [
  ['Disruption in lesson', 1, 30],
  ['Lack of equipment', 1, 12],
  ['Homework not completed', 1, 16],
  ['Uniform', 1, 8],
  ['Lateness to lesson', 1, 8],
  ['Mobile phone', 2, 6],
  ['Defiance', 3, 6],
  ['Rudeness to staff', 3, 4],
  ['Truancy from lesson', 3, 3],
  ['Damage to property', 3, 1],
  ['Vaping', 3, 1],
  ['Fighting', 5, 1.5],
  ['Bullying', 5, 1],
  ['Racist incident', 5, 0.3],
];
const BEHAVIOUR_COMMENTS = [
  'Spoke to parent by phone.',
  "Didn't settle after several reminders.",
  'Moved seats; apologised at the end of the lesson.',
  'Detention set for Thursday.\nParent informed by email.',
  'Refused to hand over phone; collected by "Head of Year".',
  'Repeated talking over the teacher.',
];
const ACHIEVEMENT_TYPES: readonly (readonly [string, number, number])[] = [
  ['Excellent classwork', 1, 30],
  ['Homework', 1, 22],
  ['Effort', 1, 18],
  ['Helpfulness', 1, 8],
  ['Leadership', 2, 3],
  ['Reading', 1, 6],
  ['Attendance', 2, 2],
  ['Sport', 2, 4],
  ['Music and performance', 2, 3],
  ['Community', 3, 1],
  ['Headteacher commendation', 5, 0.5],
];
const ACHIEVEMENT_COMMENTS = [
  'Fantastic answer in class.',
  'Went above and beyond on the project.',
  "Helped a classmate who'd been off.",
  'Represented the school at the district tournament.',
];
const TUTOR_COMMENTS = [
  'A positive term; keep it up.',
  'Needs to focus on homework deadlines.',
  'Settled well and contributes in class.',
  'Attendance has improved since October.',
  'A pleasure to teach. Reads widely.',
  "Should ask for help when it's needed.",
];

interface GradeSetDef {
  id: number;
  name: string;
  description: string;
  grades: readonly (readonly [string, string])[];
}

const GRADESETS: readonly GradeSetDef[] = [
  {
    id: 1,
    name: 'Primary Standards',
    description: 'KS1/KS2 teacher assessment',
    grades: [
      ['PKS', 'Pre-key stage'],
      ['WTS', 'Working towards the expected standard'],
      ['EXS', 'Working at the expected standard'],
      ['GDS', 'Working at greater depth'],
    ],
  },
  {
    id: 2,
    name: 'KS3 Steps',
    description: 'Key Stage 3 progress steps',
    grades: [
      ['EMG', 'Emerging'],
      ['DEV', 'Developing'],
      ['SEC', 'Secure'],
      ['MAS', 'Mastering'],
    ],
  },
  {
    id: 3,
    name: 'GCSE 9–1',
    description: 'GCSE grades',
    grades: [
      ['U', 'Ungraded'],
      ['1', 'Grade 1'],
      ['2', 'Grade 2'],
      ['3', 'Grade 3'],
      ['4', 'Grade 4 (standard pass)'],
      ['5', 'Grade 5 (strong pass)'],
      ['6', 'Grade 6'],
      ['7', 'Grade 7'],
      ['8', 'Grade 8'],
      ['9', 'Grade 9'],
    ],
  },
  {
    id: 4,
    name: 'A level',
    description: 'A level grades',
    grades: [
      ['U', 'Ungraded'],
      ['E', 'E'],
      ['D', 'D'],
      ['C', 'C'],
      ['B', 'B'],
      ['A', 'A'],
      ['A*', 'A*'],
    ],
  },
  {
    id: 5,
    name: 'Effort 1–4',
    description: '1 excellent … 4 cause for concern',
    grades: [
      ['1', 'Excellent'],
      ['2', 'Good'],
      ['3', 'Inconsistent'],
      ['4', 'Cause for concern'],
    ],
  },
];

type Stage = 'KS1/2' | 'KS3' | 'KS4' | 'KS5';
function stageOf(nc: number): Stage {
  return nc <= 6 ? 'KS1/2' : nc <= 9 ? 'KS3' : nc <= 11 ? 'KS4' : 'KS5';
}
const STAGE_GRADESET: Readonly<Record<Stage, number>> = { 'KS1/2': 1, KS3: 2, KS4: 3, KS5: 4 };

interface AspectDef {
  id: number;
  name: string;
  type: 'G' | 'I' | 'D' | 'C' | 'R';
  gradesetId: number | null;
  subjectId: number | null;
}

interface Sessions {
  count: number;
  date: string[];
  am: boolean[];
  start: string[];
  yearIndex: number[];
  dayIndex: number[];
  /** 0 = Monday … 4 = Friday */
  weekday: number[];
  /** date → index of its AM session */
  byDate: Map<string, number>;
  /** Register-taking times, twelve per session, picked per form. */
  registered: string[][];
  late: string[];
  corrected: string[];
}

/**
 * A deterministic demo school. Build it once, then iterate `batches()` (once).
 */
export class DemoSchoolGenerator {
  readonly preset: Preset;
  readonly seed: number;
  readonly world: World;
  private readonly sessions: Sessions;
  private readonly codes: Uint8Array;
  private readonly minutes: Uint8Array;
  private readonly batchSize: number;
  private readonly gradeIds = new Map<string, number>();
  private readonly aspects: AspectDef[] = [];
  private readonly aspectIndex = new Map<string, AspectDef>();
  private readonly markCount: number;
  private rowversion = 0;

  constructor(options: GenerateOptions) {
    this.preset = typeof options.preset === 'string' ? getPreset(options.preset) : options.preset;
    this.seed = options.seed ?? 1;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0)
      throw new Error('the seed must be a non-negative integer');
    this.batchSize = options.batchSize ?? 5000;
    this.world = buildWorld(this.preset, this.seed);
    this.sessions = this.buildSessions();
    const cells = this.world.pupils.length * this.sessions.count;
    this.codes = new Uint8Array(cells).fill(NO_MARK);
    this.minutes = new Uint8Array(cells);
    this.markCount = this.computeMarks();
    this.buildAspects();
  }

  /** Rough number of rows the generator will emit (exact for everything but the random streams). */
  get estimatedRows(): number {
    const w = this.world;
    const pupilDays = this.markCount / 2;
    const secondary = this.preset.phase === 'secondary';
    return (
      w.persons.length * 2 +
      w.pupils.length * 3 +
      w.members.length +
      w.relations.length +
      w.addressLinks.length +
      w.phones.length +
      w.emails.length +
      w.lessons.length +
      this.markCount +
      Math.round(pupilDays * ((secondary ? 6.8 : 2) / 190 + (secondary ? 75 : 40) / 190)) +
      w.pupils.length * w.years.length * (secondary ? 85 : 60) +
      w.pupils.length * 50
    );
  }

  get sessionMarkCount(): number {
    return this.markCount;
  }

  // ---------------------------------------------------------------- sessions and marks

  private buildSessions(): Sessions {
    const s: Sessions = {
      count: 0,
      date: [],
      am: [],
      start: [],
      yearIndex: [],
      dayIndex: [],
      weekday: [],
      byDate: new Map(),
      registered: [],
      late: [],
      corrected: [],
    };
    const allDays: string[] = [];
    for (const year of this.world.years) {
      year.days.forEach((d, di) => {
        if (d > this.world.today) return;
        allDays.push(d);
        for (const am of [true, false]) {
          if (am) s.byDate.set(d, s.count);
          s.date.push(d);
          s.am.push(am);
          s.start.push(`${d} ${am ? AM_SESSION_START : PM_SESSION_START}`);
          s.yearIndex.push(year.index);
          s.dayIndex.push(di);
          s.weekday.push(weekday(d));
          const base = am ? [8, 45] : [13, 10];
          const reg: string[] = [];
          for (let k = 0; k < 12; k++) {
            const mins = base[1]! + 2 + k * 2;
            reg.push(
              `${d} ${String(base[0]! + Math.floor(mins / 60)).padStart(2, '0')}:${String(mins % 60).padStart(2, '0')}:00`,
            );
          }
          s.registered.push(reg);
          s.late.push(`${d} ${am ? '09:4' : '14:0'}${allDays.length % 10}:00`);
          s.count++;
        }
      });
    }
    // The office corrects absence reasons on the next school day.
    const position = new Map(allDays.map((d, i) => [d, i]));
    for (let i = 0; i < s.count; i++) {
      const dayPos = position.get(s.date[i]!)!;
      const next = allDays[dayPos + 1];
      s.corrected.push(
        next ? `${next} 10:${String(10 + (i % 40)).padStart(2, '0')}:00` : `${s.date[i]} 15:45:00`,
      );
    }
    return s;
  }

  private computeMarks(): number {
    const rng = this.world.rng.fork('marks');
    const { sessions: s, world } = this;
    const S = s.count;
    const today = world.today;
    const todayIdx = s.byDate.get(today)!;
    const years = world.years;
    const summer = years.map((y) => ({
      studyFrom: ymd(y.startYear + 1, 5, 12),
      y13Off: ymd(y.startYear + 1, 6, 20),
      studyTo: ymd(y.startYear + 1, 6, 19),
      y10Work: [ymd(y.startYear + 1, 7, 7), ymd(y.startYear + 1, 7, 11)] as const,
      y12Work: [ymd(y.startYear + 1, 6, 30), ymd(y.startYear + 1, 7, 4)] as const,
    }));
    const episodeWeights = EPISODES.map((e, i) => [i, e[2]] as const);
    const episodeCodesNew = EPISODES.map((e) => codeIndex(e[0]));
    const episodeCodesOld = EPISODES.map((e) => codeIndex(e[1]));
    let count = 0;

    for (const p of world.pupils) {
      const base = p.index * S;
      const admissionIdx = s.byDate.get(p.admission);
      const first = admissionIdx ?? (p.admission < s.date[0]! ? 0 : S);
      const leaveIdx = p.leave === null || p.leave > today ? todayIdx + 1 : (s.byDate.get(p.leave) ?? -2) + 1;
      const last = Math.min(S - 1, leaveIdx);
      if (admissionIdx !== undefined && p.zDays > 0) {
        // Prospective pupil: on the register with Z before the admission date.
        const zFrom = Math.max(0, admissionIdx - p.zDays * 2);
        for (let i = zFrom; i < admissionIdx; i++) {
          this.codes[base + i] = C.Z;
          count++;
        }
      }
      if (first === S) continue;
      const excl = p.exclusions.map((e) => ({ ...e }));
      const tripDay = years.map((y) =>
        p.index % 10 < 7 ? y.days[20 + ((p.index * 37 + y.index * 11) % 150)]! : '',
      );
      const sporty = p.index % 9 === 0;
      let episode = -1;
      let left = 0;
      const startProb = p.absenceRate / EPISODE_MEAN_LENGTH;
      for (let i = first; i <= last && i < S; i++) {
        const date = s.date[i]!;
        const am = s.am[i]!;
        const yi = s.yearIndex[i]!;
        const year = years[yi]!;
        const nc = p.baseNc + yi;
        const wd = s.weekday[i]!;
        let code: number;
        let mins = 0;
        if (date === year.closureDay) code = C.CLOSED;
        else if (date === year.snowDay) code = year.newCodes ? C.Y4 : C.Y;
        else if (excl.some((e) => date >= e.start && date <= e.end && (e.type !== 'LNCH' || !am))) code = C.E;
        else if (p.enrolStatus === 'M' && (wd === 2 || wd === 3)) code = C.D;
        else if (p.enrolStatus === 'S' && wd >= 2) code = C.D;
        else if (p.partTime && !am && date >= p.partTime.from && date <= p.partTime.to)
          code = year.newCodes ? C.C2 : C.C;
        else if (nc === 13 && date >= summer[yi]!.y13Off) code = C.X;
        else if (
          (nc === 11 || nc === 13) &&
          date >= summer[yi]!.studyFrom &&
          date <= summer[yi]!.studyTo &&
          rng.chance(0.2)
        )
          code = C.S;
        else if (
          nc === 10 &&
          date >= summer[yi]!.y10Work[0] &&
          date <= summer[yi]!.y10Work[1] &&
          p.index % 10 !== 3
        )
          code = C.W;
        else if (
          nc === 12 &&
          date >= summer[yi]!.y12Work[0] &&
          date <= summer[yi]!.y12Work[1] &&
          p.index % 4 !== 1
        )
          code = C.W;
        else if (date === tripDay[yi]) code = C.V;
        else if (left > 0) {
          left--;
          code = year.newCodes ? episodeCodesNew[episode]! : episodeCodesOld[episode]!;
        } else if (rng.next() < startProb) {
          episode = rng.weighted(episodeWeights);
          const [, , , min, max] = EPISODES[episode]!;
          left = rng.int(min, max) - 1;
          code = year.newCodes ? episodeCodesNew[episode]! : episodeCodesOld[episode]!;
        } else if (nc >= 12 && rng.chance(0.04)) code = C.X;
        else {
          const r = rng.next();
          const late = am ? p.lateRate : p.lateRate * 0.25;
          if (r < late) {
            code = C.L;
            mins = rng.int(1, 25);
          } else if (am && r < late + p.lateRate * 0.06) {
            code = C.U;
            mins = rng.int(31, 75);
          } else if (!am && sporty && r < 0.06) code = C.P;
          else if (r > 0.9985) code = year.newCodes && r > 0.9994 ? C.K : C.B;
          else code = am ? C.AM : C.PM;
        }
        // Recent absences often have no reason yet; a few old ones never got one.
        if (!PRESENT.has(code) && !AT_REGISTRATION.has(code) && code !== C.U) {
          if ((todayIdx - i < 6 && rng.chance(0.55)) || rng.chance(0.004)) code = C.N;
        }
        this.codes[base + i] = code;
        if (mins) this.minutes[base + i] = mins;
        count++;
      }
    }
    return count;
  }

  // ---------------------------------------------------------------- assessment set-up

  private buildAspects(): void {
    let gradeId = 0;
    for (const gs of GRADESETS) {
      for (const [code] of gs.grades) this.gradeIds.set(`${gs.id}:${code}`, ++gradeId);
    }
    const stages: Stage[] = this.preset.phase === 'primary' ? ['KS1/2'] : ['KS3', 'KS4', 'KS5'];
    const representative: Readonly<Record<Stage, number>> = { 'KS1/2': 3, KS3: 7, KS4: 10, KS5: 12 };
    let id = 0;
    const add = (key: string, a: Omit<AspectDef, 'id'>) => {
      const def = { id: ++id, ...a };
      this.aspects.push(def);
      this.aspectIndex.set(key, def);
    };
    for (const stage of stages) {
      const subjects = [...new Set(curriculum(representative[stage]).flatMap((b) => b.subjects))];
      for (const code of subjects) {
        const subj = SUBJECTS.find((x) => x.code === code)!;
        const sid = this.world.subjectIds.get(code)!;
        add(`${stage}:${code}:WA`, {
          name: `${stage} ${subj.description} Working At`,
          type: 'G',
          gradesetId: STAGE_GRADESET[stage],
          subjectId: sid,
        });
        add(`${stage}:${code}:TG`, {
          name: `${stage} ${subj.description} Target`,
          type: 'G',
          gradesetId: STAGE_GRADESET[stage],
          subjectId: sid,
        });
        add(`${stage}:${code}:EF`, {
          name: `${stage} ${subj.description} Effort`,
          type: 'G',
          gradesetId: 5,
          subjectId: sid,
        });
        add(`${stage}:${code}:EX`, {
          name: `${stage} ${subj.description} Test %`,
          type: 'I',
          gradesetId: null,
          subjectId: sid,
        });
      }
    }
    add('TUTOR', { name: 'Tutor comment', type: 'C', gradesetId: null, subjectId: null });
    add('ATT', { name: 'Attendance %', type: 'D', gradesetId: null, subjectId: null });
    add('READ', { name: 'Reading age', type: 'R', gradesetId: null, subjectId: null });
  }

  // ---------------------------------------------------------------- emission

  *batches(): Generator<Batch> {
    for (const table of TABLES) {
      const rows = this.tableRows(table.name);
      let batch: Row[] = [];
      for (const row of rows) {
        row.push(++this.rowversion);
        batch.push(row);
        if (batch.length >= this.batchSize) {
          yield { table, rows: batch, last: false };
          batch = [];
        }
      }
      yield { table, rows: batch, last: true };
    }
  }

  private tableRows(name: string): Iterable<Row> {
    switch (name) {
      case 'sims_school':
        return this.world.schools.map((s) => [s.id, s.name, s.status, s.lea, s.estab, s.urn, s.phase]);
      case 'sims_person':
        return this.world.persons.map((p) => [
          p.id,
          p.surname,
          p.forename,
          p.midname,
          p.legalSurname,
          p.legalForename,
          p.chosen,
          p.gender,
          p.dob,
          p.title,
          p.salutation,
          p.externalId,
        ]);
      case 'stud_student':
        return this.world.pupils.map((p) => this.studentRow(p));
      case 'sims_person_unique_learner_number':
        return this.world.pupils.filter((p) => p.uln).map((p) => [p.person.id, p.uln]);
      case 'exam_candidate':
        return this.world.pupils
          .filter((p) => p.candidate)
          .map((p) => [p.person.id, p.candidate!.uci, p.candidate!.number]);
      case 'stud_school_history':
        return this.world.pupils.map((p, i) => [
          i + 1,
          p.person.id,
          p.admissionNumber,
          p.admission,
          p.leave,
          p.enrolStatus,
          p.leavingReason,
          p.dualSchoolId,
        ]);
      case 'sims_base_group_type':
        return GROUP_TYPES.map((g) => [g.id, g.code, g.description]);
      case 'sims_base_group':
        return this.world.groups.map((g) => [g.id, g.typeId, g.code, g.description, g.start, g.end]);
      case 'sims_member':
        return this.world.members.map((m) => [m.id, m.groupId, m.personId, m.start, m.end]);
      case 'sims_group_supervisor':
        return this.world.supervisors.map((s) => [s.id, s.groupId, s.personId, s.role, s.start, s.end]);
      case 'curr_subject_code':
        return SUBJECTS.map((s, i) => [i + 1, s.code, s.description]);
      case 'curr_class':
        return this.world.classes.map((c) => [c.group.id, c.subjectId, c.nc, c.yearLabel]);
      case 'tt_period': {
        const rows: Row[] = [];
        const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'];
        for (let d = 0; d < 5; d++) {
          for (let p = 0; p < 5; p++) {
            rows.push([
              d * 5 + p + 1,
              d + 1,
              p + 1,
              `${days[d]}:${p + 1}`,
              PERIOD_TIMES[p]![0],
              PERIOD_TIMES[p]![1],
            ]);
          }
        }
        return rows;
      }
      case 'tt_lesson':
        return this.world.lessons.map((l) => [
          l.id,
          l.classId,
          l.periodId,
          l.staffId,
          l.room,
          l.start,
          l.end,
        ]);
      case 'att_code':
        return ATTENDANCE_CODES.map((c, i) => [
          i + 1,
          c.code,
          c.description,
          c.category,
          c.possible ? 1 : 0,
          c.validFrom,
          c.validTo,
        ]);
      case 'att_mark_normalised':
        return this.markRows();
      case 'att_lesson_mark':
        return this.lessonMarkRows();
      case 'stud_relation_type':
        return RELATION_TYPES.map(([code, description], i) => [i + 1, code, description]);
      case 'stud_contact':
        return this.world.contacts.map((c) => [c.person.id, c.occupation, c.language]);
      case 'stud_relation':
        return [...this.world.relations]
          .sort((a, b) => a.id - b.id)
          .map((r) => [
            r.id,
            r.studentId,
            r.contactId,
            r.code,
            r.priority,
            r.pr,
            r.livesWith,
            r.courtOrder,
            r.correspondence,
            r.viaApplicant,
            r.start,
            r.end,
          ]);
      case 'sims_address':
        return this.world.addresses.map((a) => [
          a.id,
          a.houseName,
          a.houseNumber,
          a.street,
          a.locality,
          a.town,
          a.county,
          a.postcode,
        ]);
      case 'sims_address_link':
        return [...this.world.addressLinks]
          .sort((a, b) => a.id - b.id)
          .map((l) => [l.id, l.addressId, l.personId, 'Home', l.start, l.end]);
      case 'sims_telephone':
        return this.world.phones.map((t) => [t.id, t.personId, t.device, t.number, t.isMain]);
      case 'sims_email':
        return this.world.emails.map((e) => [e.id, e.personId, e.location, e.address, e.isMain]);
      case 'per_employee':
        return this.world.staff.map((s) => [
          s.employeeId,
          s.person.id,
          s.code,
          s.number,
          s.teaching ? 1 : 0,
          s.email,
          s.start,
          s.end,
        ]);
      case 'per_role':
        return this.world.staff
          .flatMap((s) => s.roles.map((r) => [r.id, s.person.id, r.name, r.start, r.end] as Row))
          .sort((a, b) => (a[0] as number) - (b[0] as number));
      case 'beh_incident':
        return this.eventRows('behaviour');
      case 'ach_event':
        return this.eventRows('achievement');
      case 'excl_exclusion':
        return [...this.world.exclusions]
          .sort((a, b) => a.exclusion.id - b.exclusion.id)
          .map(({ pupil, exclusion: e }) => [
            e.id,
            pupil.person.id,
            e.type,
            e.reason,
            e.start,
            e.end,
            e.sessions,
            e.appeal,
          ]);
      case 'med_condition':
        return this.world.conditions.map((m) => [
          m.id,
          m.personId,
          m.type,
          m.description,
          m.medication,
          m.start,
        ]);
      case 'asm_gradeset':
        return GRADESETS.map((g) => [g.id, g.name, g.description]);
      case 'asm_grade':
        return GRADESETS.flatMap((g) =>
          g.grades.map(([code, description], i) => [
            this.gradeIds.get(`${g.id}:${code}`)!,
            g.id,
            code,
            description,
            i + 1,
          ]),
        );
      case 'asm_aspect':
        return this.aspects.map((a) => [a.id, a.name, a.type, a.gradesetId, a.subjectId]);
      case 'asm_resultset':
        return this.resultsets().map((r) => [r.id, r.name, r.year.label, r.date]);
      case 'asm_result':
        return this.resultRows();
      case 'sys_deletion':
        return this.world.deletions.map((d) => [d.id, d.entity, d.key, d.at]);
      case 'sys_group':
        return PERMISSION_GROUPS.map((g) => [g.id, g.name, g.description]);
      case 'sys_user':
        return this.users().map((u) => [u.id, u.login, u.personId, u.service ? 1 : 0, u.enabled ? 1 : 0]);
      case 'sys_user_group': {
        let id = 0;
        return this.users().flatMap((u) => u.groups.map((g) => [++id, u.id, groupByName(g).id] as Row));
      }
      case 'sys_group_permission':
        return permissionRows().map((r, i) => [i + 1, r.groupId, r.area, r.table, r.column, r.scope]);
      case 'demo_meta':
        return [
          [
            1,
            this.preset.name,
            this.seed,
            this.world.today,
            this.world.years[this.world.years.length - 1]!.label,
            GENERATOR_VERSION,
          ],
        ];
      default:
        throw new Error(`no rows defined for table ${name}`);
    }
  }

  private studentRow(p: PupilRec): Row {
    const w = this.world;
    const lastYi = this.lastYearIndex(p);
    const nc = ncYearOf(p, lastYi);
    const spans = p.spans.get(lastYi);
    const regSpan = spans?.reg[spans.reg.length - 1];
    if (!this.groupCodes) this.groupCodes = new Map(w.groups.map((g) => [g.id, g.code]));
    const reg = regSpan ? (this.groupCodes.get(regSpan.groupId) ?? null) : null;
    return [
      p.person.id,
      p.upn,
      p.formerUpn,
      ncYearLabel(nc),
      nc,
      reg,
      w.houses[p.house]!.code,
      p.ethnicity,
      p.language,
      p.eal,
      p.fsm,
      p.ever6,
      p.pp,
      p.inCare,
      p.service,
      p.sen,
      p.photo,
      p.dietary,
    ];
  }

  private groupCodes: Map<number, string> | null = null;

  private lastYearIndex(p: PupilRec): number {
    const years = this.world.years;
    for (let i = years.length - 1; i >= 0; i--) {
      const y = years[i]!;
      if (p.admission <= y.days[y.days.length - 1]! && (p.leave === null || p.leave >= y.days[0]!)) return i;
    }
    return 0;
  }

  private *markRows(): Generator<Row> {
    const { sessions: s, world } = this;
    const S = s.count;
    const pupils = world.pupils;
    let id = 0;
    for (let i = 0; i < S; i++) {
      const start = s.start[i]!;
      const name = s.am[i] ? 'AM' : 'PM';
      const reg = s.registered[i]!;
      for (const p of pupils) {
        const cell = p.index * S + i;
        const code = this.codes[cell]!;
        if (code === NO_MARK) continue;
        const mins = this.minutes[cell]!;
        const updated =
          code === C.U ? s.late[i]! : AT_REGISTRATION.has(code) ? reg[p.form % 12]! : s.corrected[i]!;
        yield [++id, p.person.id, start, name, CODE_STRINGS[code]!, mins > 0 ? mins : null, updated];
      }
    }
  }

  /** Classes a pupil attends in a timetable slot on a date. */
  private classAt(p: PupilRec, yi: number, date: string, slot: number): number | null {
    const spans = p.spans.get(yi);
    if (!spans) return null;
    for (const sp of spans.classes) {
      if (sp.start > date || sp.end < date) continue;
      const cls = this.classById(sp.groupId);
      if (cls?.slots.includes(slot)) return sp.groupId;
    }
    return null;
  }

  private classMap: Map<number, World['classes'][number]> | null = null;
  private classById(id: number): World['classes'][number] | undefined {
    if (!this.classMap) this.classMap = new Map(this.world.classes.map((c) => [c.group.id, c]));
    return this.classMap.get(id);
  }

  private *lessonMarkRows(): Generator<Row> {
    const { sessions: s, world } = this;
    const rng = world.rng.fork('lesson-marks');
    const S = s.count;
    const finalYear = world.years[world.years.length - 1]!;
    const yi = finalYear.index;
    const todayIdx = finalYear.days.indexOf(world.today);
    let id = 0;
    for (let di = Math.max(0, todayIdx - 9); di <= todayIdx; di++) {
      const date = finalYear.days[di]!;
      const wd = weekday(date);
      const amIdx = s.byDate.get(date)!;
      for (let period = 0; period < 5; period++) {
        const slot = wd * 5 + period;
        const sessionIdx = period < 3 ? amIdx : amIdx + 1;
        const [from] = PERIOD_TIMES[period]!;
        for (const p of world.pupils) {
          const code = this.codes[p.index * S + sessionIdx]!;
          if (code === NO_MARK || code === C.Z) continue;
          const classId = this.classAt(p, yi, date, slot);
          if (classId === null) continue;
          const lesson = world.lessonBySlot.get(classId)?.get(slot);
          if (!lesson) continue;
          let mark = CODE_STRINGS[code]!;
          let mins: number | null = null;
          if (PRESENT.has(code)) {
            mark = '/';
            if (code === C.L && period === 0) {
              mark = 'L';
              mins = this.minutes[p.index * S + sessionIdx]! || 5;
            } else if (rng.chance(0.004)) {
              mark = 'N';
            } else if (rng.chance(0.01)) {
              mark = 'L';
              mins = rng.int(2, 15);
            }
          }
          const hh = Number(from.slice(0, 2));
          const mm = Number(from.slice(3, 5)) + 4 + (p.index % 6);
          const updated = `${date} ${String(hh + Math.floor(mm / 60)).padStart(2, '0')}:${String(mm % 60).padStart(2, '0')}:00`;
          yield [++id, p.person.id, lesson.id, date, mark, mins, updated];
        }
      }
    }
  }

  private tutorOf(p: PupilRec, yi: number): number | null {
    const spans = p.spans.get(yi);
    const reg = spans?.reg[spans.reg.length - 1];
    if (!reg) return null;
    if (!this.tutors) {
      this.tutors = new Map();
      for (const sup of this.world.supervisors) {
        if (sup.role === 'Tutor' || sup.role === 'Class Teacher') this.tutors.set(sup.groupId, sup.personId);
      }
    }
    return this.tutors.get(reg.groupId) ?? null;
  }
  private tutors: Map<number, number> | null = null;

  private *eventRows(kind: 'behaviour' | 'achievement'): Generator<Row> {
    const { sessions: s, world } = this;
    const rng = world.rng.fork(kind);
    const S = s.count;
    const secondary = this.preset.phase === 'secondary';
    // Per pupil-year on roll; presence-only days bring the totals near DOMAIN.md's 13,600 and 150,000.
    const perYear = kind === 'behaviour' ? (secondary ? 8 : 2) : secondary ? 82 : 40;
    const types = kind === 'behaviour' ? BEHAVIOUR_TYPES : ACHIEVEMENT_TYPES;
    const weights = types.map((t, i) => [i, t[2]] as const);
    const comments = kind === 'behaviour' ? BEHAVIOUR_COMMENTS : ACHIEVEMENT_COMMENTS;
    const limits = world.pupils.map((p) =>
      Math.exp(-((kind === 'behaviour' ? p.behaviour : p.achievement) * perYear) / 190),
    );
    const headteacher = world.staff[0]!.person.id;
    let id = 0;
    for (let i = 0; i < S; i += 2) {
      const date = s.date[i]!;
      const yi = s.yearIndex[i]!;
      const wd = weekday(date);
      const daysAgo = s.count / 2 - 1 - i / 2;
      for (const p of world.pupils) {
        const am = this.codes[p.index * S + i]!;
        const pm = this.codes[p.index * S + i + 1]!;
        if (!PRESENT.has(am) && !PRESENT.has(pm)) continue;
        // Poisson draw with a precomputed e^-mean.
        const limit = limits[p.index]!;
        let k = 0;
        let prod = rng.next();
        while (prod > limit) {
          k++;
          prod *= rng.next();
        }
        for (let e = 0; e < k; e++) {
          const period = PRESENT.has(am) ? (PRESENT.has(pm) ? rng.int(0, 4) : rng.int(0, 2)) : rng.int(3, 4);
          const slot = wd * 5 + period;
          const classId = this.classAt(p, yi, date, slot);
          const lesson = classId === null ? undefined : world.lessonBySlot.get(classId)?.get(slot);
          const by = lesson?.staffId ?? this.tutorOf(p, yi) ?? headteacher;
          const [from] = PERIOD_TIMES[period]!;
          const mm = Number(from.slice(3, 5)) + rng.int(5, 50);
          const at = `${date} ${String(Number(from.slice(0, 2)) + Math.floor(mm / 60)).padStart(2, '0')}:${String(mm % 60).padStart(2, '0')}:00`;
          const [type, points] = types[rng.weighted(weights)]!;
          const comment = rng.chance(0.15) ? rng.pick(comments) : null;
          if (kind === 'behaviour') {
            const status = daysAgo < 3 && rng.chance(0.6) ? 'Unresolved' : 'Resolved';
            yield [++id, p.person.id, at, type, points, by, classId, status, comment];
          } else {
            yield [++id, p.person.id, at, type, points, by, classId, comment];
          }
        }
      }
    }
  }

  private resultsetCache:
    | { id: number; name: string; year: AcademicYear; date: string; term: number }[]
    | null = null;
  private resultsets(): { id: number; name: string; year: AcademicYear; date: string; term: number }[] {
    if (this.resultsetCache) return this.resultsetCache;
    const out: { id: number; name: string; year: AcademicYear; date: string; term: number }[] = [];
    const terms = [
      ['Autumn', 60],
      ['Spring', 120],
      ['Summer', 175],
    ] as const;
    for (const year of this.world.years) {
      terms.forEach(([term, day], t) => {
        const date = year.days[day]!;
        if (date <= this.world.today)
          out.push({ id: out.length + 1, name: `${term} data drop ${year.label}`, year, date, term: t });
      });
    }
    this.resultsetCache = out;
    return out;
  }

  private *resultRows(): Generator<Row> {
    const { world } = this;
    const rng = world.rng.fork('assessment');
    const S = this.sessions.count;
    let id = 0;
    for (const rs of this.resultsets()) {
      const yi = rs.year.index;
      const date = rs.date;
      for (const p of world.pupils) {
        if (p.admission > date || (p.leave !== null && p.leave < date)) continue;
        const nc = ncYearOf(p, yi);
        const stage = stageOf(nc);
        const spans = p.spans.get(yi);
        if (!spans) continue;
        const subjects: string[] = [];
        for (const sp of spans.classes) {
          if (sp.start > date || sp.end < date) continue;
          const cls = this.classById(sp.groupId);
          if (cls && !subjects.includes(cls.subject)) subjects.push(cls.subject);
        }
        const gradesetId = STAGE_GRADESET[stage];
        const grades = GRADESETS[gradesetId - 1]!.grades;
        // Pupils move up a little from one data drop to the next.
        const progress = rs.term / 10;
        for (const subject of subjects) {
          const wa = this.aspectIndex.get(`${stage}:${subject}:WA`);
          if (!wa) continue;
          const level = Math.min(
            grades.length - 1,
            Math.max(0, Math.round((p.ability + progress + (rng.next() - 0.5) * 0.3) * (grades.length - 1))),
          );
          yield [
            ++id,
            p.person.id,
            wa.id,
            rs.id,
            this.gradeIds.get(`${gradesetId}:${grades[level]![0]}`)!,
            null,
            date,
          ];
          if (rs.term === 0) {
            const tg = this.aspectIndex.get(`${stage}:${subject}:TG`)!;
            const target = Math.min(grades.length - 1, Math.round(p.ability * (grades.length - 1)) + 1);
            yield [
              ++id,
              p.person.id,
              tg.id,
              rs.id,
              this.gradeIds.get(`${gradesetId}:${grades[target]![0]}`)!,
              null,
              date,
            ];
          }
          const ef = this.aspectIndex.get(`${stage}:${subject}:EF`)!;
          const effort = Math.min(
            4,
            Math.max(1, Math.round(1 + (1 - p.ability) * 2 + (rng.next() - 0.5) * 1.5)),
          );
          yield [++id, p.person.id, ef.id, rs.id, this.gradeIds.get(`5:${effort}`)!, null, date];
          if (rs.term === 2) {
            const ex = this.aspectIndex.get(`${stage}:${subject}:EX`)!;
            const pct = Math.min(100, Math.max(5, Math.round(25 + p.ability * 65 + (rng.next() - 0.5) * 20)));
            yield [++id, p.person.id, ex.id, rs.id, null, String(pct), date];
          }
        }
        if (rng.chance(0.5)) {
          yield [
            ++id,
            p.person.id,
            this.aspectIndex.get('TUTOR')!.id,
            rs.id,
            null,
            rng.pick(TUTOR_COMMENTS),
            date,
          ];
        }
        // Attendance % to date this academic year, from the marks themselves.
        let possible = 0;
        let present = 0;
        const base = p.index * S;
        for (let i = 0; i < S; i++) {
          if (this.sessions.yearIndex[i] !== yi || this.sessions.date[i]! > date) continue;
          const code = this.codes[base + i]!;
          if (code === NO_MARK) continue;
          if (!ATTENDANCE_CODES[code]!.possible) continue;
          possible++;
          const cat = ATTENDANCE_CODES[code]!.category;
          if (cat === 'Present' || cat === 'Attending elsewhere') present++;
        }
        if (possible > 0) {
          yield [
            ++id,
            p.person.id,
            this.aspectIndex.get('ATT')!.id,
            rs.id,
            null,
            ((100 * present) / possible).toFixed(2),
            date,
          ];
        }
        if (nc <= 8 && rs.term !== 1 && p.person.dob) {
          const ageMonths = Math.floor(
            (Date.parse(date) - Date.parse(p.person.dob)) / (30.4375 * 86_400_000),
          );
          const reading = Math.max(
            60,
            ageMonths + Math.round((p.ability - 0.5) * 48 + (rng.next() - 0.5) * 12),
          );
          const value = `${Math.floor(reading / 12)}/${String(reading % 12).padStart(2, '0')}`;
          yield [++id, p.person.id, this.aspectIndex.get('READ')!.id, rs.id, null, value, date];
        }
      }
    }
  }

  private userCache:
    | {
        id: number;
        login: string;
        personId: number | null;
        service: boolean;
        enabled: boolean;
        groups: string[];
      }[]
    | null = null;
  private users(): {
    id: number;
    login: string;
    personId: number | null;
    service: boolean;
    enabled: boolean;
    groups: string[];
  }[] {
    if (this.userCache) return this.userCache;
    const out: {
      id: number;
      login: string;
      personId: number | null;
      service: boolean;
      enabled: boolean;
      groups: string[];
    }[] = [];
    const logins = new Set<string>();
    const headsOfYear = new Set(
      this.world.supervisors.filter((s) => s.role === 'Head of Year').map((s) => s.personId),
    );
    for (const s of this.world.staff) {
      const groups = new Set<string>();
      for (const r of s.roles) for (const g of ROLE_GROUPS[r.name] ?? []) groups.add(g);
      if (headsOfYear.has(s.person.id)) groups.add('Pastoral Manager');
      if (groups.size === 0) continue;
      let login = `${slug(s.person.forename).charAt(0)}${slug(s.person.surname)}`;
      for (let i = 2; logins.has(login); i++)
        login = `${slug(s.person.forename).charAt(0)}${slug(s.person.surname)}${i}`;
      logins.add(login);
      s.login = login;
      const ordered = PERMISSION_GROUPS.map((g) => g.name).filter((g) => groups.has(g));
      out.push({
        id: out.length + 1,
        login,
        personId: s.person.id,
        service: false,
        enabled: s.end === NO_END_DATE,
        groups: ordered,
      });
    }
    for (const svc of SERVICE_ACCOUNTS) {
      out.push({
        id: out.length + 1,
        login: svc.login,
        personId: null,
        service: true,
        enabled: svc.enabled,
        groups: [...svc.groups],
      });
    }
    this.userCache = out;
    return out;
  }
}

export function createGenerator(options: GenerateOptions): DemoSchoolGenerator {
  return new DemoSchoolGenerator(options);
}
