import { sha256Hex } from '@keystage/crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error.js';
import { AuthRepository } from './auth.repository.js';
import type { Principal } from './principal.js';

export const API_KEY_PATTERN = /^ks_live_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/;
const TOUCH_EVERY_MS = 60_000;

/** Turns a presented API key into a principal; the key itself is never stored or logged. */
@Injectable()
export class ApiKeyAuthenticator {
  constructor(private readonly repo: AuthRepository) {}

  async authenticate(key: string): Promise<Principal> {
    if (!API_KEY_PATTERN.test(key)) throw new AppError('auth.invalid_api_key', 'API key is not valid', 401);
    const record = await this.repo.findApiKeyByHash(sha256Hex(key));
    const now = new Date();
    if (!record) throw new AppError('auth.invalid_api_key', 'API key is not valid', 401);
    if (record.revokedAt) throw new AppError('auth.api_key_revoked', 'API key has been revoked', 401);
    if (record.expiresAt && record.expiresAt <= now) {
      throw new AppError('auth.api_key_expired', 'API key has expired', 401);
    }
    // Last-used time at minute precision: one write a minute per key, not one per request.
    if (!record.lastUsedAt || now.getTime() - record.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      await this.repo.touchApiKey(record.id, now);
    }
    return { kind: 'api_key', keyId: record.id, partnerId: record.partnerId, scopes: record.scopes };
  }
}
