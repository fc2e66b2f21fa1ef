import type { DataDir } from './data-dir.js';
import { AgentError } from './errors.js';
import type { MisKind } from './mis.js';

/** What enrolment leaves in `agent.json` (nothing secret: the private key is in `identity.key`). */
export interface AgentState {
  agentId: string;
  schoolId: string;
  cloudUrl: string;
  gatewayPath: string;
  /** Pinned at enrolment: jobs signed by any other key are refused. */
  jobSigningKey: { keyId: string; publicKey: string };
  resultKey: { keyId: string; publicKey: string };
  enrolledAt: string;
  /** The MIS this agent reads, as declared at enrolment (credentials set may refine it). */
  misKind: MisKind;
  mis?: MisSettings;
}

/** How to reach the MIS; the password is kept apart, encrypted (credentials.enc). */
export interface MisSettings {
  kind: MisKind;
  /** sqlite: a file path; postgres/mysql/mssql: a URL without the password. */
  location: string;
  user?: string;
  /** Set with `credentials set --no-password`: the MIS takes no password (trust or peer auth). */
  noPassword?: boolean;
}

export const STATE_FILE = 'agent.json';
export const IDENTITY_FILE = 'identity.key';

export function loadState(dir: DataDir): AgentState {
  const state = dir.readJson<AgentState>(STATE_FILE);
  if (!state) {
    throw new AgentError(
      'agent.not_enrolled',
      `not enrolled yet (no ${dir.file(STATE_FILE)}): run keystage-agent enrol --url <cloud> --token <token>`,
    );
  }
  return state;
}

export function saveState(dir: DataDir, state: AgentState): void {
  dir.writeJson(STATE_FILE, state);
}

export function loadIdentity(dir: DataDir): string {
  if (!dir.exists(IDENTITY_FILE)) throw new AgentError('agent.not_enrolled', 'no identity key: enrol first');
  dir.assertPrivate(IDENTITY_FILE);
  return dir.read(IDENTITY_FILE).toString('utf8').trim();
}
