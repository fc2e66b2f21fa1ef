import { createHash } from 'node:crypto';
import { canonicalJson } from '@keystage/crypto';

/** prev_hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

export type ActorType = 'USER' | 'API_KEY' | 'AGENT' | 'SYSTEM';

/** What an audit entry says; `hash` covers all of it plus the previous entry's hash. */
export interface AuditContent {
  at: Date;
  actorType: ActorType;
  actorId: string | null;
  partnerId: string | null;
  schoolId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

export function auditHash(prevHash: string, entry: AuditContent): string {
  const body = canonicalJson({ ...entry, at: entry.at.toISOString() });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}
