import type { ConnectorSettings, MisConnector, PackedBatch, QueryParam } from '@keystage/mis-connectors';

// The SQL parser and the database drivers are loaded on first use, not at start: an idle agent
// (most of its life) stays small (docs/benchmarks.md).
const connectors = () => import('@keystage/mis-connectors');
const sqlSpec = () => import('@keystage/extract-spec/sql');

function isMisError(err: unknown): err is Error & { code: string } {
  return (
    err instanceof Error && err.name === 'MisError' && typeof (err as { code?: unknown }).code === 'string'
  );
}

import { RunFailureCode } from '@keystage/protocol';
import { AgentError } from './errors.js';
import type { MisSettings } from './state.js';

/** The control plane's MIS kinds (`MisType`). */
export const MIS_KINDS = ['SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL', 'OTHER'] as const;
export type MisKind = (typeof MIS_KINDS)[number];

type RunFailure = (typeof RunFailureCode)[keyof typeof RunFailureCode];

export interface MisSession {
  serverVersion: string | null;
  /**
   * Runs the query: its column names, then the rows in batches (bounded read-ahead) — as values,
   * or already packed for the result stream where the engine can (PostgreSQL via COPY).
   */
  query(
    sql: string,
    parameters: readonly QueryParam[],
    signal: AbortSignal,
  ): Promise<{
    columns: string[];
    batches: AsyncIterable<unknown[][] | PackedBatch>;
    close(): Promise<void>;
  }>;
  close(): Promise<void>;
}

/** How each MIS kind is reached: SIMS and CMIS live on SQL Server. */
async function connectorFor(settings: MisSettings, password: string | undefined): Promise<MisConnector> {
  const { createConnector } = await connectors();
  const { kind, location } = settings;
  switch (kind) {
    case 'DEMO_SQLITE':
      return createConnector('sqlite', { path: location } satisfies ConnectorSettings['sqlite']);
    case 'POSTGRES':
      return createConnector('postgres', { url: location }, password);
    case 'MYSQL':
      return createConnector('mysql', { url: location }, password);
    case 'SIMS':
    case 'CMIS': {
      let url: URL;
      try {
        url = new URL(location);
      } catch {
        throw new AgentError(
          'mis.bad_config',
          'for SIMS/CMIS give --location mssql://user@server:1433/database',
        );
      }
      return createConnector(
        'mssql',
        {
          server: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          database: decodeURIComponent(url.pathname.slice(1)),
          user: decodeURIComponent(url.username),
          encrypt: url.searchParams.get('encrypt') !== 'false',
          trustServerCertificate: url.searchParams.get('trustServerCertificate') === 'true',
        },
        password,
      );
    }
    default:
      throw new AgentError('mis.bad_config', `this agent cannot read a ${kind} MIS`);
  }
}

/** Opens the MIS for one run; the connection is read-only at the database level where it can be. */
export async function openMisSession(
  settings: MisSettings,
  password: string | undefined,
): Promise<MisSession> {
  const connector = await connectorFor(settings, password);
  await connector.connect();
  const serverVersion = await connector.serverVersion().catch(() => null);
  return {
    serverVersion,
    async query(sql, parameters, signal) {
      const rows = await connector.stream(sql, parameters, { signal, packed: true });
      return {
        columns: rows.columns.map((c) => c.name),
        batches: rows.packedBatches() as AsyncIterable<unknown[][] | PackedBatch>,
        close: () => rows.close(),
      };
    },
    close: () => connector.close(),
  };
}

/** `credentials test`: server version and what the account may read. */
export async function describeMis(settings: MisSettings, password: string | undefined): Promise<string> {
  const connector = await connectorFor(settings, password);
  const { describeConnector, formatDescription } = await connectors();
  try {
    await connector.connect();
    return formatDescription(await describeConnector(connector)).join('\n');
  } catch (err) {
    if (isMisError(err)) throw new AgentError(err.code, `cannot use the MIS: ${err.message}`);
    throw err;
  } finally {
    await connector.close().catch(() => undefined);
  }
}

/** The same validator the control plane runs: one statement, read-only, bind variables only. */
export async function validateReadOnly(
  sql: string,
  kind: MisKind,
): Promise<{ ok: true } | { ok: false; message: string }> {
  if (kind === 'OTHER') return { ok: false, message: 'no SQL dialect is known for this MIS' };
  const { MIS_DIALECT, validateSql } = await sqlSpec();
  const result = validateSql(sql, MIS_DIALECT[kind]);
  if (result.ok) return { ok: true };
  const first = result.problems[0];
  return {
    ok: false,
    message: first
      ? `${first.code} at ${first.line}:${first.column}: ${first.message}`
      : 'the SQL is not a single read-only statement',
  };
}

/** Maps a connector failure to the protocol's run failure codes. */
export function misErrorCode(err: unknown): RunFailure {
  if (!isMisError(err)) return RunFailureCode.Internal;
  switch (err.code) {
    case 'mis.unavailable':
    case 'mis.busy':
      return RunFailureCode.MisUnavailable;
    case 'mis.auth_failed':
      return RunFailureCode.MisAuthFailed;
    case 'mis.permission_denied':
    case 'mis.account_can_write':
      return RunFailureCode.MisPermissionDenied;
    case 'mis.cancelled':
      return RunFailureCode.Cancelled;
    case 'mis.timeout':
      return RunFailureCode.DeadlineExceeded;
    default:
      return RunFailureCode.MisQueryFailed;
  }
}
