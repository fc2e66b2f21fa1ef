import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { AuthedRequest } from '../auth/principal.js';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';

/** Per user / per API key limit; runs after the auth guard, which names the principal. */
@Injectable()
export class PrincipalRateLimitGuard implements CanActivate {
  constructor(
    private readonly storage: RedisThrottlerStorage,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const p = req.principal;
    if (!p) return true;
    const tracker = p.kind === 'user' ? `user:${p.userId}` : `key:${p.keyId}`;
    const record = await this.storage.increment(
      tracker,
      60_000,
      this.config.rateLimits.perPrincipal,
      60_000,
      'principal',
    );
    if (!record.isBlocked) return true;
    const retryAfter = Math.max(1, record.timeToBlockExpire);
    ctx.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(retryAfter));
    throw new AppError('request.rate_limited', 'too many requests; slow down', 429, {
      retryAfterSeconds: retryAfter,
    });
  }
}
