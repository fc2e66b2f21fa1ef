import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from './errors.js';

/**
 * The agent's data directory: identity key, pinned control-plane keys, encrypted MIS credentials,
 * replay cache, status. Mode 0700; every file 0600, written atomically (temp file + rename).
 */
export class DataDir {
  constructor(readonly path: string) {}

  static resolve(given?: string): DataDir {
    return new DataDir(given ?? process.env.KEYSTAGE_AGENT_DATA_DIR ?? join(homedir(), '.keystage-agent'));
  }

  ensure(): void {
    try {
      mkdirSync(this.path, { recursive: true, mode: 0o700 });
      chmodSync(this.path, 0o700);
    } catch (err) {
      throw new AgentError(
        'agent.data_dir',
        `cannot use data directory ${this.path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  }

  file(name: string): string {
    return join(this.path, name);
  }

  exists(name: string): boolean {
    return existsSync(this.file(name));
  }

  read(name: string): Buffer {
    return readFileSync(this.file(name));
  }

  readJson<T>(name: string): T | undefined {
    if (!this.exists(name)) return undefined;
    try {
      return JSON.parse(this.read(name).toString('utf8')) as T;
    } catch {
      throw new AgentError('agent.data_corrupt', `${this.file(name)} is not valid JSON`);
    }
  }

  write(name: string, content: string | Buffer): void {
    this.ensure();
    const target = this.file(name);
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, content, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, target);
  }

  writeJson(name: string, value: unknown): void {
    this.write(name, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Refuses to use a secret file others can read (someone loosened its mode). */
  assertPrivate(name: string): void {
    const mode = statSync(this.file(name)).mode & 0o077;
    if (mode !== 0) {
      throw new AgentError(
        'agent.insecure_file',
        `${this.file(name)} is readable by other users: chmod 600 it`,
      );
    }
  }
}
