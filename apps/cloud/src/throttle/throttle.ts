import { type ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerOptions } from '@nestjs/throttler';
import type { Response } from 'express';
import type { AuthedRequest } from '../auth/principal.js';
import { AppError } from '../common/app-error.js';
import type { CloudConfig } from '../config/config.schema.js';

const AUTH_LIMITED = 'keystage:auth-rate-limited';
/** Marks sign-in, refresh and password-reset routes for the stricter per-IP limit. */
export const AuthRateLimited = () => SetMetadata(AUTH_LIMITED, true);

const MINUTE = 60_000;
const clientIp = (req: AuthedRequest) => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/**
 * Limits counted in Redis across every node, before authentication: per client IP, and a stricter
 * per-IP limit on the credential routes. Counters are global, not per route. The per user / per key
 * limit runs after authentication (PrincipalRateLimitGuard).
 */
export function throttlers(config: CloudConfig): ThrottlerOptions[] {
  return [
    {
      name: 'ip',
      ttl: MINUTE,
      limit: config.rateLimits.perIp,
      getTracker: (req) => clientIp(req as AuthedRequest),
      generateKey: (_ctx, tracker, name) => `${name}:${tracker}`,
    },
    {
      name: 'auth',
      ttl: MINUTE,
      limit: config.rateLimits.authPerIp,
      skipIf: (ctx) => Reflect.getMetadata(AUTH_LIMITED, ctx.getHandler()) !== true,
      getTracker: (req) => clientIp(req as AuthedRequest),
      generateKey: (_ctx, tracker, name) => `${name}:${tracker}`,
    },
  ];
}

@Injectable()
export class KeystageThrottlerGuard extends ThrottlerGuard {
  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const retryAfter = Math.max(1, detail.timeToBlockExpire);
    context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(retryAfter));
    throw new AppError('request.rate_limited', 'too many requests; slow down', 429, {
      retryAfterSeconds: retryAfter,
    });
  }
}
