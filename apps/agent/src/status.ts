import type { DataDir } from './data-dir.js';

const FILE = 'status.json';

export interface AgentStatusFile {
  pid?: number;
  connection?: 'online' | 'reconnecting' | 'refused' | 'stopped';
  connectedAt?: string;
  lastDisconnectAt?: string;
  refusal?: { code: string; message: string; at: string };
  lastRun?: { runId: string; outcome: string; at: string };
  supervised?: boolean;
}

/** Merges facts into status.json, which `keystage-agent status` reads. */
export function recordStatus(dir: DataDir, update: AgentStatusFile): void {
  try {
    const current = dir.readJson<AgentStatusFile>(FILE) ?? {};
    dir.writeJson(FILE, { ...current, ...update, updatedAt: new Date().toISOString() });
  } catch {
    // Status is informational; a full disk must not stop the agent here.
  }
}

export function readStatus(dir: DataDir): (AgentStatusFile & { updatedAt?: string }) | undefined {
  return dir.readJson(FILE);
}
