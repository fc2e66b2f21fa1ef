// Synthetic attendance marks for the delta benchmark, generated on the fly (no table in memory).
//
// Base run: PUPILS pupils × DAYS school days × 2 sessions, in key order (pupil_id, date, session).
// Next run: 1% of the rows changed, 0.1% deleted, 0.1% inserted (5 new pupils' marks, 1,000 rows at
// 1M), all chosen by a hash of the row number, so every process generates the same rows.

export const COLUMNS = ['pupil_id', 'date', 'session', 'code', 'minutes_late', 'comment'];
export const KEY_COLUMNS = ['pupil_id', 'date', 'session'];
const SESSIONS = ['AM', 'PM'];
const CODES = ['/', '/', '/', '/', '/', '/', '/', '/', 'L', 'I', 'M', 'C', 'N', 'U', 'B', 'E'];
const COMMENTS = ['Dentist appointment', 'Arrived with parent', 'Bus late', 'Called office', 'Family event'];
const ROWS_PER_PUPIL_DAY = 2;

/** Integer hash (murmur3 finaliser) of i and a salt, as an unsigned 32-bit number. */
export function mix(i, salt) {
  let h = Math.imul(i ^ salt, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function schoolDays(n) {
  const days = [];
  const d = new Date(Date.UTC(2025, 8, 1));
  while (days.length < n) {
    const wd = d.getUTCDay();
    if (wd !== 0 && wd !== 6) days.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return days;
}

/**
 * The dataset shape for `rows` base rows (rounded to whole pupils of `days` × 2 sessions).
 * Inserted rows belong to `newPupils` pupils with ids between existing ones.
 */
export function shape(rows, days = 100) {
  const perPupil = days * ROWS_PER_PUPIL_DAY;
  const pupils = Math.max(1, Math.round(rows / perPupil));
  const inserts = Math.round((pupils * perPupil) / 1000);
  const newPupils = Math.max(1, Math.round(inserts / perPupil));
  const step = Math.floor(pupils / newPupils);
  const insertAfter = new Set();
  for (let j = 0; j < newPupils; j++) insertAfter.add(Math.floor(step / 2) + j * step);
  return {
    pupils,
    days,
    perPupil,
    baseRows: pupils * perPupil,
    newPupils,
    insertAfter,
    dates: schoolDays(days),
  };
}

function pupilId(p) {
  return 100_000 + p * 10;
}

/** Base row i. */
export function baseRow(s, i) {
  const p = Math.floor(i / s.perPupil);
  const r = i - p * s.perPupil;
  const h = mix(i, 0x5eed);
  const code = CODES[h & 15];
  return [
    pupilId(p),
    s.dates[r >> 1],
    SESSIONS[r & 1],
    code,
    code === 'L' ? 5 + ((h >>> 4) % 40) : null,
    (h >>> 10) % 50 === 0 ? COMMENTS[(h >>> 16) % COMMENTS.length] : null,
  ];
}

/** 'delete' | 'change' | undefined for base row i in the next run. */
export function fate(i) {
  const h = mix(i, 0xc0ffee);
  if (h % 1000 === 0) return 'delete';
  if (h % 100 === 1) return 'change';
  return undefined;
}

/** Base row i as it is in the next run (a change alters the mark, the lateness or the comment). */
export function changedRow(s, i) {
  const row = baseRow(s, i);
  const h = mix(i, 0xbadd);
  switch (h % 3) {
    case 0:
      row[3] = row[3] === 'L' ? '/' : 'L';
      row[4] = row[3] === 'L' ? 10 : null;
      break;
    case 1:
      row[4] = row[4] === null ? 0 : row[4] + 1;
      break;
    default:
      row[5] = row[5] === null ? 'Updated by office' : null;
  }
  return row;
}

/** Inserted row j (0 ≤ j < newPupils × perPupil): a new pupil placed after base pupil `after`. */
export function insertedRow(s, after, r) {
  return [pupilId(after) + 5, s.dates[r >> 1], SESSIONS[r & 1], '/', null, null];
}

/** Calls `emit(row)` for every row of the base run, in key order. */
export function forEachBaseRow(s, emit) {
  for (let i = 0; i < s.baseRows; i++) emit(baseRow(s, i));
}

/** Calls `emit(row)` for every row of the next run, in key order. */
export function forEachNextRow(s, emit) {
  let i = 0;
  for (let p = 0; p < s.pupils; p++) {
    for (let r = 0; r < s.perPupil; r++, i++) {
      const f = fate(i);
      if (f === undefined) emit(baseRow(s, i));
      else if (f === 'change') emit(changedRow(s, i));
    }
    if (s.insertAfter.has(p)) for (let r = 0; r < s.perPupil; r++) emit(insertedRow(s, p, r));
  }
}

/**
 * The rows of the next run as descriptors in a seeded random order (Fisher–Yates): a base row number,
 * or baseRows + (pupil << 16 | r) for an inserted row. 4 bytes per row.
 */
export function shuffledNextRun(s, seed = 42) {
  let n = 0;
  forEachNextRowDescriptor(s, () => n++);
  const order = new Uint32Array(n);
  n = 0;
  forEachNextRowDescriptor(s, (d) => {
    order[n++] = d;
  });
  let x = seed >>> 0;
  for (let k = order.length - 1; k > 0; k--) {
    x = mix(k, x);
    const j = x % (k + 1);
    const t = order[k];
    order[k] = order[j];
    order[j] = t;
  }
  return order;
}

function forEachNextRowDescriptor(s, emit) {
  let i = 0;
  for (let p = 0; p < s.pupils; p++) {
    for (let r = 0; r < s.perPupil; r++, i++) if (fate(i) !== 'delete') emit(i);
    if (s.insertAfter.has(p)) for (let r = 0; r < s.perPupil; r++) emit(s.baseRows + p * 65536 + r);
  }
}

/** The next-run row for a descriptor from {@link shuffledNextRun}. */
export function rowOf(s, d) {
  if (d < s.baseRows) return fate(d) === 'change' ? changedRow(s, d) : baseRow(s, d);
  const x = d - s.baseRows;
  return insertedRow(s, Math.floor(x / 65536), x % 65536);
}
