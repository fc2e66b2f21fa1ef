import { hostname } from 'node:os';
import { generateSigningKeyPair } from '@keystage/crypto';
import { AGENT_VERSION } from './connection.js';
import type { DataDir } from './data-dir.js';
import { AgentError } from './errors.js';
import type { MisKind } from './mis.js';
import { type AgentState, IDENTITY_FILE, STATE_FILE, saveState } from './state.js';

interface EnrolResponse {
  agentId: string;
  schoolId: string;
  jobSigningKey: { keyId: string; publicKey: string };
  resultKey: { keyId: string; publicKey: string };
  gatewayPath: string;
}

/**
 * Generates this agent's Ed25519 key pair here (the private key never leaves the machine), registers
 * the public key with a one-time token, and pins the control plane's keys from the answer.
 */
export async function enrol(
  dir: DataDir,
  cloudUrl: string,
  token: string,
  misKind: MisKind,
): Promise<AgentState> {
  let base: URL;
  try {
    base = new URL(cloudUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new Error();
  } catch {
    throw new AgentError(
      'agent.bad_url',
      `--url must be the control plane's http(s) address, got "${cloudUrl}"`,
      2,
    );
  }
  dir.ensure();
  const keys = generateSigningKeyPair();
  let res: Response;
  try {
    res = await fetch(new URL('/agents/enrol', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token,
        publicKey: keys.publicKey,
        hostname: hostname().slice(0, 255),
        version: AGENT_VERSION,
        os: `${process.platform} ${process.arch}`,
        misKind,
      }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new AgentError(
      'agent.cloud_unreachable',
      `cannot reach the control plane at ${base.origin}: ${cause}`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as Partial<EnrolResponse> & {
    code?: string;
    message?: string;
  };
  if (!res.ok) {
    throw new AgentError(
      body.code ?? 'agent.enrol_failed',
      `enrolment refused (${res.status}): ${body.message ?? 'no reason given'}`,
    );
  }
  if (!body.agentId || !body.jobSigningKey || !body.resultKey || !body.schoolId || !body.gatewayPath) {
    throw new AgentError(
      'agent.enrol_failed',
      'the control plane answered enrolment without the expected fields',
    );
  }
  // A previous identity of this data directory is replaced (re-enrolment replaces the agent cleanly).
  dir.write(IDENTITY_FILE, `${keys.privateKey}\n`);
  const previous = dir.readJson<AgentState>(STATE_FILE);
  const state: AgentState = {
    agentId: body.agentId,
    schoolId: body.schoolId,
    cloudUrl: base.origin,
    gatewayPath: body.gatewayPath,
    jobSigningKey: body.jobSigningKey,
    resultKey: body.resultKey,
    enrolledAt: new Date().toISOString(),
    misKind,
    ...(previous?.mis ? { mis: previous.mis } : {}),
  };
  saveState(dir, state);
  return state;
}
