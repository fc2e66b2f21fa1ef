/**
 * `createConnector(kind, settings, password)`: the one way the agent gets a connector, and
 * `describeConnector()`: what `keystage-agent credentials test` prints.
 */
import { MisError } from './errors.js';
import { MssqlConnector } from './mssql/mssql.connector.js';
import { MysqlConnector } from './mysql/mysql.connector.js';
import { PostgresConnector } from './postgres/postgres.connector.js';
import { SqliteConnector } from './sqlite/sqlite.connector.js';
import { type ConnectorSettings, MIS_KINDS, type MisConnector, type MisKind } from './types.js';

/**
 * A connector for one MIS database, not yet connected. The password is passed apart from
 * the settings (the agent keeps it encrypted); a URL in the settings must not contain one.
 * Drivers load on first connect, so an agent for one engine never loads the others.
 */
export function createConnector<K extends MisKind>(
  kind: K,
  settings: ConnectorSettings[K],
  password?: string,
): MisConnector {
  if (settings === null || typeof settings !== 'object') {
    throw new MisError('mis.bad_config', `${kind}: settings are required`);
  }
  switch (kind) {
    case 'sqlite':
      return new SqliteConnector(settings as ConnectorSettings['sqlite']);
    case 'postgres':
      return new PostgresConnector(settings as ConnectorSettings['postgres'], password);
    case 'mysql':
      return new MysqlConnector(settings as ConnectorSettings['mysql'], password);
    case 'mssql':
      return new MssqlConnector(settings as ConnectorSettings['mssql'], password);
    default:
      throw new MisError('mis.bad_config', `unknown MIS kind (expected one of ${MIS_KINDS.join(', ')})`);
  }
}

export interface ConnectorDescription {
  readonly kind: MisKind;
  /** Where, without secrets. */
  readonly target: string;
  readonly serverVersion: string;
  readonly account: string;
  readonly misUser: string | null;
  readonly groups: readonly string[];
  readonly areas: readonly string[];
  /** Tables of the MIS schema the login may SELECT (null: unknown). */
  readonly readableTables: number | null;
  readonly canWrite: boolean | null;
  readonly notes: readonly string[];
}

/** Connects and reports the server version and what the account may read. */
export async function describeConnector(connector: MisConnector): Promise<ConnectorDescription> {
  await connector.connect();
  const serverVersion = await connector.serverVersion();
  const p = await connector.permissions();
  return {
    kind: connector.kind,
    target: connector.display,
    serverVersion,
    account: p.account,
    misUser: p.misUserFound ? p.misUser : null,
    groups: p.groups,
    areas: p.areas,
    readableTables: p.database.readableTables?.length ?? null,
    canWrite: p.database.canWrite,
    notes: p.notes,
  };
}

/** The description as lines for a terminal. */
export function formatDescription(d: ConnectorDescription): string[] {
  const yesNo = (v: boolean | null) => (v === null ? 'unknown' : v ? 'yes' : 'no');
  return [
    `MIS database:    ${d.target}`,
    `Server:          ${d.serverVersion}`,
    `Login:           ${d.account || '(none)'}`,
    `MIS user:        ${d.misUser ?? '(not found)'}`,
    `Groups:          ${d.groups.length > 0 ? d.groups.join(', ') : '(none)'}`,
    `Readable areas:  ${d.areas.length > 0 ? d.areas.join(', ') : '(none)'}`,
    `Readable tables: ${d.readableTables ?? 'unknown'}`,
    `Login can write: ${yesNo(d.canWrite)}${d.canWrite ? ' (the connector still runs read-only)' : ''}`,
    ...d.notes.map((n) => `Note:            ${n}`),
  ];
}
