import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { ApiKeyAuthenticator } from './api-key-authenticator.js';
import { AuthService } from './auth.service.js';
import { POLICY_KEY, type RoutePolicy } from './policy.js';
import { type AuthedRequest, actorOf, isSupport, type Principal } from './principal.js';

const forbidden = (message = 'not allowed') => new AppError('auth.forbidden', message, 403);

/**
 * The global guard: default deny. A route without a policy is refused for everyone; a public route
 * is open; any other route needs a valid access token or API key whose holder the policy admits for
 * the tenant named in the path. Support reading a break-glass route must give a reason, and that read
 * is audited.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    private readonly apiKeys: ApiKeyAuthenticator,
    private readonly audit: AuditService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const policy = this.reflector.getAllAndOverride<RoutePolicy | undefined>(POLICY_KEY, [
      ctx.getHandler(),
      ctx.getClass(),
    ]);
    if (!policy) throw new AppError('auth.no_policy', 'this route has no access policy', 403);
    if (policy.public) return true;
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const principal = await this.authenticate(req);
    req.principal = principal;
    await this.authorize(policy, principal, req);
    return true;
  }

  private async authenticate(req: AuthedRequest): Promise<Principal> {
    const header = req.headers.authorization;
    const apiKey = req.headers['x-api-key'];
    if (typeof apiKey === 'string' && apiKey) return this.apiKeys.authenticate(apiKey);
    if (!header) throw new AppError('auth.unauthenticated', 'sign in or present an API key', 401);
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new AppError('auth.unauthenticated', 'use an Authorization: Bearer header', 401);
    const token = match[1]!;
    return token.startsWith('ks_live_')
      ? this.apiKeys.authenticate(token)
      : this.auth.principalFromAccessToken(token);
  }

  private async authorize(
    policy: Exclude<RoutePolicy, { public: true }>,
    principal: Principal,
    req: AuthedRequest,
  ): Promise<void> {
    const tenantId = policy.tenant ? String(req.params[policy.tenant.param] ?? '') : null;
    if (principal.kind === 'api_key') {
      if (!policy.scopes) throw forbidden('API keys cannot call this route');
      const missing = policy.scopes.filter((s) => !principal.scopes.includes(s));
      if (missing.length > 0) {
        throw new AppError('auth.insufficient_scope', 'API key lacks a scope this route needs', 403, {
          missing,
        });
      }
      if (policy.tenant?.kind !== 'partner' || tenantId !== principal.partnerId) throw forbidden();
      return;
    }
    if (policy.roles.includes('support') && isSupport(principal)) {
      if (policy.breakGlass) await this.breakGlass(req, policy.tenant?.kind === 'school' ? tenantId : null);
      return;
    }
    const admitted = principal.memberships.some((m) => {
      if (m.role === 'support' || !policy.roles.includes(m.role)) return false;
      if (!policy.tenant) return true;
      return (policy.tenant.kind === 'partner' ? m.partnerId : m.schoolId) === tenantId;
    });
    if (!admitted) throw forbidden();
  }

  private async breakGlass(req: AuthedRequest, schoolId: string | null): Promise<void> {
    const reason = req.headers['x-break-glass-reason'];
    if (typeof reason !== 'string' || reason.trim().length < 10 || reason.length > 500) {
      throw new AppError(
        'auth.break_glass_reason_required',
        "reading a school's data as support needs an X-Break-Glass-Reason header (10–500 characters)",
        403,
      );
    }
    req.breakGlassReason = reason.trim();
    await this.audit.record(actorOf(req), {
      action: 'support.break_glass',
      schoolId,
      details: { reason: req.breakGlassReason, method: req.method, route: req.route?.path ?? req.path },
    });
  }
}
