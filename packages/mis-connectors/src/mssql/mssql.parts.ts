/**
 * The parts of the SQL Server connector that need no server: settings → mssql config,
 * column types and value normalisation (tedious gives Dates, booleans and bigint strings),
 * typed inputs for parameters, the write-permission check and error mapping. Unit-tested
 * in mssql.parts.spec.ts; the connector itself runs only against a real SQL Server.
 */
import type { config as MssqlConfig } from 'mssql';
import { checkIdentifier, DEFAULT_CONNECT_TIMEOUT_MS } from '../connector.js';
import { MisError, messageOf, NETWORK_CODES, networkReason, withoutSecret } from '../errors.js';
import type { NamedValue } from '../params.js';
import type { CellValue, ColumnType, MssqlSettings, ParamType } from '../types.js';

export function mssqlConfig(settings: MssqlSettings, password: string | undefined): MssqlConfig {
  if (!settings.server) throw new MisError('mis.bad_config', 'mssql: server is required');
  if (!settings.database) throw new MisError('mis.bad_config', 'mssql: database is required');
  if (!settings.user) throw new MisError('mis.bad_config', 'mssql: user is required');
  if (settings.schema !== undefined) checkIdentifier('mssql: schema', settings.schema);
  return {
    server: settings.server,
    // A named instance is found through SQL Browser; tedious ignores the port then.
    ...(settings.instanceName ? {} : { port: settings.port ?? 1433 }),
    database: settings.database,
    user: settings.user,
    password: password ?? '',
    ...(settings.domain ? { domain: settings.domain } : {}),
    connectionTimeout: settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    // No driver limit: the connector's own deadline cancels the request.
    requestTimeout: 0,
    arrayRowMode: true,
    pool: { max: 1, min: 0, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: settings.encrypt ?? true,
      trustServerCertificate: settings.trustServerCertificate ?? false,
      ...(settings.instanceName ? { instanceName: settings.instanceName } : {}),
      appName: 'keystage-agent',
      // Dates are read and written as UTC wall-clock: no shift by the agent machine's zone.
      useUTC: true,
      // ApplicationIntent=ReadOnly: routed to a readable secondary where an availability group has one.
      readOnlyIntent: settings.readOnlyIntent ?? false,
      enableArithAbort: true,
    },
  };
}

/** The normalised type of a column, from mssql's type declaration (`nvarchar`, `datetime2`, …). */
export function mssqlColumnType(declaration: string | undefined): ColumnType {
  switch ((declaration ?? '').toLowerCase()) {
    case 'tinyint':
    case 'smallint':
    case 'int':
    case 'bigint':
      return 'integer';
    case 'bit':
      return 'boolean';
    case 'float':
    case 'real':
      return 'number';
    case 'decimal':
    case 'numeric':
    case 'money':
    case 'smallmoney':
      return 'decimal';
    case 'date':
      return 'date';
    case 'datetime':
    case 'datetime2':
    case 'smalldatetime':
    case 'datetimeoffset':
      return 'datetime';
    case 'time':
      return 'time';
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'udt':
    case 'geography':
    case 'geometry':
      return 'binary';
    case 'char':
    case 'nchar':
    case 'varchar':
    case 'nvarchar':
    case 'text':
    case 'ntext':
    case 'xml':
    case 'uniqueidentifier':
      return 'string';
    default:
      return 'unknown';
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function fraction(ms: number): string {
  return ms === 0 ? '' : `.${pad(ms, 3).replace(/0+$/, '')}`;
}

/** A UTC Date → `YYYY-MM-DD HH:MM:SS[.fff]` (tedious reads with useUTC, so UTC fields are the stored ones). */
export function formatDateTime(d: Date): string {
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fraction(d.getUTCMilliseconds())}`
  );
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** How to turn one tedious value into the normalised one, or null when it is already right. */
export function mssqlNormaliser(
  declaration: string | undefined,
  scale?: number,
): ((v: unknown) => CellValue) | null {
  const decl = (declaration ?? '').toLowerCase();
  switch (decl) {
    case 'bigint':
      return (v) => {
        if (typeof v === 'number') return v;
        const big = BigInt(v as string | bigint);
        return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big.toString();
      };
    case 'bit':
      return (v) => (v === true || v === 1 ? 1 : 0);
    case 'decimal':
    case 'numeric':
    case 'money':
    case 'smallmoney':
      // tedious reads these as JS numbers; print them with the column's scale, as other engines do.
      return (v) =>
        typeof v === 'number' ? v.toFixed(scale ?? (decl.endsWith('money') ? 4 : 0)) : String(v);
    case 'date':
      return (v) => (v instanceof Date ? formatDateTime(v).slice(0, 10) : String(v));
    case 'datetime':
    case 'datetime2':
    case 'smalldatetime':
      return (v) => (v instanceof Date ? formatDateTime(v) : String(v));
    case 'datetimeoffset':
      return (v) => (v instanceof Date ? `${formatDateTime(v)}Z` : String(v));
    case 'time':
      return (v) => (v instanceof Date ? formatDateTime(v).slice(11) : String(v));
    case 'uniqueidentifier':
      // SQL Server prints GUIDs in upper case; PostgreSQL and the demo MIS in lower case.
      return (v) => String(v).toLowerCase();
    default:
      return null;
  }
}

/** The mssql input type (a name in the mssql module) for a parameter type. */
export function mssqlInputType(
  type: ParamType,
): 'NVarChar' | 'BigInt' | 'Float' | 'Bit' | 'Date' | 'DateTime2' {
  switch (type) {
    case 'string':
      return 'NVarChar';
    case 'integer':
      return 'BigInt';
    case 'number':
      return 'Float';
    case 'boolean':
      return 'Bit';
    case 'date':
      return 'Date';
    case 'datetime':
      return 'DateTime2';
  }
}

/** A checked parameter value as the mssql input wants it (Dates in UTC wall-clock, booleans, bigint strings). */
export function mssqlInputValue(p: NamedValue): unknown {
  const v = p.value;
  if (v === null) return null;
  switch (p.type) {
    case 'boolean':
      return v === 1;
    case 'date':
      return new Date(`${v}T00:00:00Z`);
    case 'datetime': {
      // JS Dates hold milliseconds: a finer fraction is cut to three digits.
      const [date, time] = String(v).split(' ');
      const [hms, frac = ''] = (time ?? '').split('.');
      return new Date(`${date}T${hms}.${frac.padEnd(3, '0').slice(0, 3)}Z`);
    }
    default:
      return v;
  }
}

/**
 * One row that says whether the login could change data. SQL Server has no read-only
 * transaction, so this is what keeps the agent read-only there: the login itself.
 */
export const WRITE_CHECK_SQL = `SELECT
  CAST(ISNULL(IS_SRVROLEMEMBER('sysadmin'), 0) AS int) AS sysadmin,
  CAST(ISNULL(IS_ROLEMEMBER('db_owner'), 0) AS int) AS db_owner,
  CAST(ISNULL(IS_ROLEMEMBER('db_datawriter'), 0) AS int) AS db_datawriter,
  CAST(ISNULL(IS_ROLEMEMBER('db_ddladmin'), 0) AS int) AS db_ddladmin,
  CAST(ISNULL(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'INSERT'), 0) AS int) AS database_insert,
  CAST(ISNULL(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'UPDATE'), 0) AS int) AS database_update,
  CAST(ISNULL(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'DELETE'), 0) AS int) AS database_delete,
  CAST(ISNULL(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER'), 0) AS int) AS database_alter,
  CAST(ISNULL(HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE TABLE'), 0) AS int) AS database_create_table,
  CAST(ISNULL(HAS_PERMS_BY_NAME(@schema, 'SCHEMA', 'INSERT'), 0) AS int) AS schema_insert,
  CAST(ISNULL(HAS_PERMS_BY_NAME(@schema, 'SCHEMA', 'UPDATE'), 0) AS int) AS schema_update,
  CAST(ISNULL(HAS_PERMS_BY_NAME(@schema, 'SCHEMA', 'DELETE'), 0) AS int) AS schema_delete,
  CAST(ISNULL(HAS_PERMS_BY_NAME(@schema, 'SCHEMA', 'ALTER'), 0) AS int) AS schema_alter`;

export const WRITE_CHECK_COLUMNS = [
  'sysadmin',
  'db_owner',
  'db_datawriter',
  'db_ddladmin',
  'database_insert',
  'database_update',
  'database_delete',
  'database_alter',
  'database_create_table',
  'schema_insert',
  'schema_update',
  'schema_delete',
  'schema_alter',
] as const;

/** The names of the write capabilities found in a WRITE_CHECK_SQL row (in column order). */
export function writeFindings(row: readonly unknown[]): string[] {
  return WRITE_CHECK_COLUMNS.filter((_, i) => Number(row[i] ?? 0) === 1);
}

/** Error numbers whose messages name SQL objects or quote the agreed SQL, never row values. */
const SAFE_NUMBERS = new Set([
  102, 105, 156, 207, 208, 209, 229, 230, 262, 297, 300, 916, 1013, 1088, 2812, 3701, 3906, 4060, 4104, 4121,
  8120, 18456,
]);
const PERMISSION_NUMBERS = new Set([229, 230, 262, 297, 300, 916, 3906, 15247]);

interface MssqlErrorLike {
  name?: string;
  code?: string;
  number?: number;
  message?: string;
  originalError?: { code?: string; message?: string; number?: number };
}

export function mapMssqlError(err: unknown, where: string, user: string, password?: string): MisError {
  if (err instanceof MisError) return err;
  const e = (err ?? {}) as MssqlErrorLike;
  const code = e.code ?? '';
  const number = e.number ?? e.originalError?.number ?? 0;
  const raw = `${messageOf(err)} ${e.originalError?.message ?? ''}`;
  const msg = withoutSecret(messageOf(err), password);
  const innerCode = e.originalError?.code ?? /\b(E[A-Z_]{4,})\b/.exec(raw)?.[1] ?? '';
  const connectionPhase = e.name === 'ConnectionError';
  if (code === 'ELOGIN' || number === 18456 || number === 18452 || number === 4060) {
    return new MisError(
      'mis.auth_failed',
      number === 4060
        ? `SQL Server at ${where} refused the login for user "${user}" to the database`
        : `SQL Server at ${where} refused the login for user "${user}"`,
      code || String(number),
    );
  }
  if (code === 'ECANCEL') return new MisError('mis.cancelled', 'the query was cancelled', code);
  if (code === 'ETIMEOUT' && !connectionPhase) {
    return new MisError('mis.timeout', 'the query passed its time limit and was stopped', code);
  }
  if (
    connectionPhase ||
    ['ESOCKET', 'ETIMEOUT', 'EINSTLOOKUP', 'ENOTOPEN', 'ECONNCLOSED', 'ENOCONN'].includes(code)
  ) {
    const reason = NETWORK_CODES.has(innerCode)
      ? networkReason(innerCode)
      : code === 'ETIMEOUT'
        ? 'connection timed out'
        : code === 'EINSTLOOKUP'
          ? 'named instance not found (is SQL Browser running?)'
          : 'connection failed';
    return new MisError(
      'mis.unavailable',
      `cannot reach SQL Server at ${where}: ${reason}`,
      code || innerCode,
    );
  }
  if (PERMISSION_NUMBERS.has(number)) {
    return new MisError('mis.permission_denied', `SQL Server refused the statement: ${msg}`, String(number));
  }
  if (number > 0) {
    return SAFE_NUMBERS.has(number)
      ? new MisError('mis.query_failed', `SQL Server: ${msg}`, String(number))
      : new MisError('mis.query_failed', `SQL Server query failed (error ${number})`, String(number));
  }
  if (code === 'EPARAM' || code === 'EARGS') {
    return new MisError('mis.bad_parameter', 'SQL Server rejected a parameter value', code);
  }
  return new MisError(
    'mis.query_failed',
    `SQL Server query failed (${code || 'unknown error'})`,
    code || undefined,
  );
}
