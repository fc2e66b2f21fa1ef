import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../factory.js';
import { isPackedBatch, type PackedBatch } from '../packed.js';
import {
  connectorContract,
  type DialectSql,
  LARGE_TEXT_PIECE,
  LARGE_TEXT_REPEAT,
} from '../test-support/contract.js';
import { createPgDemo, type DemoDatabase, PG_SERVER, pgExec, uniqueName } from '../test-support/databases.js';
import { packedView, unpackBatch } from '../test-support/packed-view.js';
import type { MisConnector, PostgresSettings, Row } from '../types.js';
import { mapPgError, pgTarget } from './postgres.connector.js';

const PG_SQL: DialectSql = {
  series: (n, width) => `SELECT n, repeat('x', ${width}) AS pad FROM generate_series(1, ${n}) AS s(n)`,
  // A set-returning function in the select list is produced lazily (in FROM it would be materialised).
  endless: `SELECT generate_series(1, 1000000000) AS n, 'some text to carry' AS pad`,
  slow: 'SELECT pg_sleep(30) AS slept',
  literals: `SELECT NULL AS nul, 'Zoë' AS a, 'O''Brien' AS b, 'Nguyễn' AS c, DATE '2024-02-29' AS d,
    TIMESTAMP '2025-07-09 08:30:00' AS dt, 9007199254740993::int8 AS big, true AS flag, 1.5::float8 AS f,
    repeat('${LARGE_TEXT_PIECE.replace(/'/g, "''")}', ${LARGE_TEXT_REPEAT}) AS large`,
  readOnlyCodes: ['25006'],
};

const server = {
  host: PG_SERVER.hostname,
  port: Number(PG_SERVER.port || 5432),
  user: decodeURIComponent(PG_SERVER.username) || 'postgres',
};
const password = decodeURIComponent(PG_SERVER.password);
/** The connector contract's PostgreSQL target; `view` wraps each connector the contract makes. */
function contractTarget(prefix: string, view: (c: MisConnector) => MisConnector = (c) => c) {
  const applicationName = uniqueName(prefix);
  return async () => {
    const db = await createPgDemo();
    const settings: PostgresSettings = {
      ...server,
      database: db.name,
      applicationName,
      misUser: 'svc_keystage',
    };
    return {
      kind: 'postgres' as const,
      sql: PG_SQL,
      table: (name: string) => `sims.${name}`,
      make: () => view(createConnector('postgres', settings, password)),
      // The local server trusts 127.0.0.1, so a wrong password alone is not refused: an unknown role is.
      badLogin: () => createConnector('postgres', { ...settings, user: 'ks_no_such_role' }, 'wrong'),
      unreachable: (pw: string) =>
        createConnector('postgres', { ...settings, host: '127.0.0.1', port: 1 }, pw),
      activeStatements: async () => {
        const rows = await pgExec(
          `SELECT count(*)::int FROM pg_stat_activity
            WHERE datname = $1 AND application_name = $2 AND state <> 'idle' AND pid <> pg_backend_pid()`,
          [db.name, applicationName],
        );
        return Number(rows[0]?.[0]);
      },
      drop: () => db.drop(),
    };
  };
}

connectorContract('PostgreSQL', contractTarget('ks_contract'));

// The same contract through the COPY path: every stream opened with `packed`, its packed rows
// decoded back into rows.
let copyView: ReturnType<typeof packedView> | undefined;
connectorContract(
  'PostgreSQL (COPY, packed)',
  contractTarget('ks_copy', (c) => {
    copyView = packedView(c);
    return copyView;
  }),
);

describe('PostgreSQL COPY path (packed rows)', () => {
  let db: DemoDatabase;
  let c: MisConnector;
  // As the result stream packs a row read through the cursor (normalizeRow: bytes → base64).
  const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
  const packRow = (row: Row) =>
    packr.pack(row.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
  const ALL_TYPES = `SELECT * FROM every_type ORDER BY id`;

  async function read(sql: string, packed: boolean, params: never[] = []) {
    const s = await c.stream(sql, params, { packed });
    const out: { packed: PackedBatch[]; rows: Row[] } = { packed: [], rows: [] };
    for await (const b of s.packedBatches()) {
      if (isPackedBatch(b)) out.packed.push(b);
      else out.rows.push(...b);
    }
    return out;
  }

  beforeAll(async () => {
    db = await createPgDemo();
    await pgExec(
      `CREATE TABLE public.every_type (
         id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, f4 float4, f8 float8, n numeric,
         b bool, by bytea, t text, ch char(3), vc varchar(20), d date, tm time, ts timestamp,
         tz timestamptz, iv interval, u uuid, j json, jb jsonb, arr int[], e text)`,
      [],
      db.name,
    );
    await pgExec(
      `INSERT INTO public.every_type VALUES
        (1, -32768, 2147483647, 9007199254740993, 4000000000, 1.5, -0.0, 12345.678901234567890,
         true, '\\x00ff10', 'tab' || chr(9) || 'here' || chr(10) || 'new line \\ back\\slash ' || chr(13) || chr(8) || chr(12) || chr(11), 'ab', 'Zoë 😀',
         DATE '2024-02-29', TIME '08:30:01.5', TIMESTAMP '2025-07-09 08:30:00.123',
         TIMESTAMPTZ '2025-07-09 08:30:00+01', INTERVAL '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '{"a": [1, "x\\ty"]}', '{"b": null}', ARRAY[1, NULL, 3], ''),
        (2, 0, -33, -9007199254740991, 0, 'NaN', 'Infinity', -0.5, false, '', '', ' ', '', DATE '0044-03-15 BC',
         TIME '00:00', TIMESTAMP '1970-01-01 00:00', TIMESTAMPTZ '1999-12-31 23:59:59.999999+00', INTERVAL '-1 month',
         NULL, 'null', '[]', '{}', '\\N'),
        (3, NULL, NULL, NULL, NULL, '-Infinity', 1e300, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, 127, 128, 4294967296, 65535, 3.4e38, 2.2250738585072014e-308, 0, true, repeat('\\xab', 1)::bytea,
         repeat('é', 100) || repeat('x', 70000), 'xyz', repeat('y', 20), DATE '2024-01-01', TIME '23:59:59',
         TIMESTAMP '2024-01-01 00:00:00', TIMESTAMPTZ '2024-06-01 12:00:00+00', INTERVAL '0', NULL, '1', '2',
         ARRAY[]::int[], repeat('z', 31))`,
      [],
      db.name,
    );
    c = createConnector('postgres', { ...server, database: db.name, misUser: 'svc_keystage' }, password);
    await c.connect();
  });
  afterAll(async () => {
    await c?.close();
    await db?.drop();
  });

  it('ran the contract above through COPY (its rows arrived packed)', () => {
    expect(copyView?.packedRows()).toBeGreaterThan(1000);
  });

  it('packs every type byte for byte as the result stream packs the cursor’s rows', async () => {
    const viaCursor = await read(ALL_TYPES, false);
    const viaCopy = await read(ALL_TYPES, true);
    expect(viaCursor.packed).toHaveLength(0);
    expect(viaCopy.rows).toHaveLength(0);
    expect(viaCopy.packed.reduce((n, b) => n + b.rowCount, 0)).toBe(4);
    const copied = Buffer.concat(viaCopy.packed.map((b) => b.bytes));
    expect(copied.equals(Buffer.concat(viaCursor.rows.map(packRow)))).toBe(true);
    // And decoded, the values are the cursor's.
    const rows = viaCopy.packed.flatMap(unpackBatch);
    expect(rows[0]?.[9]).toBe(Buffer.from([0, 255, 16]).toString('base64'));
    expect(rows[0]?.[10]).toBe('tab\there\nnew line \\ back\\slash \r\b\f\v');
    expect(rows[0]?.[19]).toBe('{"a": [1, "x\\ty"]}');
    expect(rows[0]?.[16]).toBe('2025-07-09 07:30:00Z');
    expect(rows[1]?.[22]).toBe('\\N');
    expect(rows[2]?.slice(1, 5)).toEqual([null, null, null, null]);
  });

  it('copies in binary when every column can be (edge values included), byte for byte as the cursor', async () => {
    await pgExec(
      `CREATE TABLE public.binary_types (
         id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, b bool, by bytea, t text, ch char(3),
         vc varchar(20), nm name, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)`,
      [],
      db.name,
    );
    // Edge values: the limits of every type, BC, years past 9999, infinities, fractions of a second.
    await pgExec(
      `INSERT INTO public.binary_types VALUES
        (1, -32768, -2147483648, -9223372036854775808, 4294967295, true, '\\x00ff10', 'tab' || chr(9) || 'nl' || chr(10) || '\\ Zoë 😀', 'ab',
         '', 'pg_class', DATE '5874897-12-31', TIMESTAMP '294276-12-31 23:59:59.999999', TIMESTAMPTZ '294276-12-31 23:59:59.999999+00',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, "x\\ty"]}', '{"b": null, "a": 1}'),
        (2, 32767, 2147483647, 9223372036854775807, 0, false, '', '', '   ', 'x', '', DATE '4713-01-01 BC',
         TIMESTAMP '4713-01-01 00:00:00 BC', TIMESTAMPTZ '4713-01-01 00:00:00+00 BC', '00000000-0000-0000-0000-000000000000', 'null', '[]'),
        (3, 0, 0, 9007199254740991, 1, NULL, NULL, NULL, NULL, NULL, NULL, 'infinity', 'infinity', 'infinity', NULL, NULL, NULL),
        (4, -1, -1, -9007199254740991, 2, NULL, NULL, NULL, NULL, NULL, NULL, '-infinity', '-infinity', '-infinity', NULL, NULL, NULL),
        (5, 1, 1, 9007199254740992, 3, NULL, NULL, NULL, NULL, NULL, NULL, DATE '0001-12-31 BC', TIMESTAMP '0001-12-31 23:59:59.5 BC',
         TIMESTAMPTZ '0001-01-01 00:00:00.000001+00 BC', NULL, NULL, NULL),
        (6, 2, 2, -9007199254740993, 4, NULL, NULL, NULL, NULL, NULL, NULL, DATE '0001-01-01', TIMESTAMP '0001-01-01 00:00:00',
         TIMESTAMPTZ '1969-12-31 23:59:59.000001+00', NULL, NULL, NULL),
        (7, 3, 3, 4294967296, 5, NULL, NULL, NULL, NULL, NULL, NULL, DATE '10000-01-01', TIMESTAMP '10000-01-01 00:00:00.1',
         TIMESTAMPTZ '1999-12-31 23:59:59.999999+00', NULL, NULL, NULL),
        (8, 4, 4, -4294967297, 6, NULL, NULL, NULL, NULL, NULL, NULL, DATE '2000-02-29', TIMESTAMP '2000-01-01 00:00:00',
         TIMESTAMPTZ '2000-01-01 00:00:00.12+00', NULL, NULL, NULL),
        (9, 5, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DATE '1900-02-28', TIMESTAMP '1900-03-01 12:34:56.789',
         TIMESTAMPTZ '2100-02-28 23:00:00+00', NULL, NULL, NULL)`,
      [],
      db.name,
    );
    // And 20,000 rows over ±5,000 years (past both ends of the double-exact range of microseconds).
    await pgExec(
      `INSERT INTO public.binary_types
       SELECT 100 + n, (n % 65536 - 32768)::int2, (n::int8 * 104729 % 4294967296 - 2147483648)::int4,
              CASE n % 3 WHEN 0 THEN n::int8 * 1000000007 WHEN 1 THEN -n::int8 * 999999937 * 1000 ELSE 9007199254740991 - n END,
              (n::int8 * 7919 % 4294967296)::oid, n % 2 = 0, decode(md5(n::text), 'hex'), 'row ' || n || repeat('é', n % 5),
              lpad(n::text, 3), left(md5(n::text), n % 20), ('t' || n)::name,
              DATE '2000-01-01' + (n * 7919 % 4000000 - 2000000),
              TIMESTAMP '2000-01-01' + make_interval(days => n * 7919 % 4000000 - 2000000)
                + (n::int8 * 104729 % 86400000000) * INTERVAL '1 microsecond',
              TIMESTAMPTZ '2000-01-01 00:00+00' + make_interval(days => n * 104723 % 4000000 - 2000000)
                + (n::int8 * 7919 % 86400000000) * INTERVAL '1 microsecond',
              md5(n::text)::uuid, json_build_object('n', n, 's', 'x' || chr(9)), jsonb_build_object('n', n)
         FROM generate_series(1, 20000) AS s(n)`,
      [],
      db.name,
    );
    const sql = 'SELECT * FROM public.binary_types ORDER BY id';
    const viaCursor = await read(sql, false);
    const viaCopy = await read(sql, true);
    expect(viaCopy.rows).toHaveLength(0);
    expect(viaCopy.packed.reduce((n, b) => n + b.rowCount, 0)).toBe(20009);
    const copied = Buffer.concat(viaCopy.packed.map((b) => b.bytes));
    expect(copied.equals(Buffer.concat(viaCursor.rows.map(packRow)))).toBe(true);
    const rows = viaCopy.packed.flatMap(unpackBatch);
    expect(rows[0]?.slice(11, 14)).toEqual([
      '5874897-12-31',
      '294276-12-31 23:59:59.999999',
      '294276-12-31 23:59:59.999999Z',
    ]);
    expect(rows[1]?.slice(11, 14)).toEqual([
      '4713-01-01 BC',
      '4713-01-01 00:00:00 BC',
      '4713-01-01 00:00:00+00 BC',
    ]);
    expect(rows[2]?.slice(11, 14)).toEqual(['infinity', 'infinity', 'infinity']);
    expect(rows[0]?.[3]).toBe('-9223372036854775808');
    // The server ran the binary COPY; a column of another type (numeric) keeps the result to text.
    const tail = 'SELECT right(current_query(), 15) AS tail, 1 AS one';
    expect((await read(tail, true)).packed.flatMap(unpackBatch)).toEqual([['(FORMAT binary)', 1]]);
    const textTail = 'SELECT right(current_query(), 11) AS tail, 1.5::numeric AS n';
    expect((await read(textTail, true)).packed.flatMap(unpackBatch)).toEqual([[') TO STDOUT', '1.5']]);
  });

  it('packs a large result the same in ≈ 1 MiB batches, with the column types', async () => {
    const sql = `SELECT n, n::int8 * 1000000000 AS big, md5(n::text) AS h, n % 2 = 0 AS even,
                        TIMESTAMPTZ '2025-01-01 00:00+00' + n * INTERVAL '1 minute' AS at
                   FROM generate_series(1, 60000) AS s(n)`;
    const s = await c.stream(sql, [], { packed: true });
    expect(s.columns.map((col) => [col.name, col.type])).toEqual([
      ['n', 'integer'],
      ['big', 'integer'],
      ['h', 'string'],
      ['even', 'boolean'],
      ['at', 'datetime'],
    ]);
    const batches: PackedBatch[] = [];
    for await (const b of s.packedBatches()) batches.push(b as PackedBatch);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) {
      expect(b.ends[b.rowCount - 1]).toBe(b.bytes.length);
      expect(b.bytes.length).toBeLessThan(1.3 * 1024 * 1024);
    }
    const viaCursor = await read(sql, false);
    expect(
      Buffer.concat(batches.map((b) => b.bytes)).equals(Buffer.concat(viaCursor.rows.map(packRow))),
    ).toBe(true);
  });

  it('uses the cursor for parameters, for a `;` inside the statement and for statements without rows', async () => {
    expect(
      (await read('SELECT :n::int AS n', true, [{ name: 'n', type: 'integer', value: 5 }] as never[])).rows,
    ).toEqual([[5]]);
    expect((await read("SELECT 'a;b' AS t", true)).rows).toEqual([['a;b']]);
    // A trailing `;` does not stop COPY.
    const trailing = await read('SELECT 1 AS one ;\n', true);
    expect(trailing.packed.flatMap(unpackBatch)).toEqual([[1]]);
    // Not a query (SHOW) behind a long run of whitespace and comments: the cursor, at once.
    const show = await read(`${' '.repeat(5000)}${'-- x\n  '.repeat(200)}SHOW TimeZone`, true);
    expect(show.rows).toEqual([['UTC']]);
    // A comment first is still a query.
    expect((await read('-- first\n/* then */ (SELECT 2 AS two)', true)).packed.flatMap(unpackBatch)).toEqual([
      [2],
    ]);
  });

  it('refuses text that would reach outside COPY’s parentheses, and runs nothing of it', async () => {
    await pgExec('CREATE TABLE public.ks_victim (n int)', [], db.name);
    for (const sql of [
      'SELECT 1) TO STDOUT; CREATE TABLE public.ks_injected (n int); COPY (SELECT 1',
      'SELECT 1 AS a) TO STDOUT WITH (FORMAT csv',
      'SELECT 1 AS a -- ',
      'SELECT 1 AS a /* unclosed',
      'SELECT * FROM public.ks_victim) AS x, (SELECT 1',
    ]) {
      const err = await read(sql, true).then(
        () => null,
        (e: unknown) => e,
      );
      // `SELECT 1 AS a -- ` is one complete statement: it runs, and stays a query.
      if (sql === 'SELECT 1 AS a -- ') expect(err).toBeNull();
      else expect(err).toMatchObject({ code: 'mis.query_failed' });
    }
    const tables = await pgExec(
      "SELECT count(*)::int FROM pg_tables WHERE tablename = 'ks_injected'",
      [],
      db.name,
    );
    expect(Number(tables[0]?.[0])).toBe(0);
  });

  it('stops a COPY early (close, cancel, time limit) and the connection works after', async () => {
    const endless = PG_SQL.endless;
    let s = await c.stream(endless, [], { packed: true });
    for await (const _ of s.packedBatches()) break;
    expect((await read('SELECT 3 AS three', true)).packed.flatMap(unpackBatch)).toEqual([[3]]);

    s = await c.stream(endless, [], { packed: true });
    const reading = (async () => {
      for await (const _ of s.packedBatches()) {
        // reading
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await c.cancel();
    await expect(reading).rejects.toMatchObject({ code: 'mis.cancelled' });

    await expect(
      (async () => {
        const timed = await c.stream(endless, [], { packed: true, timeoutMs: 300 });
        for await (const _ of timed.packedBatches()) {
          // reading
        }
      })(),
    ).rejects.toMatchObject({ code: 'mis.timeout' });
    expect((await read('SELECT 4 AS four', true)).packed.flatMap(unpackBatch)).toEqual([[4]]);
  });

  it('keeps to the cursor in a database that is not UTF8 (its text may not be valid UTF-8)', async () => {
    const name = uniqueName('ks_ascii');
    await pgExec(
      `CREATE DATABASE ${name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`,
    );
    const ascii = createConnector('postgres', { ...server, database: name }, password);
    try {
      const s = await ascii.stream('SELECT 1 AS one', [], { packed: true });
      const got: unknown[] = [];
      for await (const b of s.packedBatches()) got.push(b);
      expect(got).toEqual([[[1]]]);
    } finally {
      await ascii.close();
      await pgExec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
});

describe('PostgreSQL connector with a restricted login', () => {
  let db: DemoDatabase;
  const role = uniqueName('ks_reader');
  beforeAll(async () => {
    db = await createPgDemo();
    await pgExec(`CREATE ROLE ${role} LOGIN`);
    await pgExec(`GRANT USAGE ON SCHEMA sims TO ${role}`, [], db.name);
    await pgExec(`GRANT SELECT ON sims.stud_student, sims.sims_person TO ${role}`, [], db.name);
  });
  afterAll(async () => {
    await db?.drop();
    await pgExec(`DROP ROLE IF EXISTS ${role}`);
  });

  it('reports only the granted tables, cannot write, and is refused other tables', async () => {
    const c = createConnector(
      'postgres',
      { ...server, user: role, database: db.name, misUser: 'svc_keystage' },
      '',
    );
    try {
      const p = await c.permissions();
      expect(p.account).toBe(role);
      expect(p.database.readableTables).toEqual(['sims_person', 'stud_student']);
      expect(p.database.canWrite).toBe(false);
      // sys_user is not granted: the MIS groups cannot be read, and the note says so.
      expect(p.groups).toEqual([]);
      expect(p.notes.join(' ')).toMatch(/permission tables .* could not be read \(mis.permission_denied\)/);
      await expect(c.stream('SELECT * FROM sims.per_employee')).rejects.toMatchObject({
        code: 'mis.permission_denied',
        driverCode: '42501',
      });
      const rows = [];
      for await (const r of await c.stream('SELECT count(*) FROM stud_student')) rows.push(r);
      expect(Number(rows[0]?.[0])).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
  });
});

describe('PostgreSQL settings and errors', () => {
  it('reads a URL without a password and refuses one with a password', () => {
    expect(pgTarget({ url: 'postgres://keystage@mis.school.local:6543/sims?sslmode=require' })).toEqual({
      host: 'mis.school.local',
      port: 6543,
      database: 'sims',
      user: 'keystage',
      ssl: 'no-verify',
    });
    expect(() => pgTarget({ url: 'postgres://keystage:hunter2@h/db' })).toThrow(
      /must not contain a password/,
    );
    expect(() => pgTarget({ host: 'h' })).toThrow(/user/);
  });

  it('maps SQLSTATEs to stable codes and keeps row values out of messages', () => {
    const e = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(mapPgError(e('28P01', 'password authentication failed for user "x"'), 'h:1', 'x')).toMatchObject({
      code: 'mis.auth_failed',
    });
    expect(mapPgError(e('ECONNREFUSED', 'connect ECONNREFUSED'), 'h:1', 'x')).toMatchObject({
      code: 'mis.unavailable',
      message: 'cannot reach PostgreSQL at h:1: connection refused',
    });
    expect(mapPgError(e('57014', 'canceling statement due to statement timeout'), 'h:1', 'x').code).toBe(
      'mis.timeout',
    );
    expect(mapPgError(e('57014', 'canceling statement due to user request'), 'h:1', 'x').code).toBe(
      'mis.cancelled',
    );
    const data = mapPgError(e('22P02', 'invalid input syntax for type integer: "Zoë"'), 'h:1', 'x');
    expect(data).toMatchObject({ code: 'mis.query_failed', driverCode: '22P02' });
    expect(data.message).not.toContain('Zoë');
    expect(mapPgError(e('42P01', 'relation "nope" does not exist'), 'h:1', 'x').message).toContain('nope');
  });
});
