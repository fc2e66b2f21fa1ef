import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  decrypt,
  deriveKey,
  encrypt,
  generateSigningKeyPair,
  generateWrappingKeyPair,
  publicKeyFingerprint,
} from '@keystage/crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { StartupError } from '../startup-error.js';

export type KeyPurpose = 'job-signing' | 'result-wrapping';

export interface PlatformKeyPair {
  purpose: KeyPurpose;
  keyId: string;
  publicKey: string;
  /** Parsed once: parsing a key per use costs more than signing with it. */
  privateKeyObject: KeyObject;
}

const LOCK = 7_246_002;

/**
 * The control plane's job-signing (Ed25519) and result-wrapping (X25519) keys. Made once, on first
 * use, under a lock so concurrent nodes agree; private keys are stored encrypted with a key derived
 * from KEYSTAGE_SECRET, and kept decrypted only in memory.
 */
@Injectable()
export class PlatformKeysService implements OnApplicationBootstrap {
  private readonly cache = new Map<KeyPurpose, Promise<PlatformKeyPair>>();
  private readonly kek: Buffer;

  constructor(
    private readonly prisma: PrismaProvider,
    @Inject(CLOUD_CONFIG) config: CloudConfig,
  ) {
    this.kek = deriveKey(Buffer.from(config.secret, 'utf8'), 'platform-keys');
  }

  /**
   * A node started with another KEYSTAGE_SECRET than the one the stored keys were sealed with
   * could not sign a job or open a result: it refuses to start, saying so, rather than failing
   * every enrolment and upload later.
   */
  async onApplicationBootstrap(): Promise<void> {
    let stored: { purpose: string; privateKeyEncrypted: string }[];
    try {
      stored = await this.prisma.client.platformKey.findMany({
        where: { active: true },
        select: { purpose: true, privateKeyEncrypted: true },
      });
    } catch {
      // PostgreSQL is unreachable: the node starts not ready (/health/ready says so); the keys are
      // checked again when first used.
      return;
    }
    for (const row of stored) {
      try {
        decrypt(Buffer.from(row.privateKeyEncrypted, 'base64'), this.kek, row.purpose);
      } catch {
        throw new StartupError(
          `KEYSTAGE_SECRET is not the secret this database's ${row.purpose} key was stored with: ` +
            'start with the original secret (for `pnpm demo`: the `.keystage/demo-secret` of the ' +
            'checkout that set the database up, or drop that database to start afresh)',
        );
      }
    }
  }

  active(purpose: KeyPurpose): Promise<PlatformKeyPair> {
    let pending = this.cache.get(purpose);
    if (!pending) {
      pending = this.load(purpose);
      pending.catch(() => this.cache.delete(purpose));
      this.cache.set(purpose, pending);
    }
    return pending;
  }

  private async load(purpose: KeyPurpose): Promise<PlatformKeyPair> {
    const row = await this.prisma.client.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${LOCK})`;
      const existing = await tx.platformKey.findFirst({
        where: { purpose, active: true },
        orderBy: { createdAt: 'desc' },
      });
      if (existing) return existing;
      const pair = purpose === 'job-signing' ? generateSigningKeyPair() : generateWrappingKeyPair();
      return tx.platformKey.create({
        data: {
          purpose,
          keyId: publicKeyFingerprint(pair.publicKey),
          publicKey: pair.publicKey,
          privateKeyEncrypted: encrypt(Buffer.from(pair.privateKey, 'utf8'), this.kek, purpose).toString(
            'base64',
          ),
        },
      });
    });
    let privateKey: string;
    try {
      privateKey = decrypt(Buffer.from(row.privateKeyEncrypted, 'base64'), this.kek, purpose).toString(
        'utf8',
      );
    } catch {
      throw new Error(
        `cannot decrypt the ${purpose} key: KEYSTAGE_SECRET differs from the one it was stored with`,
      );
    }
    return {
      purpose,
      keyId: row.keyId,
      publicKey: row.publicKey,
      privateKeyObject: createPrivateKey({
        key: Buffer.from(privateKey, 'base64'),
        format: 'der',
        type: 'pkcs8',
      }),
    };
  }
}
