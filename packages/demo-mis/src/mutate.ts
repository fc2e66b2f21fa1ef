/**
 * One realistic school day of change, applied to an existing demo MIS: new session marks
 * for the day, late corrections of earlier marks, a leaver, a new pupil with contacts, a
 * changed phone number, a removed contact link (recorded in sys_deletion) and a class
 * change. Every changed row gets a new rowversion above the database's current maximum.
 *
 * Deterministic for (seed, day): the choices depend only on the database's contents (read
 * in key order) and a PRNG seeded from the seed stored in demo_meta and the day number.
 */
import { academicYear, addDays, NO_END_DATE, nextWeekday, weekday, ymd } from './calendar.js';
import { type DbRow, type MisConnection, openMis } from './connection.js';
import { AM_SESSION_START, PM_SESSION_START } from './curriculum.js';
import { DemoMisError } from './errors.js';
import type { Row, Value } from './generator.js';
import {
  ADULT_FEMALE_NAMES,
  ADULT_MALE_NAMES,
  BOY_NAMES,
  COUNTY,
  EMAIL_DOMAINS,
  GIRL_NAMES,
  POSTCODE_DISTRICTS,
  POSTCODE_LETTERS,
  STREETS,
  SURNAMES,
  TOWN,
} from './names.js';
import { FINAL_ACADEMIC_YEAR } from './presets.js';
import { Rng } from './prng.js';
import { TABLES, tableDef } from './tables.js';
import { slug } from './text.js';
import { isValidUln, makeUpn, ulnCheckDigit } from './upn.js';
import { mobileNumber } from './world.js';

export interface TableChange {
  inserted: string[];
  updated: string[];
  deleted: string[];
}

export interface MutationReport {
  /** Day number after the generated "today" (1 = the next school day). */
  readonly day: number;
  readonly date: string;
  readonly target: string;
  /** The highest rowversion before; every changed row now has a higher one. */
  readonly rowversionBefore: number;
  readonly rowversionAfter: number;
  /** Primary keys (as strings) inserted, updated and deleted, per table that changed. */
  readonly changes: Readonly<Record<string, TableChange>>;
  /** One line per event, for people. */
  readonly summary: readonly string[];
}

export interface MutateOptions {
  /** Day after the generated "today"; default: the day after the last one applied. */
  readonly day?: number;
}

/** Applies one day of change to the demo MIS at `target` (SQLite path, postgres:// or mysql:// URL). */
export async function mutate(target: string, options: MutateOptions = {}): Promise<MutationReport> {
  const conn = await openMis(target);
  try {
    return await mutateConnection(conn, options);
  } finally {
    await conn.close();
  }
}

/** The `day`-th school day after `today`: the rest of the calendar's term, then weekdays. */
export function mutationDate(today: string, day: number): string {
  const days = academicYear(0, FINAL_ACADEMIC_YEAR, false).days;
  let idx = days.indexOf(today);
  let date = today;
  for (let n = 0; n < day; n++) {
    if (idx >= 0 && idx + 1 < days.length) {
      idx++;
      date = days[idx]!;
    } else {
      idx = -1;
      date = nextWeekday(date);
    }
  }
  return date;
}

/** The school day before `date` (same calendar as mutationDate). */
function previousSchoolDay(date: string): string {
  return schoolDaysBefore(date, 1);
}

function schoolDaysBefore(date: string, count: number): string {
  const days = academicYear(0, FINAL_ACADEMIC_YEAR, false).days;
  const idx = days.indexOf(date);
  if (idx >= count) return days[idx - count]!;
  let d = date;
  for (let i = 0; i < count; i++) {
    d = addDays(d, -1);
    while (weekday(d) >= 5) d = addDays(d, -1);
  }
  return d;
}

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);

class Mutation {
  private rv = 0;
  private rvBefore = 0;
  private readonly changes: Record<string, TableChange> = {};
  private readonly summary: string[] = [];
  private readonly maxIds = new Map<string, number>();

  constructor(
    private readonly db: MisConnection,
    private readonly rng: Rng,
    private readonly today: string,
    private readonly date: string,
    private readonly day: number,
  ) {}

  private t(name: string): string {
    return this.db.table(name);
  }

  private record(table: string, kind: keyof TableChange, key: Value): void {
    let c = this.changes[table];
    if (!c) {
      c = { inserted: [], updated: [], deleted: [] };
      this.changes[table] = c;
    }
    c[kind].push(String(key));
  }

  private nextRv(): number {
    return ++this.rv;
  }

  private async nextId(table: string): Promise<number> {
    let id = this.maxIds.get(table);
    if (id === undefined) {
      const pk = tableDef(table).primaryKey;
      const rows = await this.db.all(`SELECT MAX(${pk}) AS m FROM ${this.t(table)}`);
      id = num(rows[0]?.m ?? 0);
    }
    id++;
    this.maxIds.set(table, id);
    return id;
  }

  private async insert(table: string, values: Record<string, Value>): Promise<void> {
    const def = tableDef(table);
    const row: Row = def.columns.map((c) =>
      c.name === 'rowversion' ? this.nextRv() : (values[c.name] ?? null),
    );
    await this.db.insert(def, [row]);
    this.record(table, 'inserted', values[def.primaryKey] ?? null);
  }

  private async update(table: string, key: Value, set: Record<string, Value>): Promise<void> {
    const def = tableDef(table);
    const cols = Object.keys(set);
    await this.db.run(
      `UPDATE ${this.t(table)} SET ${cols.map((c) => `${c} = ?`).join(', ')}, rowversion = ? WHERE ${def.primaryKey} = ?`,
      [...cols.map((c) => set[c]!), this.nextRv(), key],
    );
    this.record(table, 'updated', key);
  }

  async run(): Promise<MutationReport> {
    let max = 0;
    const parts = TABLES.map((t) => `SELECT MAX(rowversion) AS m FROM ${this.t(t.name)}`);
    for (const row of await this.db.all(parts.join(' UNION ALL '))) max = Math.max(max, num(row.m ?? 0));
    this.rv = max;
    this.rvBefore = max;
    const D = this.date;

    const onRoll = await this.onRoll();
    if (onRoll.length < 4)
      throw new DemoMisError('demo_mis.not_demo_database', 'too few pupils on roll to mutate');

    // Choose everything from the existing data first, then write.
    const leaver = this.pickLeaver(onRoll);
    const classChange = await this.pickClassChange(onRoll, leaver);
    const phone = await this.pickPhone();
    const link = await this.pickLink(onRoll, leaver);

    await this.applyLeaver(leaver);
    if (classChange) await this.applyClassChange(classChange);
    await this.applyPhone(phone);
    await this.applyLinkRemoval(link);
    const joiner = await this.addPupil(onRoll, leaver);
    await this.addMarks([...onRoll, joiner]);
    await this.correctMarks(onRoll.length);

    this.summary.unshift(
      `date ${D} (day ${this.day} after ${this.today}); rowversion ${this.rvBefore + 1}–${this.rv}`,
    );
    return {
      day: this.day,
      date: D,
      target: this.db.display,
      rowversionBefore: this.rvBefore,
      rowversionAfter: this.rv,
      changes: this.changes,
      summary: this.summary,
    };
  }

  private async onRoll(): Promise<OnRoll[]> {
    const rows = await this.db.all(
      `SELECT h.history_id, h.person_id, h.enrol_status, s.current_ncyear, s.current_reg
         FROM ${this.t('stud_school_history')} h JOIN ${this.t('stud_student')} s ON s.person_id = h.person_id
        WHERE h.start_date <= ? AND (h.end_date IS NULL OR h.end_date >= ?)
        ORDER BY h.person_id`,
      [this.date, this.date],
    );
    return rows.map((r) => ({
      historyId: num(r.history_id),
      personId: num(r.person_id),
      enrol: str(r.enrol_status),
      nc: num(r.current_ncyear),
      reg: r.current_reg === null ? null : str(r.current_reg),
    }));
  }

  private pickLeaver(onRoll: OnRoll[]): OnRoll {
    const exam = new Set([6, 11, 13]);
    const pool = onRoll.filter((p) => p.enrol === 'C' && !exam.has(p.nc));
    return this.rng.pick(pool.length > 0 ? pool : onRoll);
  }

  private async applyLeaver(p: OnRoll): Promise<void> {
    const D = this.date;
    const reason = this.rng.pick([
      'Moved out of area',
      'Transferred to another school',
      'Elective home education',
    ]);
    await this.update('stud_school_history', p.historyId, { end_date: D, leaving_reason: reason });
    const members = await this.db.all(
      `SELECT member_id FROM ${this.t('sims_member')} WHERE person_id = ? AND end_date >= ? ORDER BY member_id`,
      [p.personId, D],
    );
    for (const m of members) await this.update('sims_member', num(m.member_id), { end_date: D });
    this.summary.push(
      `leaver: pupil ${p.personId} (NC year ${p.nc}) leaves on ${D} (${reason}); ${members.length} memberships end`,
    );
  }

  private async pickClassChange(onRoll: OnRoll[], leaver: OnRoll): Promise<ClassChange | null> {
    const D = this.date;
    const current = new Set(
      onRoll.filter((p) => p.enrol === 'C' && p.personId !== leaver.personId).map((p) => p.personId),
    );
    const classes = await this.db.all(
      `SELECT base_group_id, subject_code_id, nc_year, academic_year FROM ${this.t('curr_class')} ORDER BY base_group_id`,
    );
    const lessons = await this.db.all(
      `SELECT base_group_id, period_id FROM ${this.t('tt_lesson')} ORDER BY base_group_id, period_id`,
    );
    const periods = new Map<number, number[]>();
    for (const l of lessons) {
      const id = num(l.base_group_id);
      const list = periods.get(id) ?? [];
      list.push(num(l.period_id));
      periods.set(id, list);
    }
    // Same subject, year group and academic year, taught in the same periods: a real swap.
    const key = (c: DbRow) =>
      `${num(c.subject_code_id)}|${num(c.nc_year)}|${str(c.academic_year)}|${(periods.get(num(c.base_group_id)) ?? []).join(',')}`;
    const siblings = new Map<string, number[]>();
    const keyOf = new Map<number, string>();
    for (const c of classes) {
      const k = key(c);
      keyOf.set(num(c.base_group_id), k);
      siblings.set(k, [...(siblings.get(k) ?? []), num(c.base_group_id)]);
    }
    const members = await this.db.all(
      `SELECT m.member_id, m.base_group_id, m.person_id, m.start_date, m.end_date
         FROM ${this.t('sims_member')} m JOIN ${this.t('curr_class')} c ON c.base_group_id = m.base_group_id
        WHERE m.start_date < ? AND m.end_date >= ?
        ORDER BY m.member_id`,
      [D, D],
    );
    const pool = members.filter((m) => {
      if (!current.has(num(m.person_id))) return false;
      const k = keyOf.get(num(m.base_group_id));
      return k !== undefined && (siblings.get(k)?.length ?? 0) > 1;
    });
    if (pool.length === 0) return null;
    const m = this.rng.pick(pool);
    const from = num(m.base_group_id);
    const options = siblings.get(keyOf.get(from)!)!.filter((id) => id !== from);
    const to = this.rng.pick(options);
    const codes = await this.db.all(
      `SELECT base_group_id, code FROM ${this.t('sims_base_group')} WHERE base_group_id IN (?, ?) ORDER BY base_group_id`,
      [from, to],
    );
    const code = (id: number) => str(codes.find((c) => num(c.base_group_id) === id)?.code ?? id);
    return {
      memberId: num(m.member_id),
      personId: num(m.person_id),
      from,
      to,
      end: str(m.end_date),
      fromCode: code(from),
      toCode: code(to),
    };
  }

  private async applyClassChange(c: ClassChange): Promise<void> {
    await this.update('sims_member', c.memberId, { end_date: addDays(this.date, -1) });
    const id = await this.nextId('sims_member');
    await this.insert('sims_member', {
      member_id: id,
      base_group_id: c.to,
      person_id: c.personId,
      start_date: this.date,
      end_date: c.end,
    });
    this.summary.push(`class change: pupil ${c.personId} moves from ${c.fromCode} to ${c.toCode}`);
  }

  private async pickPhone(): Promise<{ id: number; personId: number; old: string }> {
    const rows = await this.db.all(
      `SELECT t.telephone_id, t.person_id, t.telephone_number FROM ${this.t('sims_telephone')} t
         JOIN ${this.t('stud_contact')} c ON c.person_id = t.person_id
        WHERE t.device = 'Mobile' ORDER BY t.telephone_id`,
    );
    if (rows.length === 0)
      throw new DemoMisError('demo_mis.not_demo_database', 'no contact telephone numbers to change');
    const r = this.rng.pick(rows);
    return { id: num(r.telephone_id), personId: num(r.person_id), old: str(r.telephone_number) };
  }

  private async applyPhone(p: { id: number; personId: number; old: string }): Promise<void> {
    let number = mobileNumber(this.rng);
    while (number === p.old) number = mobileNumber(this.rng);
    await this.update('sims_telephone', p.id, { telephone_number: number });
    this.summary.push(`phone changed: telephone ${p.id} of contact ${p.personId} is now ${number}`);
  }

  private async pickLink(
    onRoll: OnRoll[],
    leaver: OnRoll,
  ): Promise<{ id: number; student: number; contact: number }> {
    const current = new Set(onRoll.map((p) => p.personId));
    current.delete(leaver.personId);
    const rows = await this.db.all(
      `SELECT relation_id, student_id, contact_id FROM ${this.t('stud_relation')}
        WHERE via_applicant = 0 AND priority >= 2 AND end_date = ? ORDER BY relation_id`,
      [NO_END_DATE],
    );
    const pool = rows.filter((r) => current.has(num(r.student_id)));
    const r = this.rng.pick(pool.length > 0 ? pool : rows);
    return { id: num(r.relation_id), student: num(r.student_id), contact: num(r.contact_id) };
  }

  private async applyLinkRemoval(link: { id: number; student: number; contact: number }): Promise<void> {
    await this.db.run(`DELETE FROM ${this.t('stud_relation')} WHERE relation_id = ?`, [link.id]);
    this.record('stud_relation', 'deleted', link.id);
    const id = await this.nextId('sys_deletion');
    await this.insert('sys_deletion', {
      deletion_id: id,
      entity: 'stud_relation',
      entity_key: String(link.id),
      deleted_at: `${this.date} 11:${String(this.rng.int(0, 59)).padStart(2, '0')}:00`,
    });
    this.summary.push(
      `contact link removed: stud_relation ${link.id} (pupil ${link.student}, contact ${link.contact})`,
    );
  }

  private async addPupil(onRoll: OnRoll[], leaver: OnRoll): Promise<OnRoll> {
    const rng = this.rng;
    const D = this.date;
    // Placed alongside a buddy in the same year group: same registration group and classes.
    const exam = new Set([6, 11, 13]);
    const buddies = onRoll.filter(
      (p) => p.enrol === 'C' && p.personId !== leaver.personId && !exam.has(p.nc),
    );
    const buddy = rng.pick(buddies.length > 0 ? buddies : onRoll);
    const memberships = await this.db.all(
      `SELECT m.base_group_id, m.end_date, g.group_type_id, g.code FROM ${this.t('sims_member')} m
         JOIN ${this.t('sims_base_group')} g ON g.base_group_id = m.base_group_id
        WHERE m.person_id = ? AND m.start_date <= ? AND m.end_date >= ? ORDER BY m.member_id`,
      [buddy.personId, D, D],
    );
    const houses = await this.db.all(
      `SELECT base_group_id, code FROM ${this.t('sims_base_group')} WHERE group_type_id = 4 ORDER BY base_group_id`,
    );
    const house = rng.pick(houses);

    const gender: 'M' | 'F' = rng.chance(0.5) ? 'M' : 'F';
    const surname = rng.pick(SURNAMES);
    const forename = rng.pick(gender === 'F' ? GIRL_NAMES : BOY_NAMES);
    const personId = await this.nextId('sims_person');
    const birthYear = FINAL_ACADEMIC_YEAR - buddy.nc - 5;
    await this.insert('sims_person', {
      person_id: personId,
      surname,
      forename,
      midname: rng.chance(0.5) ? rng.pick(gender === 'F' ? GIRL_NAMES : BOY_NAMES) : null,
      legal_surname: surname,
      legal_forename: forename,
      chosen_forename: null,
      gender,
      dob: addDays(ymd(birthYear, 9, 1), rng.int(0, 364)),
      title: null,
      salutation: null,
      external_id: rng.uuid(),
    });
    let upn = '';
    for (;;) {
      upn = makeUpn('873', String(rng.int(2000, 3999)), FINAL_ACADEMIC_YEAR - buddy.nc, rng.int(0, 999));
      const dup = await this.db.all(
        `SELECT person_id FROM ${this.t('stud_student')} WHERE unique_pupil_no = ?`,
        [upn],
      );
      if (dup.length === 0) break;
    }
    const reg = memberships.find((m) => num(m.group_type_id) === 2);
    await this.insert('stud_student', {
      person_id: personId,
      unique_pupil_no: upn,
      former_upn: null,
      current_year: buddy.nc === 0 ? 'Reception' : `Year ${buddy.nc}`,
      current_ncyear: buddy.nc,
      current_reg: reg ? str(reg.code) : buddy.reg,
      current_house: str(house.code),
      ethnicity_code: rng.pick(['WBRI', 'WBRI', 'WOTH', 'APKN', 'BAFR', 'MWBC']),
      first_language: 'ENG',
      eal: 0,
      fsm_eligible: rng.chance(0.25) ? 1 : 0,
      ever6_fsm: 0,
      pupil_premium: 0,
      in_care: 0,
      service_child: 0,
      sen_provision: 'N',
      photo_consent: 1,
      dietary_need: null,
    });
    if (buddy.nc >= 10) {
      for (;;) {
        const nine = `${rng.int(1, 9)}${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;
        const check = ulnCheckDigit(nine);
        if (check === null) continue;
        const uln = `${nine}${check}`;
        const dup = await this.db.all(
          `SELECT person_id FROM ${this.t('sims_person_unique_learner_number')} WHERE uln = ?`,
          [uln],
        );
        if (dup.length > 0 || !isValidUln(uln)) continue;
        await this.insert('sims_person_unique_learner_number', { person_id: personId, uln });
        break;
      }
    }
    const adm = await this.db.all(`SELECT MAX(admission_number) AS m FROM ${this.t('stud_school_history')}`);
    const historyId = await this.nextId('stud_school_history');
    await this.insert('stud_school_history', {
      history_id: historyId,
      person_id: personId,
      admission_number: String(num(adm[0]?.m ?? 0) + 1).padStart(6, '0'),
      start_date: D,
      end_date: null,
      enrol_status: 'C',
      leaving_reason: null,
      dual_school_id: null,
    });
    for (const m of memberships) {
      if (num(m.group_type_id) === 4) continue;
      await this.insert('sims_member', {
        member_id: await this.nextId('sims_member'),
        base_group_id: num(m.base_group_id),
        person_id: personId,
        start_date: D,
        end_date: str(m.end_date),
      });
    }
    await this.insert('sims_member', {
      member_id: await this.nextId('sims_member'),
      base_group_id: num(house.base_group_id),
      person_id: personId,
      start_date: D,
      end_date: NO_END_DATE,
    });

    // A new family: an address and one or two parents with phones and emails.
    const addressId = await this.nextId('sims_address');
    await this.insert('sims_address', {
      address_id: addressId,
      house_name: null,
      house_number: String(rng.int(1, 150)),
      street: rng.pick(STREETS),
      locality: null,
      town: TOWN,
      county: COUNTY,
      postcode: `${rng.pick(POSTCODE_DISTRICTS)} ${rng.int(1, 9)}${rng.pick([...POSTCODE_LETTERS])}${rng.pick([...POSTCODE_LETTERS])}`,
    });
    const linkAddress = async (person: number) =>
      this.insert('sims_address_link', {
        address_link_id: await this.nextId('sims_address_link'),
        address_id: addressId,
        person_id: person,
        address_type: 'Home',
        start_date: D,
        end_date: NO_END_DATE,
      });
    await linkAddress(personId);
    const parents: ['F' | 'M', string][] = rng.chance(0.7)
      ? [
          ['F', 'MOT'],
          ['M', 'FAT'],
        ]
      : [['F', 'MOT']];
    let priority = 0;
    for (const [g, code] of parents) {
      priority++;
      const contactId = await this.nextId('sims_person');
      const name = rng.pick(g === 'F' ? ADULT_FEMALE_NAMES : ADULT_MALE_NAMES);
      const title = g === 'F' ? rng.pick(['Mrs', 'Ms', 'Miss']) : 'Mr';
      await this.insert('sims_person', {
        person_id: contactId,
        surname,
        forename: name,
        midname: null,
        legal_surname: surname,
        legal_forename: name,
        chosen_forename: null,
        gender: g,
        dob: null,
        title,
        salutation: `${title} ${surname}`,
        external_id: rng.uuid(),
      });
      await this.insert('stud_contact', { person_id: contactId, occupation: null, first_language: null });
      await linkAddress(contactId);
      await this.insert('sims_telephone', {
        telephone_id: await this.nextId('sims_telephone'),
        person_id: contactId,
        device: 'Mobile',
        telephone_number: mobileNumber(rng),
        is_main: 1,
      });
      await this.insert('sims_email', {
        email_id: await this.nextId('sims_email'),
        person_id: contactId,
        email_location: 'Home',
        email_address: `${slug(name)}.${slug(surname)}@${rng.pick(EMAIL_DOMAINS)}`,
        is_main: 1,
      });
      await this.insert('stud_relation', {
        relation_id: await this.nextId('stud_relation'),
        student_id: personId,
        contact_id: contactId,
        relation_code: code,
        priority,
        parental_responsibility: 1,
        lives_with: 1,
        court_order: 0,
        correspondence: 1,
        via_applicant: 0,
        start_date: D,
        end_date: NO_END_DATE,
      });
    }
    this.summary.push(
      `joiner: pupil ${personId} (UPN ${upn}, NC year ${buddy.nc}${reg ? `, reg ${str(reg.code)}` : ''}) with ${parents.length} contact(s)`,
    );
    return { historyId, personId, enrol: 'C', nc: buddy.nc, reg: reg ? str(reg.code) : null };
  }

  private async addMarks(pupils: OnRoll[]): Promise<void> {
    const rng = this.rng;
    const D = this.date;
    const wd = weekday(D);
    const prev = previousSchoolDay(D);
    const prevMarks = await this.db.all(
      `SELECT person_id, mark FROM ${this.t('att_mark_normalised')} WHERE session_start = ? ORDER BY mark_id`,
      [`${prev} ${PM_SESSION_START}`],
    );
    const ill = new Set(prevMarks.filter((m) => m.mark === 'I').map((m) => num(m.person_id)));
    const y10Work = D >= ymd(FINAL_ACADEMIC_YEAR + 1, 7, 7) && D <= ymd(FINAL_ACADEMIC_YEAR + 1, 7, 11);
    const ordered = [...pupils].sort((a, b) => a.personId - b.personId);
    const def = tableDef('att_mark_normalised');
    const rows: Row[] = [];
    let firstId = 0;
    for (const session of ['AM', 'PM'] as const) {
      const start = `${D} ${session === 'AM' ? AM_SESSION_START : PM_SESSION_START}`;
      for (const p of ordered) {
        let mark: string;
        let late: number | null = null;
        if (p.enrol === 'M' && (wd === 2 || wd === 3)) mark = 'D';
        else if (p.enrol === 'S' && wd >= 2) mark = 'D';
        else if (p.nc === 13) mark = 'X';
        else if (p.nc === 10 && y10Work && p.personId % 10 !== 3) mark = 'W';
        else if (ill.has(p.personId) && rng.chance(0.5)) mark = session === 'AM' ? 'N' : 'I';
        else {
          const r = rng.next();
          if (r < 0.035) mark = 'N';
          else if (r < 0.045) mark = 'I';
          else if (r < 0.05) mark = 'M';
          else if (p.nc === 12 && r < 0.09) mark = 'X';
          else if (session === 'AM' && r < 0.07) {
            mark = 'L';
            late = rng.int(1, 25);
          } else mark = session === 'AM' ? '/' : '\\';
        }
        const id = await this.nextId('att_mark_normalised');
        if (!firstId) firstId = id;
        const mins = session === 'AM' ? 47 + (p.personId % 12) * 2 : 12 + (p.personId % 12) * 2;
        const hour = session === 'AM' ? 8 + Math.floor(mins / 60) : 13 + Math.floor(mins / 60);
        const updated = `${D} ${String(hour).padStart(2, '0')}:${String(mins % 60).padStart(2, '0')}:00`;
        rows.push([id, p.personId, start, session, mark, late, updated, this.nextRv()]);
        this.record('att_mark_normalised', 'inserted', id);
      }
    }
    await this.db.insert(def, rows);
    this.summary.push(
      `marks: ${rows.length} new session marks for ${D} (mark_id ${firstId}–${firstId + rows.length - 1})`,
    );
  }

  private async correctMarks(rollSize: number): Promise<void> {
    const rng = this.rng;
    const from = `${schoolDaysBefore(this.date, 7)} 00:00:00`;
    const to = `${this.date} 00:00:00`;
    const want = Math.max(2, Math.round(rollSize * 0.004));
    const unexplained = await this.db.all(
      `SELECT mark_id, person_id, session_start FROM ${this.t('att_mark_normalised')}
        WHERE session_start >= ? AND session_start < ? AND mark = 'N' ORDER BY mark_id`,
      [from, to],
    );
    const chosen: DbRow[] = [];
    const pool = [...unexplained];
    while (chosen.length < want && pool.length > 0)
      chosen.push(pool.splice(rng.int(0, pool.length - 1), 1)[0]!);
    const updated = `${this.date} 10:${String(rng.int(0, 59)).padStart(2, '0')}:00`;
    for (const m of chosen) {
      const mark = rng.weighted([
        ['I', 6],
        ['M', 1.5],
        ['O', 2],
        ['C', 0.5],
      ] as const);
      await this.update('att_mark_normalised', num(m.mark_id), { mark, last_updated: updated });
      this.summary.push(
        `correction: mark ${num(m.mark_id)} (pupil ${num(m.person_id)}, ${str(m.session_start)}) N → ${mark}`,
      );
    }
    if (chosen.length === 0) {
      // No unexplained absences this week: a late arrival recorded after the register instead.
      const present = await this.db.all(
        `SELECT mark_id, person_id, session_start FROM ${this.t('att_mark_normalised')}
          WHERE session_start >= ? AND session_start < ? AND mark = '/' ORDER BY mark_id`,
        [from, to],
      );
      const m = rng.pick(present);
      const minutes = rng.int(3, 20);
      await this.update('att_mark_normalised', num(m.mark_id), {
        mark: 'L',
        minutes_late: minutes,
        last_updated: updated,
      });
      this.summary.push(
        `correction: mark ${num(m.mark_id)} (pupil ${num(m.person_id)}, ${str(m.session_start)}) / → L (${minutes} min)`,
      );
    }
  }
}

interface OnRoll {
  historyId: number;
  personId: number;
  enrol: string;
  nc: number;
  reg: string | null;
}

interface ClassChange {
  memberId: number;
  personId: number;
  from: number;
  to: number;
  end: string;
  fromCode: string;
  toCode: string;
}

/** Applies one day of change through an open connection (one transaction). */
export async function mutateConnection(
  db: MisConnection,
  options: MutateOptions = {},
): Promise<MutationReport> {
  let meta: DbRow | undefined;
  try {
    meta = (await db.all(`SELECT preset, seed, today FROM ${db.table('demo_meta')} ORDER BY meta_id`))[0];
  } catch (err) {
    throw new DemoMisError(
      'demo_mis.not_demo_database',
      `${db.display} is not a demo MIS database (no demo_meta table)`,
      {
        cause: err,
      },
    );
  }
  if (!meta)
    throw new DemoMisError(
      'demo_mis.not_demo_database',
      `${db.display} is not a demo MIS database (empty demo_meta)`,
    );
  const seed = num(meta.seed);
  const today = str(meta.today).slice(0, 10);

  let day = options.day;
  const latest = await db.all(`SELECT MAX(session_start) AS m FROM ${db.table('att_mark_normalised')}`);
  const latestDate = latest[0]?.m ? str(latest[0].m).slice(0, 10) : today;
  if (day === undefined) {
    day = 1;
    while (mutationDate(today, day) <= latestDate) day++;
  }
  if (!Number.isInteger(day) || day < 1)
    throw new DemoMisError('demo_mis.bad_option', `--day must be a whole number ≥ 1, got ${day}`);
  const date = mutationDate(today, day);
  const existing = await db.all(
    `SELECT mark_id FROM ${db.table('att_mark_normalised')} WHERE session_start >= ? AND session_start <= ? ORDER BY mark_id LIMIT 1`,
    [`${date} 00:00:00`, `${date} 23:59:59`],
  );
  if (existing.length > 0) {
    throw new DemoMisError(
      'demo_mis.day_applied',
      `day ${day} (${date}) is already applied to ${db.display}`,
    );
  }
  const mutation = new Mutation(db, new Rng(`keystage-demo-mis:mutate:${seed}:${day}`), today, date, day);
  await db.begin();
  try {
    const report = await mutation.run();
    await db.commit();
    return report;
  } catch (err) {
    await db.rollback().catch(() => {});
    throw err;
  }
}
