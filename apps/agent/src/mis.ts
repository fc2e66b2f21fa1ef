// Interim: the MIS connectors and the SQL validator are being built as their own packages. Until they
// are wired in here, this build refuses every job at the read-only check and opens no MIS at all:
// it fails closed, never open.
import { RunFailureCode } from '@keystage/protocol';
import { AgentError } from './errors.js';
import type { MisSettings } from './state.js';

export const MIS_KINDS = ['SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL', 'OTHER'] as const;
export type MisKind = (typeof MIS_KINDS)[number];

export interface MisSession {
  serverVersion: string | null;
  stream(sql: string, parameters: unknown[], signal: AbortSignal): AsyncIterable<unknown[]>;
  close(): Promise<void>;
}

export async function openMisSession(
  _settings: MisSettings,
  _password: string | undefined,
): Promise<MisSession> {
  throw new AgentError('mis.unavailable', 'this build has no MIS connectors');
}

export async function describeMis(_settings: MisSettings, _password: string | undefined): Promise<string> {
  throw new AgentError('mis.unavailable', 'this build has no MIS connectors');
}

export function validateReadOnly(_sql: string): { ok: true } | { ok: false; message: string } {
  return { ok: false, message: 'this build cannot validate SQL, so it runs none' };
}

export function misErrorCode(_err: unknown): (typeof RunFailureCode)[keyof typeof RunFailureCode] {
  return RunFailureCode.MisQueryFailed;
}
