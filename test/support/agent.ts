import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnProcess } from './process.js';

/** The built agent CLI, run as a real process. */
export const AGENT_CLI = resolve(import.meta.dirname, '../../apps/agent/dist/cli.js');

export function tempDataDir(name: string): string {
  return join(mkdtempSync(join(tmpdir(), `ks-agent-${name}-`)), 'data');
}

export function agent(dataDir: string, args: string[], env: Record<string, string> = {}, stdin?: string) {
  return spawnProcess([AGENT_CLI, '--data-dir', dataDir, ...args], env, process.execPath, stdin);
}
