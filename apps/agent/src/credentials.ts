import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { decrypt, encrypt } from '@keystage/crypto';
import type { DataDir } from './data-dir.js';
import { AgentError } from './errors.js';

const KEY_FILE = 'credentials.key';
const BLOB_FILE = 'credentials.enc';
const AAD = 'keystage-agent:mis-credentials:v1';

/**
 * The MIS password at rest: AES-256-GCM with a random 32-byte key in `credentials.key`, both files
 * 0600 in a 0700 directory owned by the agent's OS account. This protects the password from other
 * accounts on the machine and from copies of the encrypted file alone (backups, support bundles);
 * it does not protect against the agent's own account or an administrator of the machine — that
 * is what supervised mode (password only in memory) is for. See docs/school-guide.md.
 */
export class CredentialStore {
  constructor(private readonly dir: DataDir) {}

  has(): boolean {
    return this.dir.exists(BLOB_FILE) && this.dir.exists(KEY_FILE);
  }

  save(password: string): void {
    if (!this.dir.exists(KEY_FILE)) this.dir.write(KEY_FILE, randomBytes(32));
    this.dir.assertPrivate(KEY_FILE);
    this.dir.write(BLOB_FILE, encrypt(Buffer.from(password, 'utf8'), this.key(), AAD));
  }

  load(): string | undefined {
    if (!this.has()) return undefined;
    this.dir.assertPrivate(KEY_FILE);
    try {
      return decrypt(this.dir.read(BLOB_FILE), this.key(), AAD).toString('utf8');
    } catch {
      throw new AgentError(
        'credentials.unreadable',
        'the stored MIS credentials cannot be decrypted: set them again',
      );
    }
  }

  /** Forgets the password: both files are overwritten, then removed. */
  clear(): boolean {
    let had = false;
    for (const name of [BLOB_FILE, KEY_FILE]) {
      if (!this.dir.exists(name)) continue;
      had = true;
      // Overwrite before unlinking, so the old bytes are not simply left on disk.
      this.dir.write(name, randomBytes(64));
      rmSync(this.dir.file(name));
    }
    return had;
  }

  private key(): Buffer {
    const key = this.dir.read(KEY_FILE);
    if (key.length !== 32)
      throw new AgentError('credentials.unreadable', 'credentials key is damaged: set the credentials again');
    return key;
  }
}

/** Reads a secret without echoing it (TTY), or the first line of stdin (piped). */
export async function promptSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let value = '';
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new AgentError('agent.cancelled', 'cancelled', 130));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
