import sql from 'mssql';
import { describe, expect, it } from 'vitest';
import { bindParameters } from '../params.js';
import {
  formatDateTime,
  mapMssqlError,
  mssqlColumnType,
  mssqlConfig,
  mssqlInputType,
  mssqlInputValue,
  mssqlNormaliser,
  WRITE_CHECK_COLUMNS,
  WRITE_CHECK_SQL,
  writeFindings,
} from './mssql.parts.js';

const base = { server: 'sims-sql.school.local', database: 'SIMS', user: 'keystage_reader' };

describe('settings → mssql config', () => {
  it('uses TLS with certificate checks, UTC dates, array rows, one connection and no driver timeout', () => {
    const c = mssqlConfig(base, 'pw');
    expect(c).toMatchObject({
      server: 'sims-sql.school.local',
      port: 1433,
      database: 'SIMS',
      user: 'keystage_reader',
      password: 'pw',
      requestTimeout: 0,
      arrayRowMode: true,
      pool: { max: 1, min: 0 },
      options: {
        encrypt: true,
        trustServerCertificate: false,
        useUTC: true,
        readOnlyIntent: false,
        appName: 'keystage-agent',
      },
    });
    expect(c).not.toHaveProperty('domain');
  });

  it('uses a named instance instead of the port, NTLM with a domain, and the TLS and intent settings given', () => {
    const c = mssqlConfig(
      {
        ...base,
        instanceName: 'SIMS2019',
        domain: 'SCHOOL',
        encrypt: false,
        trustServerCertificate: true,
        port: 5000,
        readOnlyIntent: true,
      },
      'pw',
    );
    expect(c.port).toBeUndefined();
    expect(c.domain).toBe('SCHOOL');
    expect(c.options).toMatchObject({
      instanceName: 'SIMS2019',
      encrypt: false,
      trustServerCertificate: true,
      readOnlyIntent: true,
    });
  });

  it('refuses incomplete settings and a bad schema name', () => {
    expect(() => mssqlConfig({ ...base, server: '' }, 'pw')).toThrow(/server is required/);
    expect(() => mssqlConfig({ ...base, user: '' }, 'pw')).toThrow(/user is required/);
    expect(() => mssqlConfig({ ...base, schema: 'sims; DROP' }, 'pw')).toThrow(/schema/);
  });

  it('is accepted by the mssql driver (a pool is built without connecting)', () => {
    const pool = new sql.ConnectionPool(mssqlConfig(base, 'pw'));
    expect(pool.connected).toBe(false);
  });
});

describe('parameters as typed inputs', () => {
  it('keeps :name as @name and leaves literals, [identifiers] and comments alone', () => {
    const b = bindParameters(
      'mssql',
      "SELECT [a:b], ':x', N'it''s :y' FROM sims.stud_student /* :z */ WHERE person_id = :id -- :w\n AND x::y = 1",
      [{ name: 'id', type: 'integer', value: 7 }],
    );
    expect(b.sql).toBe(
      "SELECT [a:b], ':x', N'it''s :y' FROM sims.stud_student /* :z */ WHERE person_id = @id -- :w\n AND x::y = 1",
    );
    expect(b.named).toEqual([{ name: 'id', type: 'integer', value: 7 }]);
  });

  it('maps every parameter type to an mssql type and value', () => {
    expect(mssqlInputType('string')).toBe('NVarChar');
    expect(mssqlInputType('integer')).toBe('BigInt');
    expect(mssqlInputType('number')).toBe('Float');
    expect(mssqlInputType('boolean')).toBe('Bit');
    expect(mssqlInputType('date')).toBe('Date');
    expect(mssqlInputType('datetime')).toBe('DateTime2');
    for (const t of ['NVarChar', 'BigInt', 'Float', 'Bit', 'Date', 'DateTime2'] as const)
      expect(sql[t]).toBeTypeOf('function');
    expect(mssqlInputValue({ name: 'b', type: 'boolean', value: 1 })).toBe(true);
    expect(mssqlInputValue({ name: 'b', type: 'boolean', value: 0 })).toBe(false);
    expect((mssqlInputValue({ name: 'd', type: 'date', value: '2024-02-29' }) as Date).toISOString()).toBe(
      '2024-02-29T00:00:00.000Z',
    );
    expect(
      (
        mssqlInputValue({ name: 'dt', type: 'datetime', value: '2025-07-09 08:30:05.123456' }) as Date
      ).toISOString(),
    ).toBe('2025-07-09T08:30:05.123Z');
    expect(mssqlInputValue({ name: 'i', type: 'integer', value: '9007199254740993' })).toBe(
      '9007199254740993',
    );
    expect(mssqlInputValue({ name: 's', type: 'string', value: null })).toBeNull();
  });
});

describe('column types and values', () => {
  it('maps declarations to normalised types', () => {
    expect(mssqlColumnType('int')).toBe('integer');
    expect(mssqlColumnType('bigint')).toBe('integer');
    expect(mssqlColumnType('bit')).toBe('boolean');
    expect(mssqlColumnType('nvarchar')).toBe('string');
    expect(mssqlColumnType('uniqueidentifier')).toBe('string');
    expect(mssqlColumnType('money')).toBe('decimal');
    expect(mssqlColumnType('datetime2')).toBe('datetime');
    expect(mssqlColumnType('smalldatetime')).toBe('datetime');
    expect(mssqlColumnType('date')).toBe('date');
    expect(mssqlColumnType('varbinary')).toBe('binary');
    expect(mssqlColumnType('sql_variant')).toBe('unknown');
  });

  it('normalises tedious values like the other engines', () => {
    const n = (decl: string, v: unknown, scale?: number) => {
      const f = mssqlNormaliser(decl, scale);
      return f ? f(v) : v;
    };
    expect(n('bigint', '42')).toBe(42);
    expect(n('bigint', '9007199254740993')).toBe('9007199254740993');
    expect(n('bit', true)).toBe(1);
    expect(n('bit', false)).toBe(0);
    expect(n('decimal', 1.5, 2)).toBe('1.50');
    expect(n('money', 12.5)).toBe('12.5000');
    expect(n('date', new Date('2024-02-29T00:00:00Z'))).toBe('2024-02-29');
    expect(n('datetime2', new Date('2025-07-09T08:30:00Z'))).toBe('2025-07-09 08:30:00');
    expect(n('datetime', new Date('2025-07-09T08:30:00.120Z'))).toBe('2025-07-09 08:30:00.12');
    expect(n('datetimeoffset', new Date('2025-07-09T08:30:00Z'))).toBe('2025-07-09 08:30:00Z');
    expect(n('time', new Date('1970-01-01T13:45:10Z'))).toBe('13:45:10');
    expect(n('uniqueidentifier', 'A0B1C2D3-0000-4000-8000-00000000ABCD')).toBe(
      'a0b1c2d3-0000-4000-8000-00000000abcd',
    );
    expect(n('nvarchar', 'Nguyễn')).toBe('Nguyễn');
    expect(mssqlNormaliser('int')).toBeNull();
    expect(formatDateTime(new Date('2079-06-06T00:00:00Z'))).toBe('2079-06-06 00:00:00');
  });
});

describe('the write check', () => {
  it('names every write capability found and nothing for a db_datareader login', () => {
    expect(WRITE_CHECK_COLUMNS.every((c) => WRITE_CHECK_SQL.includes(` AS ${c}`))).toBe(true);
    expect(writeFindings(WRITE_CHECK_COLUMNS.map(() => 0))).toEqual([]);
    const row = WRITE_CHECK_COLUMNS.map((c) => (c === 'db_datawriter' || c === 'schema_insert' ? 1 : 0));
    expect(writeFindings(row)).toEqual(['db_datawriter', 'schema_insert']);
  });
});

describe('error mapping', () => {
  const where = 'sims-sql:1433';
  const err = (name: string, props: Record<string, unknown>, message: string) =>
    Object.assign(new Error(message), { name, ...props });

  it('maps logins, network, cancel and timeout', () => {
    expect(
      mapMssqlError(
        err('ConnectionError', { code: 'ELOGIN' }, "Login failed for user 'keystage_reader'."),
        where,
        'keystage_reader',
        'Secr3t-pw',
      ),
    ).toMatchObject({ code: 'mis.auth_failed', driverCode: 'ELOGIN' });
    const refused = mapMssqlError(
      err(
        'ConnectionError',
        { code: 'ESOCKET', originalError: { code: 'ECONNREFUSED' } },
        'Failed to connect to sims-sql:1433 - connect ECONNREFUSED',
      ),
      where,
      'u',
      'Secr3t-pw',
    );
    expect(refused).toMatchObject({
      code: 'mis.unavailable',
      message: 'cannot reach SQL Server at sims-sql:1433: connection refused',
    });
    expect(
      mapMssqlError(err('ConnectionError', { code: 'ETIMEOUT' }, 'Failed to connect in 15000ms'), where, 'u')
        .code,
    ).toBe('mis.unavailable');
    expect(
      mapMssqlError(err('ConnectionError', { code: 'EINSTLOOKUP' }, 'no instance'), where, 'u').message,
    ).toMatch(/SQL Browser/);
    expect(mapMssqlError(err('RequestError', { code: 'ECANCEL' }, 'Canceled.'), where, 'u').code).toBe(
      'mis.cancelled',
    );
    expect(
      mapMssqlError(err('RequestError', { code: 'ETIMEOUT' }, 'Timeout: Request failed'), where, 'u').code,
    ).toBe('mis.timeout');
  });

  it('maps permission errors and keeps row values out of messages', () => {
    expect(
      mapMssqlError(
        err(
          'RequestError',
          { code: 'EREQUEST', number: 229 },
          "The INSERT permission was denied on the object 'stud_student'",
        ),
        where,
        'u',
      ),
    ).toMatchObject({ code: 'mis.permission_denied', driverCode: '229' });
    const data = mapMssqlError(
      err(
        'RequestError',
        { code: 'EREQUEST', number: 245 },
        "Conversion failed when converting the nvarchar value 'Zoë' to data type int.",
      ),
      where,
      'u',
    );
    expect(data).toMatchObject({ code: 'mis.query_failed', driverCode: '245' });
    expect(data.message).not.toContain('Zoë');
    expect(
      mapMssqlError(
        err('RequestError', { code: 'EREQUEST', number: 208 }, "Invalid object name 'sims.nope'."),
        where,
        'u',
      ).message,
    ).toContain('sims.nope');
  });

  it('never repeats the password', () => {
    const e = mapMssqlError(
      err('RequestError', { code: 'EREQUEST', number: 102 }, "Incorrect syntax near 'Secr3t-pw'."),
      where,
      'u',
      'Secr3t-pw',
    );
    expect(e.message).not.toContain('Secr3t-pw');
  });
});
