import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';

const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, cost: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** cost;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/**
 * scrypt password hashes, stored as `scrypt$<log2 N>$<r>$<p>$<salt b64url>$<hash b64url>` so the cost
 * can rise later without breaking existing hashes (`needsRehash`).
 */
@Injectable()
export class PasswordHasher {
  private readonly cost: number;

  constructor(@Inject(CLOUD_CONFIG) config: CloudConfig) {
    this.cost = config.auth.passwordHashCost;
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await scryptAsync(password, salt, this.cost, 8, 1);
    return `scrypt$${this.cost}$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
  }

  async verify(password: string, stored: string): Promise<boolean> {
    const parts = stored.split('$');
    if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
    const [, cost, r, p, salt, hash] = parts as [string, string, string, string, string, string];
    const expected = Buffer.from(hash, 'base64url');
    const key = await scryptAsync(
      password,
      Buffer.from(salt, 'base64url'),
      Number(cost),
      Number(r),
      Number(p),
    );
    return key.length === expected.length && timingSafeEqual(key, expected);
  }

  /** A hash made once to spend the same time on unknown e-mails as on known ones. */
  private dummy: Promise<string> | undefined;
  async burn(password: string): Promise<void> {
    this.dummy ??= this.hash('not-a-real-password');
    await this.verify(password, await this.dummy);
  }
}
