import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { type Actor } from '../audit/audit.service.js';
import { type AuthedRequest, actorOf, type Principal, type RoleName } from './principal.js';

export const POLICY_KEY = 'keystage:policy';

/** The API key scopes partners can grant. */
export const API_KEY_SCOPES = [
  'audit:read',
  'extracts:read',
  'extracts:write',
  'agreements:read',
  'agreements:write',
  'runs:read',
  'runs:write',
  'deliveries:read',
] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/**
 * Who may call a route. Every route must carry one (the auth guard denies routes without, and the
 * isolation matrix test fails on them). Roles are alternatives; a tenant role must belong to the
 * tenant named by the path parameter `tenant.param`. API keys may call only routes that list
 * `scopes`, only for their own partner, and only with every scope listed.
 */
export type RoutePolicy =
  | { public: true }
  | {
      public?: false;
      roles: readonly RoleName[];
      tenant?: { kind: 'partner' | 'school'; param: string };
      scopes?: readonly ApiKeyScope[];
      /** Support reading this route reads a school's data: it needs a reason and is audited. */
      breakGlass?: boolean;
    };

export const Policy = (policy: RoutePolicy) => SetMetadata(POLICY_KEY, policy);
export const Public = () => Policy({ public: true });

/** The authenticated principal of the request (routes with a non-public policy always have one). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<AuthedRequest>();
  if (!req.principal) throw new Error('CurrentPrincipal used on a route without authentication');
  return req.principal;
});

/** The actor for audit entries: the principal plus the request id. */
export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor => {
  return actorOf(ctx.switchToHttp().getRequest<AuthedRequest>());
});
