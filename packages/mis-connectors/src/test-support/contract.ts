/**
 * The connector contract: one suite every engine must pass against a real database holding
 * the demo MIS (`tiny`). Rows are compared with a SQLite copy of the same demo MIS read
 * through the SQLite connector (the reference), value for value, so "normalised" means
 * the same JS values on every engine. Nothing is inserted: writes are attempted only to
 * prove the database refuses them. Assertions are on state (errors, rows, server activity,
 * memory), never on elapsed time.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SERVICE_ACCOUNTS, TABLES } from '@keystage/demo-mis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConnector } from '../factory.js';
import { SqliteConnector } from '../sqlite/sqlite.connector.js';
import type { Column, MisConnector, MisKind, QueryParam, Row } from '../types.js';
import { createSqliteDemo, type DemoDatabase } from './databases.js';

export interface DialectSql {
  /** `n` rows of (n, a `width`-character string). */
  series(n: number, width: number): string;
  /** Rows without a practical end, produced lazily by the server: to cancel or time out mid-stream. */
  readonly endless: string;
  /** Runs on the server a long time before its first row; absent when the engine cannot interrupt that (SQLite). */
  readonly slow?: string;
  /** One row: NULL, Zoë, O'Brien, Nguyễn, a date, a datetime, 2^53+1 as BIGINT, a flag, 1.5, ~1.2 MB of text. */
  readonly literals: string;
  /** Driver codes of a write refused by the read-only mode or the login (proof it was the database, not a validator). */
  readonly readOnlyCodes: readonly string[];
}

export interface ContractTarget {
  readonly kind: MisKind;
  readonly sql: DialectSql;
  /** A demo MIS table as the engine's SQL names it (`sims.x`, `` `db`.x ``). */
  table(name: string): string;
  /** A new, unconnected connector to the demo MIS, with misUser `svc_keystage`. */
  make(): MisConnector;
  /** A login the server refuses; absent when the engine has no logins (SQLite). */
  badLogin?(): MisConnector;
  /** A connector to something that does not answer, given a password to look for in the error. */
  unreachable(password: string): MisConnector;
  /** Statements or transactions of this target's connectors still open on the server. */
  activeStatements?(): Promise<number>;
  drop(): Promise<void>;
}

export const LARGE_TEXT_PIECE = "Zoë Nguyễn O'Brien ";
export const LARGE_TEXT_REPEAT = 50_000;

const EXPECTED_LITERALS: Row = [
  null,
  'Zoë',
  "O'Brien",
  'Nguyễn',
  '2024-02-29',
  '2025-07-09 08:30:00',
  '9007199254740993',
  1,
  1.5,
  LARGE_TEXT_PIECE.repeat(LARGE_TEXT_REPEAT),
];

/** Typed parameters of every type, and SQL with `:name` inside a literal and comments that must be left alone. */
const PARAMS: QueryParam[] = [
  { name: 's', type: 'string', value: "Zoë O'Brien :notparam" },
  { name: 'i', type: 'integer', value: 42 },
  { name: 'big', type: 'integer', value: '9007199254740993' },
  { name: 'n', type: 'number', value: 1.5 },
  { name: 'b', type: 'boolean', value: true },
  { name: 'd', type: 'date', value: '2024-02-29' },
  { name: 'dt', type: 'datetime', value: '2025-07-09T08:30:00' },
  { name: 'nothing', type: 'string', value: null },
];
const PARAM_SQL = `SELECT :s AS s, :i AS i, :i + 1 AS i2, :big AS big, :n AS n, CAST(:b AS INTEGER) AS b,
  :d AS d, :dt AS dt, :nothing AS nul, ':notparam' AS lit, 'it''s :x' AS lit2 /* :nope */ -- :nope
`;
const PARAM_EXPECTED: Row = [
  "Zoë O'Brien :notparam",
  42,
  43,
  '9007199254740993',
  1.5,
  1,
  '2024-02-29',
  '2025-07-09 08:30:00',
  null,
  ':notparam',
  "it's :x",
];

async function all(c: MisConnector, sql: string, params: QueryParam[] = []): Promise<Row[]> {
  const s = await c.stream(sql, params);
  const out: Row[] = [];
  for await (const batch of s.batches()) out.push(...batch);
  return out;
}

let gcFn: (() => void) | null = null;
/** A real gc() inside the test worker (vitest gives no --expose-gc). */
export function collectGarbage(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const MB = 1024 * 1024;

export function connectorContract(name: string, makeTarget: () => Promise<ContractTarget>): void {
  describe(`${name} connector contract`, () => {
    let target: ContractTarget;
    let referenceDb: DemoDatabase & { path: string };
    let reference: MisConnector;
    let c: MisConnector;

    beforeAll(async () => {
      [target, referenceDb] = await Promise.all([makeTarget(), createSqliteDemo()]);
      reference = new SqliteConnector({ path: referenceDb.path, misUser: 'svc_keystage' });
      c = target.make();
      await Promise.all([reference.connect(), c.connect()]);
    });

    afterAll(async () => {
      await c?.close();
      await reference?.close();
      await target?.drop();
      await referenceDb?.drop();
    });

    it('reports the server version', async () => {
      expect(await c.serverVersion()).toMatch(
        /^(SQLite|PostgreSQL|MariaDB|MySQL|Microsoft SQL Server) \d+\.\d+/,
      );
    });

    it('returns every demo MIS table with the same rows and column types as the SQLite reference', async () => {
      let compared = 0;
      for (const t of TABLES) {
        const cols = t.columns.map((col) => col.name).join(', ');
        const sqlFor = (table: string) => `SELECT ${cols} FROM ${table} ORDER BY ${t.primaryKey}`;
        const mine = await c.stream(sqlFor(target.table(t.name)));
        const rows: Row[] = [];
        for await (const b of mine.batches()) rows.push(...b);
        const expected = await reference.stream(sqlFor(`sims.${t.name}`));
        const expectedRows: Row[] = [];
        for await (const b of expected.batches()) expectedRows.push(...b);
        // A flag is BIT in SQL Server (type boolean) and an integer elsewhere: both carry 0/1.
        const shape = (cols: readonly Column[]) =>
          cols.map((col) => [col.name, col.type === 'boolean' ? 'integer' : col.type]);
        expect(shape(mine.columns), t.name).toEqual(shape(expected.columns));
        expect(rows.length, t.name).toBe(expectedRows.length);
        expect(rows, t.name).toEqual(expectedRows);
        compared += rows.length;
      }
      // tiny holds ≈ 40 k rows; all of them were compared.
      expect(compared).toBeGreaterThan(30_000);
    });

    it('normalises NULL, unicode, dates, datetimes, big integers, flags, floats and large text', async () => {
      const s = await c.stream(target.sql.literals);
      const rows: Row[] = [];
      for await (const row of s) rows.push(row);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toEqual(EXPECTED_LITERALS);
      expect(await all(reference, SQLITE_SQL.literals)).toEqual([EXPECTED_LITERALS]);
    });

    it('binds parameters of every type and leaves :name inside literals and comments alone', async () => {
      expect(await all(c, PARAM_SQL, PARAMS)).toEqual([PARAM_EXPECTED]);
      expect(await all(reference, PARAM_SQL, PARAMS)).toEqual([PARAM_EXPECTED]);
      const filters: QueryParam[] = [
        { name: 'year', type: 'integer', value: 9 },
        { name: 'fsm', type: 'boolean', value: true },
        { name: 'born', type: 'date', value: '2010-01-01' },
      ];
      const pupils = (t: (n: string) => string) =>
        `SELECT s.person_id, p.surname, p.dob FROM ${t('stud_student')} s JOIN ${t('sims_person')} p ON p.person_id = s.person_id
          WHERE s.current_ncyear >= :year AND s.fsm_eligible = :fsm AND p.dob >= :born ORDER BY s.person_id`;
      const mine = await all(c, pupils(target.table), filters);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine).toEqual(
        await all(
          reference,
          pupils((n) => `sims.${n}`),
          filters,
        ),
      );
      const window: QueryParam[] = [
        { name: 'from', type: 'datetime', value: '2025-07-01 00:00:00' },
        { name: 'to', type: 'datetime', value: '2025-07-03 12:00' },
      ];
      const marks = (t: (n: string) => string) =>
        `SELECT mark_id, session_start, mark FROM ${t('att_mark_normalised')}
          WHERE session_start >= :from AND session_start < :to ORDER BY mark_id`;
      const mineMarks = await all(c, marks(target.table), window);
      expect(mineMarks.length).toBeGreaterThan(0);
      expect(mineMarks).toEqual(
        await all(
          reference,
          marks((n) => `sims.${n}`),
          window,
        ),
      );
    });

    it('refuses a missing parameter and a value of the wrong type', async () => {
      await expect(c.stream('SELECT :absent AS a')).rejects.toMatchObject({ code: 'mis.bad_parameter' });
      await expect(
        c.stream('SELECT :d AS d', [{ name: 'd', type: 'date', value: '2024-02-30' }]),
      ).rejects.toMatchObject({ code: 'mis.bad_parameter' });
      expect(await all(c, 'SELECT 1 AS one')).toEqual([[1]]);
    });

    it('streams 100,000 rows with bounded memory while the reader is slow', async () => {
      const s = await c.stream(target.sql.series(100_000, 1000));
      expect(s.columns.map((col) => col.name)).toEqual(['n', 'pad']);
      collectGarbage();
      const before = memoryInUse();
      let n = 0;
      let peak = 0;
      let maxBuffered = 0;
      let sum = 0;
      for await (const row of s) {
        n++;
        sum += Number(row[0]);
        maxBuffered = Math.max(maxBuffered, s.buffered);
        if (n === 1000 || n % 20_000 === 0) {
          // A slow reader: a driver that reads ahead without bound fills memory meanwhile.
          await new Promise((r) => setTimeout(r, n === 1000 ? 300 : 50));
          collectGarbage();
          peak = Math.max(peak, memoryInUse() - before);
        }
      }
      expect(n).toBe(100_000);
      expect(sum).toBe((100_000 * 100_001) / 2);
      expect(s.rowCount).toBe(100_000);
      // All rows buffered would be ≥ 100 MB; a bounded stream holds a few batches (PostgreSQL
      // fetches 2,000 rows at a time, the others 500).
      expect(peak).toBeLessThan(40 * MB);
      expect(maxBuffered).toBeLessThanOrEqual(c.kind === 'postgres' ? 2000 : 1000);
    });

    it('cancels mid-stream: the reader gets mis.cancelled, the server stops, the connection is reused', async () => {
      const s = await c.stream(target.sql.endless);
      let n = 0;
      let error: unknown;
      try {
        for await (const _ of s) {
          n++;
          if (n === 10) await c.cancel();
        }
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'mis.cancelled' });
      expect(n).toBe(10);
      if (target.activeStatements) expect(await target.activeStatements()).toBe(0);
      expect(await all(c, 'SELECT 2 AS two')).toEqual([[2]]);
    });

    it('stops and frees the statement when the reader leaves early', async () => {
      const s = await c.stream(target.sql.endless);
      let n = 0;
      for await (const _ of s) if (++n === 5) break;
      expect(n).toBe(5);
      if (target.activeStatements) expect(await target.activeStatements()).toBe(0);
      expect(await all(c, 'SELECT 3 AS three')).toEqual([[3]]);
    });

    it('cancels through an AbortSignal and refuses a second stream while one runs', async () => {
      const controller = new AbortController();
      const s = await c.stream(target.sql.endless, [], { signal: controller.signal });
      await expect(c.stream('SELECT 1 AS one')).rejects.toMatchObject({ code: 'mis.busy' });
      const it = s[Symbol.asyncIterator]();
      await it.next();
      controller.abort();
      await expect(
        (async () => {
          for (;;) if ((await it.next()).done) return;
        })(),
      ).rejects.toMatchObject({ code: 'mis.cancelled' });
      expect(await all(c, 'SELECT 4 AS four')).toEqual([[4]]);
    });

    it('times out mid-stream with mis.timeout and stays usable', async () => {
      const s = await c.stream(target.sql.endless, [], { timeoutMs: 300 });
      let error: unknown;
      try {
        for await (const _ of s.batches()) {
          // read on
        }
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'mis.timeout' });
      if (target.activeStatements) expect(await target.activeStatements()).toBe(0);
      expect(await all(c, 'SELECT 5 AS five')).toEqual([[5]]);
    });

    it('cancels and times out a statement that has not produced a row yet (skipped for SQLite: better-sqlite3 has no interrupt)', async (ctx) => {
      const slow = target.sql.slow;
      if (!slow) return ctx.skip('this engine cannot interrupt a statement before its first row');
      const running = c.stream(slow);
      running.catch(() => {});
      // Wait until the server runs it (state, not time: poll the server).
      for (let i = 0; i < 200 && target.activeStatements && (await target.activeStatements()) === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await c.cancel();
      await expect(running).rejects.toMatchObject({ code: 'mis.cancelled' });
      if (target.activeStatements) expect(await target.activeStatements()).toBe(0);
      await expect(c.stream(slow, [], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'mis.timeout' });
      if (target.activeStatements) expect(await target.activeStatements()).toBe(0);
      expect(await all(c, 'SELECT 6 AS six')).toEqual([[6]]);
    });

    it('has the database refuse writes (INSERT, UPDATE, DELETE, CREATE TABLE) although no validator ran', async () => {
      const t = target.table;
      const before = await all(c, `SELECT person_id, surname FROM ${t('sims_person')} ORDER BY person_id`);
      const writes = [
        `INSERT INTO ${t('sys_deletion')} (deletion_id, entity, entity_key, deleted_at, rowversion) VALUES (999999, 'x', 'y', '2025-01-01 00:00:00', 1)`,
        `UPDATE ${t('sims_person')} SET surname = 'Changed'`,
        `DELETE FROM ${t('sims_person')}`,
        `CREATE TABLE ${t('ks_should_not_exist')} (a INTEGER)`,
      ];
      for (const sql of writes) {
        const err = await c.stream(sql).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, sql).toMatchObject({ code: 'mis.permission_denied' });
        expect(target.sql.readOnlyCodes, sql).toContain((err as { driverCode?: string }).driverCode);
      }
      expect(await all(c, `SELECT person_id, surname FROM ${t('sims_person')} ORDER BY person_id`)).toEqual(
        before,
      );
      await expect(c.stream(`SELECT * FROM ${t('ks_should_not_exist')}`)).rejects.toMatchObject({
        code: 'mis.query_failed',
      });
      expect(await all(c, `SELECT count(*) FROM ${t('sys_deletion')} WHERE deletion_id = 999999`)).toEqual([
        [0],
      ]);
    });

    it('maps a refused login to mis.auth_failed (skipped for SQLite: it has no logins)', async (ctx) => {
      if (!target.badLogin) return ctx.skip('this engine has no logins');
      const bad = target.badLogin();
      await expect(bad.connect()).rejects.toMatchObject({ code: 'mis.auth_failed' });
      await expect(bad.stream('SELECT 1 AS one')).rejects.toMatchObject({ code: 'mis.auth_failed' });
      await bad.close();
    });

    it('maps an unreachable server to mis.unavailable without the password in the message', async () => {
      const password = 'Sup3r-Secret-Pa55word!';
      const u = target.unreachable(password);
      const err = await u.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'mis.unavailable' });
      expect(String((err as Error).message)).not.toContain(password);
      expect(JSON.stringify(err)).not.toContain(password);
      expect((err as Error).message).not.toMatch(/Zoë|O'Brien/);
      await u.close();
    });

    it('reads the demo MIS permission groups of the account, and the database grants', async () => {
      const p = await c.permissions();
      const svc = SERVICE_ACCOUNTS.find((a) => a.login === 'svc_keystage');
      expect(p.misUser).toBe('svc_keystage');
      expect(p.misUserFound).toBe(true);
      expect(p.misUserEnabled).toBe(true);
      expect(p.groups).toEqual([...(svc?.groups ?? [])].sort());
      expect(p.areas).toEqual(
        expect.arrayContaining(['Attendance', 'Contacts', 'Pupil core details', 'Timetable']),
      );
      expect(p.areas).not.toContain('Staff');
      const person = p.tables.find((g) => g.table === 'sims_person');
      expect(person?.wholeTable).toBe(true);
      // Third Party Reporter grants the ID fields by column.
      expect(person?.columns).toEqual(['external_id', 'person_id']);
      const student = p.tables.find((g) => g.table === 'stud_student');
      expect(student?.wholeTable).toBe(false);
      // Core details from Admissions Officer, sensitive details (FSM) from Administration Assistant.
      expect(student?.columns).toEqual(
        expect.arrayContaining(['unique_pupil_no', 'fsm_eligible', 'person_id']),
      );
      expect(p.tables.find((g) => g.table === 'asm_aspect')).toBeUndefined();
      expect(p.database.readableTables).toEqual(expect.arrayContaining(['stud_student', 'sys_user']));
      expect(p).toEqual(
        await reference
          .permissions()
          .then((r) => ({ ...r, account: p.account, database: p.database, notes: p.notes })),
      );
      const d = await describeConnector(c);
      expect(d.groups).toEqual(p.groups);
      expect(d.serverVersion).toBe(await c.serverVersion());
    });
  });
}

/** SQLite's SQL for the contract (also the reference's). */
export const SQLITE_SQL: DialectSql = {
  series: (n, width) =>
    `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${n})
     SELECT n, substr(replace(hex(zeroblob(${width})), '0', 'x'), 1, ${width}) AS pad FROM s`,
  endless: `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000000000)
     SELECT n, 'some text to carry' AS pad FROM s`,
  literals: `SELECT NULL AS nul, 'Zoë' AS a, 'O''Brien' AS b, 'Nguyễn' AS c, '2024-02-29' AS d,
     '2025-07-09 08:30:00' AS dt, 9007199254740993 AS big, 1 AS flag, 1.5 AS f,
     replace(hex(zeroblob(${LARGE_TEXT_REPEAT})), '00', '${LARGE_TEXT_PIECE.replace(/'/g, "''")}') AS large`,
  readOnlyCodes: ['SQLITE_READONLY'],
};
