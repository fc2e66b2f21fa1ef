import { readdirSync, statSync } from 'node:fs';
import { arch, cpus, freemem, platform, release, totalmem } from 'node:os';
import { AGENT_VERSION } from './connection.js';
import type { DataDir } from './data-dir.js';
import type { AgentState } from './state.js';
import { readStatus } from './status.js';

/**
 * What support needs to help: versions, machine, connection state, file modes — and nothing secret:
 * no password, no private key, no MIS location beyond its kind and host, no row data.
 */
export function diagnostics(dir: DataDir): Record<string, unknown> {
  const state = dir.readJson<AgentState>('agent.json');
  const files = (() => {
    try {
      return readdirSync(dir.path).map((name) => {
        const s = statSync(dir.file(name));
        return { name, bytes: s.size, mode: (s.mode & 0o777).toString(8) };
      });
    } catch {
      return [];
    }
  })();
  let misHost: string | null = null;
  if (state?.mis) {
    try {
      misHost = state.mis.kind === 'DEMO_SQLITE' ? 'local file' : new URL(state.mis.location).host;
    } catch {
      misHost = 'unparseable location';
    }
  }
  return {
    agentVersion: AGENT_VERSION,
    node: process.version,
    os: {
      platform: platform(),
      release: release(),
      arch: arch(),
      cpus: cpus().length,
      totalMem: totalmem(),
      freeMem: freemem(),
    },
    enrolled: state
      ? {
          agentId: state.agentId,
          schoolId: state.schoolId,
          cloud: state.cloudUrl,
          enrolledAt: state.enrolledAt,
          jobSigningKeyId: state.jobSigningKey.keyId,
        }
      : null,
    mis: state?.mis ? { kind: state.mis.kind, host: misHost } : null,
    status: readStatus(dir) ?? null,
    dataDir: { path: dir.path, files },
  };
}
