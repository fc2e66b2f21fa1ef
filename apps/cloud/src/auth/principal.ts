import type { Request } from 'express';
import type { Actor } from '../audit/audit.service.js';

export const ROLE_NAMES = [
  'support',
  'partner_admin',
  'partner_developer',
  'school_admin',
  'school_viewer',
] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export interface MembershipGrant {
  role: RoleName;
  partnerId: string | null;
  schoolId: string | null;
}

export type Principal =
  | { kind: 'user'; userId: string; email: string; sessionId: string; memberships: MembershipGrant[] }
  | { kind: 'api_key'; keyId: string; partnerId: string; scopes: string[] };

export type AuthedRequest = Request & { id?: string; principal?: Principal; breakGlassReason?: string };

export function isSupport(p: Principal | undefined): boolean {
  return p?.kind === 'user' && p.memberships.some((m) => m.role === 'support');
}

export function actorOf(req: AuthedRequest): Actor {
  const p = req.principal;
  const requestId = req.id ? String(req.id) : null;
  if (!p) return { type: 'SYSTEM', id: null, requestId };
  return p.kind === 'user'
    ? { type: 'USER', id: p.userId, requestId }
    : { type: 'API_KEY', id: p.keyId, requestId };
}
