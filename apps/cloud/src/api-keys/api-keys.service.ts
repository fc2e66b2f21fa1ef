import { randomBytes } from 'node:crypto';
import { sha256Hex } from '@keystage/crypto';
import { Injectable } from '@nestjs/common';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { ApiKeysRepository, type ApiKeyView } from './api-keys.repository.js';

const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomPrefix(): string {
  return [...randomBytes(8)].map((b) => ALPHANUM[b % ALPHANUM.length]).join('');
}

@Injectable()
export class ApiKeysService {
  constructor(
    private readonly repo: ApiKeysRepository,
    private readonly audit: AuditService,
  ) {}

  /** Creates a key; the full key is in this answer only. */
  async create(
    partnerId: string,
    input: { name: string; scopes: string[]; expiresInDays?: number | undefined },
    actor: Actor,
  ): Promise<ApiKeyView & { key: string }> {
    const prefix = randomPrefix();
    const key = `ks_live_${prefix}_${randomBytes(32).toString('base64url')}`;
    const view = await this.repo.create(partnerId, {
      name: input.name,
      prefix,
      keyHash: sha256Hex(key),
      scopes: [...new Set(input.scopes)].sort(),
      expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
      createdById: actor.type === 'USER' ? actor.id : null,
    });
    await this.audit.record(actor, {
      action: 'api_key.created',
      partnerId,
      targetType: 'api_key',
      targetId: view.id,
      details: {
        name: view.name,
        prefix,
        scopes: view.scopes,
        expiresAt: view.expiresAt?.toISOString() ?? null,
      },
    });
    return { ...view, key };
  }

  list(partnerId: string): Promise<ApiKeyView[]> {
    return this.repo.list(partnerId);
  }

  async revoke(partnerId: string, id: string, actor: Actor): Promise<ApiKeyView> {
    const view = await this.repo.revoke(partnerId, id);
    if (!view) throw AppError.notFound('api_key');
    await this.audit.record(actor, {
      action: 'api_key.revoked',
      partnerId,
      targetType: 'api_key',
      targetId: id,
    });
    return view;
  }
}
