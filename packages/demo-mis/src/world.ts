/**
 * The in-memory model of the demo school: everything except the high-volume tables
 * (session and lesson marks, behaviour, achievements, assessment results), which the
 * generator streams from this model. Sizes stay small (a few thousand people, tens of
 * thousands of memberships) even for the `large` preset.
 *
 * Every random choice comes from a forked `Rng`, so a (preset, seed) pair always gives
 * the same school.
 */
import { type AcademicYear, academicYear, addDays, NO_END_DATE, weekday, ymd } from './calendar.js';
import { type Block, curriculum, DEPARTMENT_ROOMS, SUBJECTS } from './curriculum.js';
import {
  ADULT_FEMALE_NAMES,
  ADULT_MALE_NAMES,
  BOY_NAMES,
  CHOSEN_NAMES,
  COUNTY,
  EMAIL_DOMAINS,
  GIRL_NAMES,
  HOUSE_NAMES,
  HOUSES,
  LOCALITIES,
  OCCUPATIONS,
  POSTCODE_DISTRICTS,
  POSTCODE_LETTERS,
  PRIMARY_FORM_NAMES,
  STREETS,
  SURNAMES,
  TOWN,
} from './names.js';
import { FINAL_ACADEMIC_YEAR, type Preset, yearShares } from './presets.js';
import { Rng } from './prng.js';
import { slug } from './text.js';
import { isValidUln, makeUpn, ulnCheckDigit, upnCheckLetter } from './upn.js';

export type Flag = 0 | 1;

export interface SchoolRec {
  id: number;
  name: string;
  status: 'S' | 'O';
  lea: string;
  estab: string;
  urn: string;
  phase: string;
}

export interface PersonRec {
  id: number;
  surname: string;
  forename: string;
  midname: string | null;
  legalSurname: string;
  legalForename: string;
  chosen: string | null;
  gender: 'M' | 'F';
  dob: string | null;
  title: string | null;
  salutation: string | null;
  externalId: string;
}

export interface AddressRec {
  id: number;
  houseName: string | null;
  houseNumber: string | null;
  street: string;
  locality: string | null;
  town: string;
  county: string | null;
  postcode: string;
}

export interface AddressLinkRec {
  id: number;
  addressId: number;
  personId: number;
  start: string;
  end: string;
}

export interface PhoneRec {
  id: number;
  personId: number;
  device: 'Mobile' | 'Home' | 'Work';
  number: string;
  isMain: Flag;
}

export interface EmailRec {
  id: number;
  personId: number;
  location: 'Home' | 'Work';
  address: string;
  isMain: Flag;
}

export interface ContactRec {
  person: PersonRec;
  occupation: string | null;
  language: string | null;
}

export interface FamilyContact {
  contact: ContactRec;
  relation: string;
  pr: Flag;
  livesWith: Flag;
  courtOrder: Flag;
  correspondence: Flag;
  /** Joined the family after the older children were admitted (step-parents). */
  since: string | null;
}

export type FamilyKind = 'two-parent' | 'single' | 'split' | 'blended' | 'kinship' | 'foster';

export interface FamilyRec {
  id: number;
  kind: FamilyKind;
  surname: string;
  home: AddressRec;
  contacts: FamilyContact[];
  kids: PupilRec[];
  targetKids: number;
  /** The contact whose direct link was deleted but who still comes back via an applicant record. */
  applicantOnly: ContactRec | null;
}

export interface Exclusion {
  id: number;
  type: 'FIXD' | 'PERM' | 'LNCH';
  reason: string;
  start: string;
  end: string;
  sessions: number;
  appeal: string | null;
}

export interface Span {
  groupId: number;
  start: string;
  end: string;
}

export interface PupilRec {
  person: PersonRec;
  /** Row in the marks matrix. */
  index: number;
  upn: string;
  formerUpn: string | null;
  /** NC year in academic year 0 of the dataset (negative for later intakes). */
  baseNc: number;
  admission: string;
  leave: string | null;
  leavingReason: string | null;
  admissionNumber: string;
  enrolStatus: 'C' | 'M' | 'S';
  dualSchoolId: number | null;
  family: FamilyRec;
  form: number;
  house: number;
  ability: number;
  absenceRate: number;
  lateRate: number;
  behaviour: number;
  achievement: number;
  ethnicity: string | null;
  language: string | null;
  eal: Flag;
  fsm: Flag;
  ever6: Flag;
  pp: Flag;
  inCare: Flag;
  service: Flag;
  sen: 'N' | 'K' | 'E';
  photo: Flag;
  dietary: string | null;
  /** Sessions registered with Z before admission (prospective pupil). */
  zDays: number;
  /** Pupil on a part-time timetable (C2 for PM sessions) between these dates. */
  partTime: { from: string; to: string } | null;
  uln: string | null;
  candidate: { uci: string; number: string } | null;
  exclusions: Exclusion[];
  optionChoices: Map<string, string>;
  /** Per academic year: registration group, year group, classes (by block) with dates. */
  spans: Map<number, { year: Span[]; reg: Span[]; classes: Span[] }>;
  houseSpan: Span | null;
  /** Set when the pupil first appears with a via_applicant duplicate of each contact link. */
  applicantLinks: boolean;
}

export interface StaffRec {
  person: PersonRec;
  employeeId: number;
  code: string;
  number: string;
  teaching: boolean;
  department: string | null;
  roles: { id: number; name: string; start: string; end: string }[];
  start: string;
  end: string;
  room: string;
  email: string;
  login: string | null;
}

export interface BaseGroupRec {
  id: number;
  typeId: number;
  code: string;
  description: string;
  start: string;
  end: string;
}

export interface ClassRec {
  group: BaseGroupRec;
  subjectId: number;
  subject: string;
  nc: number;
  yearLabel: string;
  yearIndex: number;
  blockKey: string;
  /** Slots (0..24) of the block this class is taught in. */
  slots: number[];
  teacher: StaffRec | null;
}

export interface MemberRec {
  id: number;
  groupId: number;
  personId: number;
  start: string;
  end: string;
}

export interface SupervisorRec {
  id: number;
  groupId: number;
  personId: number;
  role: string;
  start: string;
  end: string;
}

export interface LessonRec {
  id: number;
  classId: number;
  periodId: number;
  staffId: number;
  room: string;
  start: string;
  end: string;
}

export interface RelationRec {
  id: number;
  studentId: number;
  contactId: number;
  code: string;
  priority: number;
  pr: Flag;
  livesWith: Flag;
  courtOrder: Flag;
  correspondence: Flag;
  viaApplicant: Flag;
  start: string;
  end: string;
}

export interface DeletionRec {
  id: number;
  entity: string;
  key: string;
  at: string;
}

export interface ConditionRec {
  id: number;
  personId: number;
  type: string;
  description: string | null;
  medication: string | null;
  start: string | null;
}

export interface YearGroupsRec {
  year: AcademicYear;
  yearGroups: Map<number, BaseGroupRec>;
  regGroups: Map<number, BaseGroupRec[]>;
  classes: ClassRec[];
  /** nc → block key → classes of that block. */
  blocks: Map<number, Map<string, ClassRec[]>>;
  /** nc → slot (0..24) → block key (or undefined for a free period). */
  slotBlocks: Map<number, (string | undefined)[]>;
}

export const RELATION_TYPES: readonly (readonly [string, string])[] = [
  ['MOT', 'Mother'],
  ['FAT', 'Father'],
  ['STM', 'Step-mother'],
  ['STF', 'Step-father'],
  ['GRM', 'Grandmother'],
  ['GRF', 'Grandfather'],
  ['AUN', 'Aunt'],
  ['UNC', 'Uncle'],
  ['CAR', 'Carer'],
  ['FOF', 'Foster carer'],
  ['SWR', 'Social worker'],
  ['OTH', 'Other contact'],
];

export const GROUP_TYPES = [
  { id: 1, code: 'Class', description: 'Teaching group' },
  { id: 2, code: 'RegGrp', description: 'Registration group' },
  { id: 3, code: 'YearGrp', description: 'Year group' },
  { id: 4, code: 'HouseGrp', description: 'House' },
] as const;

export interface World {
  preset: Preset;
  seed: number;
  rng: Rng;
  years: AcademicYear[];
  today: string;
  /** The generated clock: "today" at 16:30. */
  now: string;
  school: SchoolRec;
  schools: SchoolRec[];
  persons: PersonRec[];
  pupils: PupilRec[];
  contacts: ContactRec[];
  families: FamilyRec[];
  staff: StaffRec[];
  addresses: AddressRec[];
  addressLinks: AddressLinkRec[];
  phones: PhoneRec[];
  emails: EmailRec[];
  relations: RelationRec[];
  deletions: DeletionRec[];
  groups: BaseGroupRec[];
  houses: BaseGroupRec[];
  yearGroups: YearGroupsRec[];
  classes: ClassRec[];
  members: MemberRec[];
  supervisors: SupervisorRec[];
  lessons: LessonRec[];
  /** classId → period slot (0..24) → lesson */
  lessonBySlot: Map<number, Map<number, LessonRec>>;
  conditions: ConditionRec[];
  exclusions: { pupil: PupilRec; exclusion: Exclusion }[];
  subjectIds: Map<string, number>;
  ids: IdCounters;
}

export class IdCounters {
  private readonly counters = new Map<string, number>();
  constructor(private readonly starts: Readonly<Record<string, number>> = {}) {}
  next(kind: string): number {
    const v = (this.counters.get(kind) ?? this.starts[kind] ?? 0) + 1;
    this.counters.set(kind, v);
    return v;
  }
  peek(kind: string): number {
    return this.counters.get(kind) ?? this.starts[kind] ?? 0;
  }
}

/** Ofcom drama numbers: no real phone can be reached. Mobiles therefore repeat across people. */
const LANDLINE_RANGES = ['0113 496 0', '0114 496 0', '0115 496 0', '0116 496 0', '0117 496 0', '0118 496 0'];

export function mobileNumber(rng: Rng): string {
  return `07700 900${String(rng.int(0, 999)).padStart(3, '0')}`;
}

export function landlineNumber(rng: Rng): string {
  return `${rng.pick(LANDLINE_RANGES)}${String(rng.int(0, 999)).padStart(3, '0')}`;
}

const ETHNICITIES: readonly (readonly [string, number, readonly string[]])[] = [
  ['WBRI', 62, ['ENG']],
  ['WIRI', 1, ['ENG']],
  ['WOTH', 7, ['POL', 'RUM', 'POR', 'LIT', 'ENG']],
  ['WROM', 0.5, ['RMN', 'ENG']],
  ['MWBC', 2, ['ENG']],
  ['MWBA', 1, ['ENG']],
  ['MWAS', 1.5, ['ENG']],
  ['MOTH', 2, ['ENG']],
  ['AIND', 3, ['ENG', 'GUJ', 'PNJ', 'TAM']],
  ['APKN', 5, ['URD', 'PNJ', 'ENG']],
  ['ABAN', 2, ['BNG', 'ENG']],
  ['AOTH', 1.5, ['ENG', 'TAM']],
  ['BAFR', 4, ['ENG', 'YOR', 'SOM', 'IGB']],
  ['BCRB', 1, ['ENG']],
  ['BOTH', 0.5, ['ENG']],
  ['CHNE', 1, ['CHI', 'ENG']],
  ['OOTH', 2, ['ARA', 'ENG', 'TUR', 'VIE']],
  ['REFU', 1, ['ENG']],
  ['NOBT', 2, ['ENG']],
];

const DIETARY: readonly (readonly [string, number])[] = [
  ['Vegetarian', 4],
  ['Halal', 4],
  ['No pork', 1],
  ['Vegan', 1],
  ['Gluten free', 0.6],
  ['Nut free', 0.6],
  ['Dairy free', 0.5],
];

const MEDICAL: readonly (readonly [string, number, string | null, string | null])[] = [
  ['Asthma', 8, 'Uses an inhaler before PE', 'Salbutamol inhaler'],
  ['Nut allergy', 2, 'Anaphylaxis risk: peanuts and tree nuts', 'Adrenaline auto-injector'],
  ['Eczema', 2, null, 'Emollient cream'],
  ['Hay fever', 2, null, 'Antihistamine'],
  ['ADHD', 2, 'Diagnosed; see support plan', 'Methylphenidate (taken at home)'],
  ['Epilepsy', 0.5, 'Seizure plan in the medical room', 'Buccal midazolam'],
  ['Type 1 diabetes', 0.4, 'Checks blood glucose before lunch', 'Insulin'],
  ['Coeliac disease', 0.4, 'No gluten', null],
  ['Migraine', 1, null, null],
];

const LEAVING_REASONS = [
  'Moved out of area',
  'Transferred to another school',
  'Elective home education',
  'Moved abroad',
  'Transferred to independent school',
];

const EXCLUSION_REASONS: readonly (readonly [string, number])[] = [
  ['PD', 35],
  ['VA', 15],
  ['PP', 14],
  ['PA', 5],
  ['VP', 8],
  ['DM', 4],
  ['DA', 4],
  ['BU', 4],
  ['RA', 2],
  ['TH', 3],
  ['MT', 2],
  ['OT', 4],
];

export function buildWorld(preset: Preset, seed: number): World {
  return new WorldBuilder(preset, seed).build();
}

class WorldBuilder {
  private readonly rng: Rng;
  private readonly ids = new IdCounters({ person: 1000 });
  private readonly years: AcademicYear[] = [];
  private readonly today: string;
  private readonly persons: PersonRec[] = [];
  private readonly pupils: PupilRec[] = [];
  private readonly contacts: ContactRec[] = [];
  private readonly families: FamilyRec[] = [];
  private readonly staff: StaffRec[] = [];
  private readonly addresses: AddressRec[] = [];
  private readonly addressLinks: AddressLinkRec[] = [];
  private readonly phones: PhoneRec[] = [];
  private readonly emails: EmailRec[] = [];
  private readonly relations: RelationRec[] = [];
  private readonly deletions: DeletionRec[] = [];
  private readonly groups: BaseGroupRec[] = [];
  private readonly houses: BaseGroupRec[] = [];
  private readonly yearGroupRecs: YearGroupsRec[] = [];
  private readonly classes: ClassRec[] = [];
  private readonly members: MemberRec[] = [];
  private readonly supervisors: SupervisorRec[] = [];
  private readonly lessons: LessonRec[] = [];
  private readonly lessonBySlot = new Map<number, Map<number, LessonRec>>();
  private readonly conditions: ConditionRec[] = [];
  private readonly exclusions: { pupil: PupilRec; exclusion: Exclusion }[] = [];
  private readonly subjectIds = new Map<string, number>();
  private readonly usedUpns = new Set<string>();
  private readonly usedUlns = new Set<string>();
  private readonly upnSerials = new Map<string, number>();
  private school!: SchoolRec;
  private schools: SchoolRec[] = [];
  private feeders: SchoolRec[] = [];
  private pru!: SchoolRec;
  private forcedFamily = 0;
  private forcedPupil = 0;

  constructor(
    private readonly preset: Preset,
    private readonly seed: number,
  ) {
    this.rng = new Rng(`keystage-demo-mis:${preset.name}:${seed}`);
    const first = FINAL_ACADEMIC_YEAR - preset.years + 1;
    for (let i = 0; i < preset.years; i++) this.years.push(academicYear(i, first + i, i === 0));
    const last = this.years[this.years.length - 1]!;
    this.today = last.days[preset.todayIndex]!;
  }

  build(): World {
    this.buildSchools();
    SUBJECTS.forEach((s, i) => {
      this.subjectIds.set(s.code, i + 1);
    });
    this.buildPupils();
    this.ensureEdgeCases();
    this.buildExclusions();
    this.buildStaff();
    this.buildHouses();
    for (const year of this.years) this.buildYearGroups(year);
    this.buildHouseMemberships();
    this.buildRelations();
    this.buildConditions();
    this.finishPupils();
    return {
      preset: this.preset,
      seed: this.seed,
      rng: this.rng,
      years: this.years,
      today: this.today,
      now: `${this.today} 16:30:00`,
      school: this.school,
      schools: this.schools,
      persons: this.persons,
      pupils: this.pupils,
      contacts: this.contacts,
      families: this.families,
      staff: this.staff,
      addresses: this.addresses,
      addressLinks: this.addressLinks,
      phones: this.phones,
      emails: this.emails,
      relations: this.relations,
      deletions: this.deletions,
      groups: this.groups,
      houses: this.houses,
      yearGroups: this.yearGroupRecs,
      classes: this.classes,
      members: this.members,
      supervisors: this.supervisors,
      lessons: this.lessons,
      lessonBySlot: this.lessonBySlot,
      conditions: this.conditions,
      exclusions: this.exclusions,
      subjectIds: this.subjectIds,
      ids: this.ids,
    };
  }

  // ---------------------------------------------------------------- schools

  private buildSchools(): void {
    const primary = this.preset.phase === 'primary';
    this.school = {
      id: 1,
      name: primary ? "St Anne's C of E Primary School" : 'Ashworth Park Academy',
      status: 'S',
      lea: '873',
      estab: primary ? '3305' : '4012',
      urn: primary ? '110873' : '137412',
      phase: primary ? 'Primary' : 'Secondary',
    };
    const others: [string, string, string, string, string][] = [
      ['Millbrook Primary School', '873', '2041', '110214', 'Primary'],
      ['Hollins End Community Primary School', '873', '2107', '110266', 'Primary'],
      ['Cresswell Church of England Primary School', '873', '3112', '110790', 'Primary'],
      ['Lower Fenby Infant and Junior School', '874', '2230', '117522', 'Primary'],
      ["St Joseph's Catholic Primary School", '873', '3358', '110905', 'Primary'],
      ['Ashworth Green Primary Academy', '881', '2015', '141877', 'Primary'],
      ['Fenshire Pupil Referral Unit', '873', '1100', '131245', 'PRU'],
      ['Kingsley Vale School', '874', '4103', '137980', 'Secondary'],
    ];
    this.schools = [this.school];
    others.forEach(([name, lea, estab, urn, phase], i) => {
      this.schools.push({ id: i + 2, name, status: 'O', lea, estab, urn, phase });
    });
    this.feeders = this.schools.filter((s) => s.phase === 'Primary' && s.status === 'O');
    this.pru = this.schools.find((s) => s.phase === 'PRU')!;
  }

  // ---------------------------------------------------------------- people

  private newPerson(p: Omit<PersonRec, 'id' | 'externalId'>, rng: Rng): PersonRec {
    const person: PersonRec = { id: this.ids.next('person'), externalId: rng.uuid(), ...p };
    this.persons.push(person);
    return person;
  }

  private newAddress(rng: Rng): AddressRec {
    const named = rng.chance(0.06);
    const address: AddressRec = {
      id: this.ids.next('address'),
      houseName: named ? rng.pick(HOUSE_NAMES) : null,
      houseNumber: named && rng.chance(0.7) ? null : String(rng.int(1, 180)) + (rng.chance(0.04) ? 'A' : ''),
      street: rng.pick(STREETS),
      locality: rng.chance(0.45) ? rng.pick(LOCALITIES) : null,
      town: TOWN,
      county: rng.chance(0.8) ? COUNTY : null,
      postcode: `${rng.pick(POSTCODE_DISTRICTS)} ${rng.int(1, 9)}${rng.pick([...POSTCODE_LETTERS])}${rng.pick([...POSTCODE_LETTERS])}`,
    };
    if (address.houseNumber === null && address.houseName === null)
      address.houseNumber = String(rng.int(1, 99));
    this.addresses.push(address);
    return address;
  }

  private linkAddress(address: AddressRec, personId: number, start: string, end = NO_END_DATE): void {
    this.addressLinks.push({ id: this.ids.next('addressLink'), addressId: address.id, personId, start, end });
  }

  private forename(gender: 'M' | 'F', rng: Rng): string {
    return rng.pick(gender === 'F' ? GIRL_NAMES : BOY_NAMES);
  }

  private surname(rng: Rng): string {
    if (rng.chance(0.03)) {
      const a = rng.pick(SURNAMES);
      let b = rng.pick(SURNAMES);
      while (b === a || b.includes(' ')) b = rng.pick(SURNAMES);
      return `${a}-${b}`;
    }
    return rng.pick(SURNAMES);
  }

  private adult(
    gender: 'M' | 'F',
    surname: string,
    rng: Rng,
    opts: { dobFrom?: number; dobTo?: number } = {},
  ): PersonRec {
    const forename = rng.pick(gender === 'F' ? ADULT_FEMALE_NAMES : ADULT_MALE_NAMES);
    const title = rng.chance(0.03)
      ? null
      : rng.chance(0.03)
        ? 'Dr'
        : rng.chance(0.01)
          ? 'Mx'
          : gender === 'M'
            ? 'Mr'
            : rng.weighted([
                ['Mrs', 5],
                ['Ms', 3],
                ['Miss', 2],
              ] as const);
    const dob =
      opts.dobFrom !== undefined && rng.chance(0.35)
        ? ymd(rng.int(opts.dobFrom, opts.dobTo ?? opts.dobFrom + 10), rng.int(1, 12), rng.int(1, 28))
        : null;
    return this.newPerson(
      {
        surname,
        forename,
        midname: rng.chance(0.3) ? rng.pick(gender === 'F' ? ADULT_FEMALE_NAMES : ADULT_MALE_NAMES) : null,
        legalSurname: surname,
        legalForename: forename,
        chosen: null,
        gender,
        dob,
        title,
        salutation: title ? `${title} ${surname}` : null,
      },
      rng,
    );
  }

  private newContact(
    gender: 'M' | 'F',
    surname: string,
    home: AddressRec,
    since: string,
    rng: Rng,
  ): ContactRec {
    const person = this.adult(gender, surname, rng, { dobFrom: 1968, dobTo: 1995 });
    const contact: ContactRec = {
      person,
      occupation: rng.chance(0.5) ? rng.pick(OCCUPATIONS) : null,
      language: rng.chance(0.15) ? rng.pick(['POL', 'URD', 'PNJ', 'BNG', 'ARA', 'RUM', 'POR', 'SOM']) : null,
    };
    this.contacts.push(contact);
    this.linkAddress(home, person.id, since);
    // Most have a main mobile; some also a home landline or work number; a few have none.
    const hasMobile = rng.chance(0.92);
    if (hasMobile) this.addPhone(person.id, 'Mobile', mobileNumber(rng), 1);
    if (rng.chance(0.3)) this.addPhone(person.id, 'Home', landlineNumber(rng), hasMobile ? 0 : 1);
    if (rng.chance(0.15)) this.addPhone(person.id, 'Work', landlineNumber(rng), 0);
    if (rng.chance(0.86)) {
      const local = `${slug(person.forename)}${rng.chance(0.5) ? '.' : ''}${slug(surname)}${rng.chance(0.4) ? rng.int(1, 99) : ''}`;
      this.addEmail(person.id, 'Home', `${local}@${rng.pick(EMAIL_DOMAINS)}`, 1);
      if (rng.chance(0.08))
        this.addEmail(person.id, 'Work', `${slug(person.forename)}.${slug(surname)}@work.example`, 0);
    }
    return contact;
  }

  private addPhone(personId: number, device: PhoneRec['device'], number: string, isMain: Flag): void {
    this.phones.push({ id: this.ids.next('phone'), personId, device, number, isMain });
  }

  private addEmail(personId: number, location: EmailRec['location'], address: string, isMain: Flag): void {
    this.emails.push({ id: this.ids.next('email'), personId, location, address, isMain });
  }

  // ---------------------------------------------------------------- families

  private forcedFamilyKind(): {
    kind: FamilyKind;
    surname: string;
    targetKids: number;
    courtOrder?: boolean;
  } | null {
    // The first families carry the edge cases DOMAIN.md asks for, so even `tiny` has them.
    const forced = [
      { kind: 'split' as const, surname: "O'Brien", targetKids: 1, courtOrder: true },
      { kind: 'two-parent' as const, surname: 'Nguyễn', targetKids: 2 },
      { kind: 'foster' as const, surname: 'Clarke-Patel', targetKids: 1 },
      { kind: 'two-parent' as const, surname: 'Wójcik', targetKids: 2 },
      { kind: 'split' as const, surname: 'Okafor', targetKids: 1, courtOrder: false },
    ];
    return forced[this.forcedFamily++] ?? null;
  }

  private newFamily(since: string, rng: Rng): FamilyRec {
    const forced = this.forcedFamilyKind();
    const kind: FamilyKind =
      forced?.kind ??
      rng.weighted<FamilyKind>([
        ['two-parent', 55],
        ['single', 19],
        ['split', 15],
        ['blended', 7],
        ['kinship', 2.5],
        ['foster', 1.5],
      ]);
    const surname = forced?.surname ?? this.surname(rng);
    const home = this.newAddress(rng);
    const family: FamilyRec = {
      id: this.families.length + 1,
      kind,
      surname,
      home,
      contacts: [],
      kids: [],
      targetKids:
        forced?.targetKids ??
        rng.weighted([
          [1, 30],
          [2, 42],
          [3, 20],
          [4, 8],
        ] as const),
      applicantOnly: null,
    };
    const add = (
      c: ContactRec,
      relation: string,
      pr: Flag,
      livesWith: Flag,
      extra: Partial<FamilyContact> = {},
    ) => {
      family.contacts.push({
        contact: c,
        relation,
        pr,
        livesWith,
        courtOrder: 0,
        correspondence: pr,
        since: null,
        ...extra,
      });
    };
    const otherSurname = () => (rng.chance(0.5) ? surname : this.surname(rng));
    switch (kind) {
      case 'two-parent': {
        const motherFirst = rng.chance(0.8);
        const mother = this.newContact('F', rng.chance(0.9) ? surname : this.surname(rng), home, since, rng);
        const father = this.newContact('M', surname, home, since, rng);
        if (motherFirst) {
          add(mother, 'MOT', 1, 1);
          add(father, 'FAT', 1, 1);
        } else {
          add(father, 'FAT', 1, 1);
          add(mother, 'MOT', 1, 1);
        }
        break;
      }
      case 'single': {
        const mum = rng.chance(0.85);
        add(this.newContact(mum ? 'F' : 'M', surname, home, since, rng), mum ? 'MOT' : 'FAT', 1, 1);
        break;
      }
      case 'split': {
        // Priority 1 and 2 at different addresses; sometimes a court order restricts the second.
        const second = this.newAddress(rng);
        const mother = this.newContact('F', otherSurname(), home, since, rng);
        const father = this.newContact('M', surname, second, since, rng);
        add(mother, 'MOT', 1, 1);
        const court = forced?.courtOrder ?? rng.chance(0.25);
        add(father, 'FAT', 1, 0, court ? { courtOrder: 1, correspondence: 0 } : {});
        break;
      }
      case 'blended': {
        const second = this.newAddress(rng);
        const mother = this.newContact('F', this.surname(rng), home, since, rng);
        const step = this.newContact('M', mother.person.surname, home, since, rng);
        const father = this.newContact('M', surname, second, since, rng);
        add(mother, 'MOT', 1, 1);
        add(step, 'STF', 0, 1, { correspondence: 0, since: addDays(since, rng.int(60, 600)) });
        add(father, 'FAT', 1, 0);
        break;
      }
      case 'kinship': {
        const gran = this.newContact('F', otherSurname(), home, since, rng);
        add(gran, 'GRM', 1, 1, { courtOrder: 1 });
        break;
      }
      case 'foster': {
        const carer = this.newContact('F', this.surname(rng), home, since, rng);
        const social = this.newContact(
          rng.chance(0.7) ? 'F' : 'M',
          this.surname(rng),
          this.councilAddress(),
          since,
          rng,
        );
        add(carer, 'FOF', 0, 1, { correspondence: 1 });
        add(social, 'SWR', 0, 0, { correspondence: 1 });
        break;
      }
    }
    // Extra emergency contacts: grandparents, aunts and uncles.
    const extras = rng.weighted([
      [0, 55],
      [1, 35],
      [2, 10],
    ] as const);
    for (let i = 0; i < extras; i++) {
      const g = rng.chance(0.6) ? 'F' : 'M';
      const rel = rng.chance(0.6) ? (g === 'F' ? 'GRM' : 'GRF') : g === 'F' ? 'AUN' : 'UNC';
      const addr = rng.chance(0.2) ? home : this.newAddress(rng);
      add(
        this.newContact(g, rng.chance(0.5) ? surname : this.surname(rng), addr, since, rng),
        rel,
        0,
        addr === home ? 1 : 0,
        {
          correspondence: 0,
        },
      );
    }
    this.families.push(family);
    return family;
  }

  private councilAddressRec: AddressRec | null = null;
  private councilAddress(): AddressRec {
    if (!this.councilAddressRec) {
      this.councilAddressRec = this.newAddress(new Rng(`${this.seed}:council`));
      this.councilAddressRec.houseName = 'Fenshire County Council, Children’s Services';
      this.councilAddressRec.houseNumber = null;
    }
    return this.councilAddressRec;
  }

  private pickFamily(rng: Rng, since: string, baseNc: number): FamilyRec {
    // Siblings: join a family that still expects children, or start a new one.
    const open = this.families.filter((f) => f.kids.length > 0 && f.kids.length < f.targetKids);
    const forcedOpen = open.find((f) => f.id <= 5 && f.kids.every((k) => k.baseNc !== baseNc));
    if (forcedOpen) return forcedOpen;
    // Twins are rare: a sibling usually joins a family with no child in the same year group.
    const pool = rng.chance(0.03) ? open : open.filter((f) => f.kids.every((k) => k.baseNc !== baseNc));
    if (pool.length > 0 && rng.chance(0.75)) return rng.pick(pool);
    return this.newFamily(since, rng);
  }

  // ---------------------------------------------------------------- pupils

  private upnFor(rng: Rng, school: SchoolRec, entryYear: number): string {
    const key = `${school.lea}${school.estab}${entryYear % 100}`;
    let serial = this.upnSerials.get(key) ?? rng.int(1, 200);
    for (;;) {
      serial += rng.int(1, 7);
      const upn = makeUpn(school.lea, school.estab, entryYear, serial % 1000);
      if (!this.usedUpns.has(upn)) {
        this.upnSerials.set(key, serial);
        this.usedUpns.add(upn);
        return upn;
      }
    }
  }

  private newUln(rng: Rng): string {
    for (;;) {
      const nine = `${rng.int(1, 9)}${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;
      const check = ulnCheckDigit(nine);
      if (check === null) continue;
      const uln = `${nine}${check}`;
      if (isValidUln(uln) && !this.usedUlns.has(uln)) {
        this.usedUlns.add(uln);
        return uln;
      }
    }
  }

  /** Creates a pupil in NC year `nc` of academic year `yi`, admitted on `admission`. */
  private newPupil(yi: number, nc: number, admission: string, rng: Rng): PupilRec {
    const family = this.pickFamily(rng, admission, nc - yi);
    const forced = this.forcedPupil++;
    const gender: 'M' | 'F' = forced === 0 ? 'F' : rng.chance(0.5) ? 'M' : 'F';
    const startYear = this.years[yi]!.startYear;
    // Born between 1 September and 31 August of the cohort year.
    const birthYearStart = startYear - nc - 5;
    const twin = family.kids.find((k) => k.baseNc === nc - yi);
    const dob = twin?.person.dob ?? addDays(ymd(birthYearStart, 9, 1), rng.int(0, 364));
    let forename = this.forename(gender, rng);
    if (forced === 0) forename = 'Zoë';
    if (twin && forename === twin.person.forename) forename = this.forename(gender, rng);
    const chosen = CHOSEN_NAMES[forename] && rng.chance(0.5) ? CHOSEN_NAMES[forename]! : null;
    const legalSurname =
      family.kind === 'blended' && rng.chance(0.3)
        ? family.contacts[0]!.contact.person.surname
        : family.surname;
    const person = this.newPerson(
      {
        surname: family.surname,
        forename: chosen ?? forename,
        midname: rng.chance(0.55) ? this.forename(gender, rng) : null,
        legalSurname,
        legalForename: forename,
        chosen,
        gender,
        dob,
        title: null,
        salutation: null,
      },
      rng,
    );
    // UPN allocated when the pupil first entered a school (Reception).
    const entryYear = startYear - nc;
    const upnSchool =
      this.preset.phase === 'primary' && rng.chance(0.85) ? this.school : rng.pick(this.feeders);
    const upn = this.upnFor(rng, upnSchool, entryYear);
    let [ethnicity, , languages] = rng.weighted(ETHNICITIES.map((e) => [e, e[1]] as const));
    let language: string | null = rng.chance(0.04) ? null : rng.pick(languages);
    const elder = family.kids[0];
    if (elder && rng.chance(0.92)) {
      // Siblings mostly share ethnicity and home language.
      ethnicity = elder.ethnicity ?? ethnicity;
      language = elder.language;
    }
    const inCare: Flag = family.kind === 'foster' ? 1 : 0;
    const fsm: Flag = rng.chance(0.246) ? 1 : 0;
    const ever6: Flag = fsm || rng.chance(0.07) ? 1 : 0;
    const service: Flag = rng.chance(0.01) ? 1 : 0;
    const sen = rng.weighted([
      ['N', 85],
      ['K', 13],
      ['E', 2],
    ] as const);
    const absenceKind = rng.next();
    const absenceRate =
      absenceKind < 0.7
        ? rng.next() * 0.045 + 0.005
        : absenceKind < 0.92
          ? rng.next() * 0.08 + 0.05
          : rng.next() * 0.22 + 0.13;
    const behaviourKind = rng.next();
    const behaviour =
      (behaviourKind < 0.6
        ? 0.1 + rng.next() * 0.6
        : behaviourKind < 0.9
          ? 0.7 + rng.next() * 1.3
          : 3 + rng.next() * 5) / 1.27;
    const pupil: PupilRec = {
      person,
      index: this.pupils.length,
      upn,
      formerUpn: null,
      baseNc: nc - yi,
      admission,
      leave: null,
      leavingReason: null,
      admissionNumber: '',
      enrolStatus: 'C',
      dualSchoolId: null,
      family,
      form: 0,
      house: rng.int(0, HOUSES.length - 1),
      ability: twin ? Math.min(1, Math.max(0, twin.ability + (rng.next() - 0.5) * 0.3)) : rng.next(),
      absenceRate,
      lateRate: rng.next() * 0.04 + 0.005,
      behaviour,
      achievement: 0.4 + rng.next() * 1.2,
      ethnicity,
      language,
      eal: language !== null && language !== 'ENG' ? 1 : 0,
      fsm,
      ever6,
      pp: ever6 || inCare ? 1 : 0,
      inCare,
      service,
      sen,
      photo: rng.chance(0.88) ? 1 : 0,
      dietary: rng.chance(0.12) ? rng.weighted(DIETARY) : null,
      zDays: 0,
      partTime: null,
      uln: null,
      candidate: null,
      exclusions: [],
      optionChoices: new Map(),
      spans: new Map(),
      houseSpan: null,
      applicantLinks: false,
    };
    family.kids.push(pupil);
    this.pupils.push(pupil);
    return pupil;
  }

  private ncOf(p: PupilRec, yi: number): number {
    return p.baseNc + yi;
  }

  private onRollSometimeIn(p: PupilRec, year: AcademicYear): boolean {
    const first = year.days[0]!;
    const last = year.days[year.days.length - 1]!;
    return p.admission <= last && (p.leave === null || p.leave >= first);
  }

  private onRoll(p: PupilRec, date: string): boolean {
    return p.admission <= date && (p.leave === null || p.leave >= date);
  }

  private buildPupils(): void {
    const rng = this.rng.fork('pupils');
    const shares = yearShares(this.preset.phase);
    const size = (nc: number) =>
      Math.max(3, Math.round(this.preset.pupils * (shares.find(([y]) => y === nc)?.[1] ?? 0)));
    const firstNc = shares[0]![0];
    const lastNc = shares[shares.length - 1]![0];
    const y0 = this.years[0]!;

    // The roll on the first day of the dataset: pupils admitted in earlier years.
    for (let nc = firstNc; nc <= lastNc; nc++) {
      const n = size(nc);
      for (let i = 0; i < n; i++) {
        let admitYear = y0.startYear - (nc - firstNc);
        if (nc >= 12 && rng.chance(0.25)) admitYear = y0.startYear - (nc - 12);
        let admission = academicYear(0, admitYear, false).days[0]!;
        if (admitYear < y0.startYear && rng.chance(0.05)) {
          const days = academicYear(0, admitYear, false).days;
          admission = days[rng.int(20, 170)]!;
        }
        this.newPupil(0, nc, admission, rng);
      }
    }

    for (const year of this.years) {
      const yi = year.index;
      if (yi > 0) {
        const prev = this.years[yi - 1]!;
        const lastDay = prev.days[prev.days.length - 1]!;
        this.endOfYearLeavers(yi - 1, lastDay, rng);
        // Intake: Reception or Year 7, and external sixth-form joiners.
        const firstDay = year.days[0]!;
        for (let i = 0; i < size(firstNc); i++) this.newPupil(yi, firstNc, firstDay, rng);
        if (this.preset.phase === 'secondary') {
          const staying = this.pupils.filter(
            (p) => this.ncOf(p, yi) === 12 && this.onRoll(p, firstDay),
          ).length;
          for (let i = staying; i < size(12); i++) this.newPupil(yi, 12, firstDay, rng);
        }
      }
      this.midYearMovement(year, rng);
    }
    // The last year's Year 11 and 13 leave at the end of term: leaving dates already recorded.
    const finalYear = this.years[this.years.length - 1]!;
    this.endOfYearLeavers(finalYear.index, finalYear.days[finalYear.days.length - 1]!, rng);

    // Admission numbers in order of admission.
    const ordered = [...this.pupils].sort((a, b) =>
      a.admission === b.admission ? a.person.id - b.person.id : a.admission < b.admission ? -1 : 1,
    );
    ordered.forEach((p, i) => {
      p.admissionNumber = String(2000 + i).padStart(6, '0');
    });
  }

  private endOfYearLeavers(yi: number, lastDay: string, rng: Rng): void {
    for (const p of this.pupils) {
      if (p.leave !== null || p.admission > lastDay) continue;
      const nc = this.ncOf(p, yi);
      if (this.preset.phase === 'primary') {
        if (nc === 6) {
          p.leave = lastDay;
          p.leavingReason = 'End of primary education';
        }
      } else if (nc === 13) {
        p.leave = lastDay;
        p.leavingReason = 'End of sixth form';
      } else if (nc === 11 && rng.chance(0.42)) {
        p.leave = lastDay;
        p.leavingReason = rng.pick(['Further education college', 'Apprenticeship', 'Sixth form elsewhere']);
      }
    }
  }

  private midYearMovement(year: AcademicYear, rng: Rng): void {
    const yi = year.index;
    const isFinal = yi === this.years.length - 1;
    const lastIndex = isFinal ? this.preset.todayIndex - 3 : 175;
    const roll = this.pupils.filter((p) => this.onRoll(p, year.days[0]!)).length;
    const count = Math.max(1, Math.round(roll * 0.02));
    const ncRange: [number, number] = this.preset.phase === 'primary' ? [1, 6] : [7, 11];
    for (let i = 0; i < count; i++) {
      const day = year.days[rng.int(10, lastIndex)]!;
      const p = this.newPupil(yi, rng.int(ncRange[0], ncRange[1]), day, rng);
      if (i === 0 || rng.chance(0.2)) p.zDays = 2;
      if (i === 0 || rng.chance(0.3))
        p.formerUpn = this.upnFor(rng, rng.pick(this.feeders), year.startYear - 8);
    }
    for (let i = 0; i < count; i++) {
      const day = year.days[rng.int(10, lastIndex)]!;
      const candidates = this.pupils.filter(
        (p) =>
          p.leave === null &&
          p.admission < addDays(day, -20) &&
          this.ncOf(p, yi) >= ncRange[0] &&
          this.ncOf(p, yi) <= ncRange[1] &&
          p.family.id > 5,
      );
      if (candidates.length === 0) continue;
      const p = rng.pick(candidates);
      p.leave = day;
      p.leavingReason = rng.pick(LEAVING_REASONS);
    }
  }

  /** Guarantees the rare cases exist even in `tiny`, and records who carries them. */
  private ensureEdgeCases(): void {
    const rng = this.rng.fork('edge-cases');
    const finalYear = this.years[this.years.length - 1]!;
    const current = this.pupils.filter((p) => this.onRoll(p, this.today));
    const inRange = (p: PupilRec, lo: number, hi: number) =>
      this.ncOf(p, finalYear.index) >= lo && this.ncOf(p, finalYear.index) <= hi;
    const plain = (p: PupilRec) =>
      p.enrolStatus === 'C' && p.family.id > 5 && p.leave === null && p.zDays === 0;

    // Dual registration: one pupil whose main registration is here (D when at the PRU),
    // and, in secondary schools, one whose main school is elsewhere.
    const dualCount = Math.max(1, Math.round(current.length * 0.006));
    const pool = current.filter(
      (p) =>
        plain(p) &&
        inRange(p, this.preset.phase === 'primary' ? 4 : 8, this.preset.phase === 'primary' ? 6 : 11),
    );
    for (let i = 0; i < dualCount && pool.length > 0; i++) {
      const p = pool.splice(rng.int(0, pool.length - 1), 1)[0]!;
      p.enrolStatus = i % 2 === 0 || this.preset.phase === 'primary' ? 'M' : 'S';
      p.dualSchoolId = this.pru.id;
    }
    if (
      this.preset.phase === 'secondary' &&
      !this.pupils.some((p) => p.enrolStatus === 'S') &&
      pool.length > 0
    ) {
      const p = pool.splice(0, 1)[0]!;
      p.enrolStatus = 'S';
      p.dualSchoolId = this.pru.id;
    }
    // A part-time timetable (C2) for a few weeks.
    const ptPool = current.filter((p) => plain(p) && p.enrolStatus === 'C');
    if (ptPool.length > 0) {
      const p = rng.pick(ptPool);
      const from = finalYear.days[120]!;
      p.partTime = { from, to: finalYear.days[150]! };
    }
    // Flags that a small school might miss by chance.
    const ensure = (has: (p: PupilRec) => boolean, set: (p: PupilRec) => void) => {
      if (!current.some(has)) {
        const candidates = current.filter((p) => plain(p) && !has(p));
        if (candidates.length > 0) set(rng.pick(candidates));
      }
    };
    ensure(
      (p) => p.sen === 'E',
      (p) => {
        p.sen = 'E';
      },
    );
    ensure(
      (p) => p.sen === 'K',
      (p) => {
        p.sen = 'K';
      },
    );
    ensure(
      (p) => p.fsm === 1,
      (p) => {
        p.fsm = 1;
        p.ever6 = 1;
        p.pp = 1;
      },
    );
    ensure(
      (p) => p.eal === 1,
      (p) => {
        p.language = 'POL';
        p.eal = 1;
      },
    );
    ensure(
      (p) => p.service === 1,
      (p) => {
        p.service = 1;
      },
    );
    ensure(
      (p) => p.dietary !== null,
      (p) => {
        p.dietary = 'Halal';
      },
    );
    ensure(
      (p) => p.photo === 0,
      (p) => {
        p.photo = 0;
      },
    );
    ensure(
      (p) => p.person.chosen !== null,
      (p) => {
        p.person.legalForename = p.person.gender === 'M' ? 'William' : 'Matilda';
        p.person.chosen = p.person.gender === 'M' ? 'Billy' : 'Tilly';
        p.person.forename = p.person.chosen;
      },
    );
    ensure(
      (p) => p.ethnicity === null,
      (p) => {
        p.ethnicity = null;
        p.language = null;
        p.eal = 0;
      },
    );
    // ULNs from age 14; exam candidate numbers for Years 10–13.
    let candidateNo = 1000;
    for (const p of this.pupils) {
      const lastNc = this.ncOf(p, this.lastYearIndexOnRoll(p));
      if (lastNc >= 10 && this.preset.phase === 'secondary') {
        p.uln = this.newUln(rng);
        candidateNo += 1;
        const centre = '23456';
        const yy = String((this.years[this.lastYearIndexOnRoll(p)]!.startYear + 1) % 100).padStart(2, '0');
        // UCI: centre, year, candidate number, a zero, then a check letter.
        const digits = `${centre}${yy}${candidateNo}0`;
        p.candidate = { uci: `${digits}${upnCheckLetter(digits)}`, number: String(candidateNo) };
      }
    }
    // A few recent admissions still carry duplicate links through their applicant record.
    for (const p of this.pupils) {
      if (p.admission >= finalYear.days[0]! && rng.chance(0.06)) p.applicantLinks = true;
    }
  }

  private lastYearIndexOnRoll(p: PupilRec): number {
    for (let i = this.years.length - 1; i >= 0; i--) {
      if (this.onRollSometimeIn(p, this.years[i]!)) return i;
    }
    return 0;
  }

  // ---------------------------------------------------------------- exclusions

  private buildExclusions(): void {
    const rng = this.rng.fork('exclusions');
    const secondary = this.preset.phase === 'secondary';
    for (const year of this.years) {
      const isFinal = year.index === this.years.length - 1;
      const lastIndex = isFinal ? this.preset.todayIndex - 1 : year.days.length - 6;
      const roll = this.pupils.filter((p) => this.onRollSometimeIn(p, year) && p.enrolStatus === 'C');
      const suspensions = Math.max(1, Math.round(roll.length * (secondary ? 0.09 : 0.012)));
      const weights = roll.map((p) => [p, p.behaviour ** 2] as const);
      for (let i = 0; i < suspensions; i++) {
        const p = rng.weighted(weights);
        const startIndex = rng.int(5, lastIndex);
        const start = year.days[startIndex]!;
        if (!this.onRoll(p, start)) continue;
        const lunch = rng.chance(0.08);
        const days = lunch
          ? 1
          : rng.weighted([
              [1, 45],
              [2, 25],
              [3, 15],
              [5, 15],
            ] as const);
        const endIndex = Math.min(startIndex + days - 1, lastIndex);
        const end = year.days[endIndex]!;
        if (p.leave !== null && p.leave < end) continue;
        if (p.exclusions.some((e) => e.end >= start && e.start <= end)) continue;
        const ex: Exclusion = {
          id: this.ids.next('exclusion'),
          type: lunch ? 'LNCH' : 'FIXD',
          reason: rng.weighted(EXCLUSION_REASONS),
          start,
          end,
          sessions: lunch ? 1 : (endIndex - startIndex + 1) * 2,
          appeal: null,
        };
        p.exclusions.push(ex);
        this.exclusions.push({ pupil: p, exclusion: ex });
      }
      // A permanent exclusion in a big secondary each year (the pupil leaves afterwards).
      if (secondary && roll.length >= 800) {
        const candidates = roll.filter(
          (p) => p.leave === null && p.behaviour > 2 && p.family.id > 5 && this.ncOf(p, year.index) <= 11,
        );
        if (candidates.length > 0) {
          const p = rng.pick(candidates);
          const startIndex = rng.int(40, Math.max(41, lastIndex - 10));
          const start = year.days[startIndex]!;
          const end = year.days[Math.min(startIndex + 5, lastIndex)]!;
          if (!p.exclusions.some((e) => e.end >= start) && p.admission < start) {
            const ex: Exclusion = {
              id: this.ids.next('exclusion'),
              type: 'PERM',
              reason: rng.pick(['PA', 'PP', 'DA', 'MT']),
              start,
              end,
              sessions: 12,
              appeal: rng.pick(['Upheld', 'Not appealed']),
            };
            p.exclusions.push(ex);
            this.exclusions.push({ pupil: p, exclusion: ex });
            p.leave = end;
            p.leavingReason = 'Permanently excluded';
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------- staff

  private formsFor(count: number): number {
    return Math.max(1, Math.round(count / this.preset.formSize));
  }

  private cohort(yi: number, nc: number): PupilRec[] {
    const year = this.years[yi]!;
    return this.pupils.filter((p) => this.ncOf(p, yi) === nc && this.onRollSometimeIn(p, year));
  }

  private ncYears(): number[] {
    return yearShares(this.preset.phase).map(([y]) => y);
  }

  private classCount(block: Block, cohortSize: number, forms: number): number {
    if (block.kind === 'form') return forms;
    if (block.kind === 'set') return Math.max(2, forms, Math.ceil(cohortSize / 24));
    if (block.kind === 'practical') return Math.max(forms, Math.ceil(cohortSize / 20));
    const takers = cohortSize >= 100 && block.periods === 5 ? cohortSize * 0.8 : cohortSize;
    return Math.max(2, Math.ceil(takers / this.preset.optionClassSize));
  }

  private buildStaff(): void {
    const rng = this.rng.fork('staff');
    const demand = new Map<string, number>();
    let maxForms = 0;
    for (const year of this.years) {
      const d = new Map<string, number>();
      let forms = 0;
      for (const nc of this.ncYears()) {
        const size = this.cohort(year.index, nc).length;
        const f = this.formsFor(size);
        forms += f;
        for (const block of curriculum(nc)) {
          const n = this.classCount(block, size, f);
          const dept =
            this.preset.phase === 'primary'
              ? 'Primary'
              : SUBJECTS.find((s) => s.code === block.subjects[0])!.department;
          d.set(dept, (d.get(dept) ?? 0) + n * block.periods);
        }
      }
      maxForms = Math.max(maxForms, forms);
      for (const [k, v] of d) demand.set(k, Math.max(demand.get(k) ?? 0, v));
    }
    const first = this.years[0]!;
    const usedCodes = new Set<string>();
    const makeStaff = (
      department: string | null,
      teaching: boolean,
      role: string,
      start: string,
      end = NO_END_DATE,
    ): StaffRec => {
      const gender: 'M' | 'F' = rng.chance(teaching ? 0.62 : 0.75) ? 'F' : 'M';
      const surname = this.surname(rng);
      const person = this.adult(gender, surname, rng, { dobFrom: 1962, dobTo: 2000 });
      if (!person.title) {
        person.title = gender === 'F' ? 'Ms' : 'Mr';
        person.salutation = `${person.title} ${surname}`;
      }
      if (!person.dob) person.dob = ymd(rng.int(1962, 2000), rng.int(1, 12), rng.int(1, 28));
      const base = `${slug(person.forename).charAt(0)}${slug(surname).slice(0, 2)}`
        .toUpperCase()
        .padEnd(3, 'X');
      let code = base;
      for (let i = 2; usedCodes.has(code); i++) code = `${base.slice(0, 2)}${i}`;
      usedCodes.add(code);
      const employeeId = this.ids.next('employee');
      const deptRoom = department ? (DEPARTMENT_ROOMS[department] ?? 'GN') : 'OF';
      const rec: StaffRec = {
        person,
        employeeId,
        code,
        number: `E${String(10_000 + employeeId * 7).padStart(6, '0')}`,
        teaching,
        department,
        roles: [{ id: this.ids.next('role'), name: role, start, end }],
        start,
        end,
        room: `${deptRoom}${(this.staff.filter((s) => s.department === department).length % 12) + 1}`,
        email: this.staffEmail(person.forename, surname),
        login: null,
      };
      this.staff.push(rec);
      return rec;
    };
    const hired = (yearsBefore: number) => ymd(first.startYear - yearsBefore, 9, 1);

    // Leadership.
    makeStaff(null, true, 'Headteacher', hired(rng.int(3, 9)));
    const deputies = this.preset.pupils >= 200 ? (this.preset.pupils >= 1000 ? 2 : 1) : 0;
    for (let i = 0; i < deputies; i++) makeStaff(null, true, 'Deputy Headteacher', hired(rng.int(1, 10)));
    const assistants = Math.round(this.preset.pupils / 500);
    for (let i = 0; i < assistants; i++) makeStaff(null, true, 'Assistant Headteacher', hired(rng.int(1, 8)));

    // Teachers by department; each year some leave and are replaced.
    const capacity = this.preset.phase === 'primary' ? 25 : 21;
    const depts = [...demand.keys()].sort();
    for (const dept of depts) {
      const need =
        this.preset.phase === 'primary' ? maxForms : Math.max(1, Math.ceil(demand.get(dept)! / capacity));
      for (let i = 0; i < need; i++) {
        const t = makeStaff(dept, true, 'Teacher', hired(rng.int(0, 15)));
        if (i === 0 && this.preset.phase === 'secondary') {
          t.roles.push({
            id: this.ids.next('role'),
            name: `Head of ${dept}`,
            start: t.start,
            end: NO_END_DATE,
          });
        }
      }
    }
    for (const year of this.years.slice(1)) {
      const prevEnd = ymd(year.startYear, 8, 31);
      const teachers = this.staff.filter((s) => s.department !== null && s.end === NO_END_DATE);
      for (const t of teachers) {
        if (rng.chance(0.08)) {
          t.end = prevEnd;
          for (const r of t.roles) if (r.end === NO_END_DATE) r.end = prevEnd;
          const repl = makeStaff(t.department, true, 'Teacher', ymd(year.startYear, 9, 1));
          if (t.roles.some((r) => r.name.startsWith('Head of'))) {
            repl.roles.push({
              id: this.ids.next('role'),
              name: `Head of ${t.department}`,
              start: repl.start,
              end: NO_END_DATE,
            });
          }
        }
      }
    }
    // Special roles held by teachers.
    const active = this.staff.filter((s) => s.department !== null && s.end === NO_END_DATE);
    const senco = active[Math.min(active.length - 1, 1)]!;
    senco.roles.push({ id: this.ids.next('role'), name: 'SENCO', start: senco.start, end: NO_END_DATE });
    const dsl = this.staff[0]!;
    dsl.roles.push({
      id: this.ids.next('role'),
      name: 'Designated Safeguarding Lead',
      start: dsl.start,
      end: NO_END_DATE,
    });

    // Support staff.
    const support: [string, number][] = [
      ['Teaching Assistant', 0.045],
      ['Administrator', 0.008],
      ['Cover Supervisor', this.preset.phase === 'secondary' ? 0.004 : 0],
      ['Learning Mentor', 0.003],
      ['Cleaner', 0.008],
      ['Catering Assistant', 0.008],
      ['Science Technician', this.preset.phase === 'secondary' ? 0.002 : 0],
      ['IT Technician', 0.0015],
      ['Midday Supervisor', 0.01],
    ];
    const singles = [
      'Office Manager',
      'Data Manager',
      'Attendance Officer',
      'HR Officer',
      'Finance Officer',
      'Site Manager',
    ];
    if (this.preset.phase === 'secondary') singles.push('Exams Officer', 'Librarian');
    for (const role of singles) makeStaff(null, false, role, hired(rng.int(0, 12)));
    for (const [role, ratio] of support) {
      const n = Math.round(this.preset.pupils * ratio);
      for (let i = 0; i < n; i++) makeStaff(null, false, role, hired(rng.int(0, 12)));
    }
    // A support leaver in the dataset's first year.
    const leaverSupport =
      this.staff.find((s) => !s.teaching && s.roles[0]!.name === 'Teaching Assistant') ??
      this.staff.find((s) => !s.teaching && s.roles[0]!.name !== 'Data Manager')!;
    leaverSupport.end = first.days[80]!;
    for (const r of leaverSupport.roles) r.end = leaverSupport.end;
  }

  private readonly staffEmails = new Set<string>();
  private staffEmail(forename: string, surname: string): string {
    const base = `${slug(forename).charAt(0)}.${slug(surname)}`;
    let email = `${base}@ashworth.example`;
    for (let i = 2; this.staffEmails.has(email); i++) email = `${base}${i}@ashworth.example`;
    this.staffEmails.add(email);
    return email;
  }

  private teachersActiveIn(year: AcademicYear): StaffRec[] {
    return this.staff.filter(
      (s) => s.teaching && s.start <= year.days[0]! && s.end >= year.days[year.days.length - 1]!,
    );
  }

  // ---------------------------------------------------------------- groups

  private newGroup(
    typeId: number,
    code: string,
    description: string,
    start: string,
    end: string,
  ): BaseGroupRec {
    const g: BaseGroupRec = { id: this.ids.next('group'), typeId, code, description, start, end };
    this.groups.push(g);
    return g;
  }

  private member(groupId: number, personId: number, start: string, end: string): Span {
    this.members.push({ id: this.ids.next('member'), groupId, personId, start, end });
    return { groupId, start, end };
  }

  private supervise(groupId: number, personId: number, role: string, start: string, end: string): void {
    this.supervisors.push({ id: this.ids.next('supervisor'), groupId, personId, role, start, end });
  }

  private buildHouses(): void {
    HOUSES.forEach((name) => {
      this.houses.push(this.newGroup(4, name, `${name} House`, '2010-09-01', NO_END_DATE));
    });
  }

  private ncLabel(nc: number): string {
    return nc === 0 ? 'Reception' : `Year ${nc}`;
  }

  private formCode(nc: number, f: number): string {
    if (this.preset.phase === 'primary')
      return `${nc === 0 ? 'R' : nc}${PRIMARY_FORM_NAMES[f % PRIMARY_FORM_NAMES.length]}`;
    return `${nc}${'ABCDEFGHJKLMNPQRSTUVWXYZ'[f]}`;
  }

  private buildYearGroups(year: AcademicYear): void {
    const rng = this.rng.fork(`groups:${year.label}`);
    const yi = year.index;
    const rec: YearGroupsRec = {
      year,
      yearGroups: new Map(),
      regGroups: new Map(),
      classes: [],
      blocks: new Map(),
      slotBlocks: new Map(),
    };
    const teachers = this.teachersActiveIn(year);
    const busy = new Map<StaffRec, Set<number>>(teachers.map((t) => [t, new Set<number>()]));
    const load = (t: StaffRec) => busy.get(t)!.size;
    let tutorCursor = 0;
    const nonLeadership = teachers.filter((t) => t.department !== null);
    const pickTutor = () => nonLeadership[tutorCursor++ % nonLeadership.length]!;
    const lastDay = year.days[year.days.length - 1]!;
    const yearEndMember = (p: PupilRec) => (p.leave !== null && p.leave <= lastDay ? p.leave : year.end);
    const yearStartMember = (p: PupilRec) => (p.admission > year.days[0]! ? p.admission : year.start);

    for (const nc of this.ncYears()) {
      const pupils = this.cohort(yi, nc);
      const forms = this.formsFor(pupils.length);
      const yg = this.newGroup(
        3,
        this.ncLabel(nc),
        `${this.ncLabel(nc)} ${year.label}`,
        year.start,
        year.end,
      );
      rec.yearGroups.set(nc, yg);
      const hoy = nonLeadership[(nc * 7 + yi) % nonLeadership.length]!;
      this.supervise(yg.id, hoy.person.id, 'Head of Year', year.start, year.end);
      const regs: BaseGroupRec[] = [];
      const tutors: StaffRec[] = [];
      for (let f = 0; f < forms; f++) {
        const code = this.formCode(nc, f);
        const desc =
          this.preset.phase === 'primary'
            ? `${this.ncLabel(nc)} ${PRIMARY_FORM_NAMES[f]} class`
            : `Tutor group ${code}`;
        const g = this.newGroup(2, code, desc, year.start, year.end);
        regs.push(g);
        const tutor = this.preset.phase === 'primary' ? this.primaryTeacher(teachers, nc, f) : pickTutor();
        tutors.push(tutor);
        this.supervise(
          g.id,
          tutor.person.id,
          this.preset.phase === 'primary' ? 'Class Teacher' : 'Tutor',
          year.start,
          year.end,
        );
      }
      rec.regGroups.set(nc, regs);

      // Registration forms: new intakes (and the sixth form) are spread round-robin.
      const fresh = pupils.filter((p) => p.spans.size === 0 || nc === 12 || p.form >= forms);
      fresh.forEach((p, i) => {
        p.form = i % forms;
      });
      for (const p of pupils) {
        if (p.admission > year.days[0]! && p.admission <= lastDay) {
          // A mid-year joiner goes to the smallest form.
          const sizes = regs.map((_, f) => pupils.filter((q) => q.form === f && q !== p).length);
          p.form = sizes.indexOf(Math.min(...sizes));
        }
      }

      // Timetable slots of this year group's blocks.
      const blocks = curriculum(nc);
      const slots = rng.shuffle(Array.from({ length: 25 }, (_, i) => i));
      const slotBlocks: (string | undefined)[] = new Array(25).fill(undefined);
      const blockClasses = new Map<string, ClassRec[]>();
      let cursor = 0;
      const ordered = [...pupils].sort((a, b) => b.ability - a.ability || a.person.id - b.person.id);
      for (const [bi, block] of blocks.entries()) {
        const key = `${bi}:${block.kind}:${block.subjects.join('/')}`;
        const bslots = slots.slice(cursor, cursor + block.periods).sort((a, b) => a - b);
        cursor += block.periods;
        for (const s of bslots) slotBlocks[s] = key;
        const n = this.classCount(block, pupils.length, forms);
        const list: ClassRec[] = [];
        const perSubject = new Map<string, number>();
        for (let k = 0; k < n; k++) {
          const subject =
            block.kind === 'option' ? block.subjects[k % block.subjects.length]! : block.subjects[0]!;
          const num = (perSubject.get(subject) ?? 0) + 1;
          perSubject.set(subject, num);
          const code =
            block.kind === 'form'
              ? `${this.formCode(nc, k)}/${subject}`
              : block.kind === 'option'
                ? `${nc}${block.letter}/${subject}${num}`
                : `${nc}/${subject}${k + 1}`;
          const subj = SUBJECTS.find((s) => s.code === subject)!;
          const g = this.newGroup(1, code, `${this.ncLabel(nc)} ${subj.description}`, year.start, year.end);
          const cls: ClassRec = {
            group: g,
            subjectId: this.subjectIds.get(subject)!,
            subject,
            nc,
            yearLabel: year.label,
            yearIndex: yi,
            blockKey: key,
            slots: bslots,
            teacher: null,
          };
          // Teacher: free in every slot of the block, from the subject's department, least loaded.
          let teacher: StaffRec | undefined;
          if (this.preset.phase === 'primary') {
            teacher = tutors[k % tutors.length];
          } else {
            const free = (t: StaffRec) => bslots.every((s) => !busy.get(t)!.has(s));
            const dept = teachers.filter((t) => t.department === subj.department);
            const pool = dept.filter(free);
            const fallback =
              pool.length > 0 ? pool : teachers.filter((t) => t.department !== null && free(t));
            const from = fallback.length > 0 ? fallback : dept.length > 0 ? dept : teachers;
            teacher = [...from].sort((a, b) => load(a) - load(b) || a.employeeId - b.employeeId)[0];
          }
          if (teacher) {
            cls.teacher = teacher;
            for (const s of bslots) busy.get(teacher)?.add(s);
            this.supervise(g.id, teacher.person.id, 'Teacher', year.start, year.end);
          }
          list.push(cls);
          this.classes.push(cls);
          rec.classes.push(cls);
        }
        blockClasses.set(key, list);

        // Who is in which class.
        const assign = new Map<PupilRec, ClassRec>();
        if (block.kind === 'form') {
          for (const p of pupils) assign.set(p, list[p.form % list.length]!);
        } else if (block.kind === 'practical') {
          const byForm = [...pupils].sort((a, b) => a.form - b.form || a.person.id - b.person.id);
          byForm.forEach((p, rank) => {
            assign.set(p, list[Math.min(list.length - 1, Math.floor((rank * list.length) / byForm.length))]!);
          });
        } else if (block.kind === 'set') {
          ordered.forEach((p, rank) => {
            assign.set(
              p,
              list[Math.min(list.length - 1, Math.floor((rank * list.length) / ordered.length))]!,
            );
          });
        } else {
          const ks = nc >= 12 ? 'KS5' : 'KS4';
          for (const p of pupils) {
            const choiceKey = `${ks}:${block.letter}`;
            let choice = p.optionChoices.get(choiceKey);
            if (choice === undefined) {
              if (nc >= 12) {
                // Sixth formers take three blocks, some four; a block not taken is study time.
                const taken = [...p.optionChoices.keys()].filter((k) => k.startsWith('KS5:')).length;
                const remaining = blocks.length - bi;
                const want = p.ability > 0.75 ? 4 : 3;
                const take = taken < want && (remaining <= want - taken || rng.chance(0.7));
                choice = take ? '' : '-';
              } else {
                choice = '';
              }
              if (choice === '') {
                const chosen = new Set(p.optionChoices.values());
                const options = list.filter((cl) => !chosen.has(cl.subject));
                choice = rng.pick(options.length > 0 ? options : list).subject;
              }
              p.optionChoices.set(choiceKey, choice);
            }
            if (choice === '-') continue;
            const same = list.filter((cl) => cl.subject === choice);
            assign.set(p, same.length > 0 ? rng.pick(same) : rng.pick(list));
          }
        }
        for (const [p, cls] of assign) {
          const start = yearStartMember(p);
          const end = yearEndMember(p);
          const spans = this.spansOf(p, yi);
          // Sets change now and then during the year.
          if (block.kind === 'set' && list.length > 1 && rng.chance(0.05)) {
            const changeIndex = rng.int(30, Math.min(year.days.length - 20, this.preset.todayIndex - 5));
            const change = year.days[changeIndex]!;
            if (change > start && change < end) {
              const idx = list.indexOf(cls);
              const other = list[idx === 0 ? 1 : idx - 1]!;
              spans.classes.push(this.member(cls.group.id, p.person.id, start, addDays(change, -1)));
              spans.classes.push(this.member(other.group.id, p.person.id, change, end));
              continue;
            }
          }
          spans.classes.push(this.member(cls.group.id, p.person.id, start, end));
        }
      }
      rec.blocks.set(nc, blockClasses);
      rec.slotBlocks.set(nc, slotBlocks);

      // Year and registration group memberships (a few pupils move form during the year).
      for (const p of pupils) {
        const start = yearStartMember(p);
        const end = yearEndMember(p);
        const spans = this.spansOf(p, yi);
        spans.year.push(this.member(yg.id, p.person.id, start, end));
        if (forms > 1 && rng.chance(0.012)) {
          const change = year.days[rng.int(30, 150)]!;
          if (change > start && change < end) {
            const to = (p.form + 1) % forms;
            spans.reg.push(this.member(regs[p.form]!.id, p.person.id, start, addDays(change, -1)));
            p.form = to;
            spans.reg.push(this.member(regs[to]!.id, p.person.id, change, end));
            continue;
          }
        }
        spans.reg.push(this.member(regs[p.form]!.id, p.person.id, start, end));
      }
    }

    // Lessons.
    const start = year.start;
    const end = year.end;
    for (const cls of rec.classes) {
      const bySlot = new Map<number, LessonRec>();
      for (const slot of cls.slots) {
        const teacher = cls.teacher;
        if (!teacher) continue;
        const lesson: LessonRec = {
          id: this.ids.next('lesson'),
          classId: cls.group.id,
          periodId: slot + 1,
          staffId: teacher.person.id,
          room: this.preset.phase === 'primary' ? `CL${(cls.group.code.length % 9) + 1}` : teacher.room,
          start,
          end,
        };
        this.lessons.push(lesson);
        bySlot.set(slot, lesson);
      }
      this.lessonBySlot.set(cls.group.id, bySlot);
    }
    this.yearGroupRecs.push(rec);
  }

  private primaryTeacher(teachers: StaffRec[], nc: number, f: number): StaffRec {
    const pool = teachers.filter((t) => t.department === 'Primary');
    return pool[(nc * 2 + f) % pool.length] ?? teachers[0]!;
  }

  private spansOf(p: PupilRec, yi: number): { year: Span[]; reg: Span[]; classes: Span[] } {
    let s = p.spans.get(yi);
    if (!s) {
      s = { year: [], reg: [], classes: [] };
      p.spans.set(yi, s);
    }
    return s;
  }

  private buildHouseMemberships(): void {
    for (const p of this.pupils) {
      const house = this.houses[p.house]!;
      p.houseSpan = this.member(house.id, p.person.id, p.admission, p.leave ?? NO_END_DATE);
    }
    const teachers = this.staff.filter((s) => s.department !== null && s.end === NO_END_DATE);
    this.houses.forEach((h, i) => {
      const t = teachers[(i * 5 + 3) % teachers.length]!;
      this.supervise(h.id, t.person.id, 'Head of House', laterDate(t.start, h.start), NO_END_DATE);
    });
  }

  // ---------------------------------------------------------------- contacts

  private buildRelations(): void {
    const rng = this.rng.fork('relations');
    const finalYear = this.years[this.years.length - 1]!;
    let applicantOnlyDone = false;
    for (const family of this.families) {
      // Children live at the family home.
      for (const kid of family.kids) this.linkAddress(family.home, kid.person.id, kid.admission);
      // A family that moved house: old address closed, new one opened for everyone living there.
      if (rng.chance(0.06) && family.kids.some((k) => k.leave === null)) {
        const moved = finalYear.days[rng.int(20, this.preset.todayIndex - 10)]!;
        const next = this.newAddress(rng);
        const livers = new Set([
          ...family.kids.filter((k) => k.leave === null).map((k) => k.person.id),
          ...family.contacts.filter((c) => c.livesWith).map((c) => c.contact.person.id),
        ]);
        for (const link of this.addressLinks) {
          if (
            link.addressId === family.home.id &&
            livers.has(link.personId) &&
            link.end === NO_END_DATE &&
            link.start < moved
          ) {
            link.end = addDays(moved, -1);
            this.linkAddress(next, link.personId, moved);
          }
        }
        family.home = next;
      }
    }
    for (const pupil of this.pupils) {
      const family = pupil.family;
      let priority = 0;
      for (const fc of family.contacts) {
        priority++;
        const start = fc.since && fc.since > pupil.admission ? fc.since : pupil.admission;
        const end = NO_END_DATE;
        // The trap DOMAIN.md describes: the direct link was deleted, the applicant one survives.
        const current = this.onRoll(pupil, this.today);
        const trap =
          !applicantOnlyDone &&
          family.kind === 'split' &&
          fc.relation === 'FAT' &&
          fc.courtOrder === 0 &&
          current;
        const trapRandom =
          !trap &&
          fc.relation === 'FAT' &&
          family.kind === 'split' &&
          fc.courtOrder === 0 &&
          current &&
          rng.chance(0.03);
        if (trap || trapRandom) {
          applicantOnlyDone = true;
          family.applicantOnly = fc.contact;
          const deletedId = this.ids.next('relation');
          this.deletions.push({
            id: this.ids.next('deletion'),
            entity: 'stud_relation',
            key: String(deletedId),
            at: `${finalYear.days[rng.int(10, 100)]!} ${String(rng.int(9, 16)).padStart(2, '0')}:${String(rng.int(0, 59)).padStart(2, '0')}:00`,
          });
          this.relations.push(this.relation(pupil, fc, priority, start, end, 1, 0, 0));
          continue;
        }
        this.relations.push(this.relation(pupil, fc, priority, start, end, 0));
        if (pupil.applicantLinks) this.relations.push(this.relation(pupil, fc, priority, start, end, 1));
      }
    }
  }

  private relation(
    pupil: PupilRec,
    fc: FamilyContact,
    priority: number,
    start: string,
    end: string,
    viaApplicant: Flag,
    pr: Flag = fc.pr,
    correspondence: Flag = fc.correspondence,
  ): RelationRec {
    return {
      id: this.ids.next('relation'),
      studentId: pupil.person.id,
      contactId: fc.contact.person.id,
      code: fc.relation,
      priority,
      pr,
      livesWith: fc.livesWith,
      courtOrder: fc.courtOrder,
      correspondence,
      viaApplicant,
      start,
      end,
    };
  }

  // ---------------------------------------------------------------- medical and the rest

  private buildConditions(): void {
    const rng = this.rng.fork('medical');
    const total = MEDICAL.reduce((s, m) => s + m[1], 0);
    for (const p of this.pupils) {
      if (!rng.chance(total / 100)) continue;
      const count = rng.chance(0.2) ? 2 : 1;
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) {
        const [type, , description, medication] = rng.weighted(MEDICAL.map((m) => [m, m[1]] as const));
        if (seen.has(type)) continue;
        seen.add(type);
        this.conditions.push({
          id: this.ids.next('condition'),
          personId: p.person.id,
          type,
          description: rng.chance(0.8) ? description : null,
          medication: rng.chance(0.85) ? medication : null,
          start: rng.chance(0.6) && p.person.dob ? addDays(p.person.dob, rng.int(300, 3000)) : null,
        });
      }
    }
  }

  private finishPupils(): void {
    for (const p of this.pupils) {
      if (weekday(p.admission) >= 5) throw new Error(`admission on a weekend: ${p.admission}`);
    }
  }
}

function laterDate(a: string, b: string): string {
  return a > b ? a : b;
}

/** The NC year of a pupil in a given academic year index. */
export function ncYearOf(p: PupilRec, yearIndex: number): number {
  return p.baseNc + yearIndex;
}

export function ncYearLabel(nc: number): string {
  return nc === 0 ? 'Reception' : `Year ${nc}`;
}
