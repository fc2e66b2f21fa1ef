import type { DataDir } from './data-dir.js';

const FILE = 'seen-jobs.json';

/**
 * Nonces of the jobs this agent has seen, kept on disk until their expiry has passed, so a job
 * replayed later — even after a restart — is refused while it would still verify.
 */
export class ReplayCache {
  private seen: Map<string, number>;

  constructor(private readonly dir: DataDir) {
    const stored = dir.readJson<Record<string, number>>(FILE) ?? {};
    this.seen = new Map(Object.entries(stored));
  }

  has(nonce: string): boolean {
    return this.seen.has(nonce);
  }

  remember(nonce: string, expiresAtMs: number, now = Date.now()): void {
    for (const [n, exp] of this.seen) if (exp < now) this.seen.delete(n);
    this.seen.set(nonce, expiresAtMs);
    this.dir.writeJson(FILE, Object.fromEntries(this.seen));
  }
}
