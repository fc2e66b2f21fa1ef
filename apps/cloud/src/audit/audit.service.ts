import { Injectable } from '@nestjs/common';
import { type AuditRecord, AuditRepository, type AuditScope } from './audit.repository.js';
import { type ActorType, type AuditContent, auditHash, GENESIS_HASH } from './audit-chain.js';

/** Who did something, as controllers hand it to services. */
export interface Actor {
  type: ActorType;
  id: string | null;
  requestId: string | null;
}

export const SYSTEM_ACTOR: Actor = { type: 'SYSTEM', id: null, requestId: null };

export interface AuditEventInput {
  action: string;
  partnerId?: string | null;
  schoolId?: string | null;
  targetType?: string | null;
  targetId?: string | null;
  /** Counts, ids, reasons: never pupil data, never secrets. */
  details?: Record<string, unknown>;
}

export type VerifyResult =
  | { ok: true; entries: number }
  | { ok: false; entries: number; seq: string; reason: 'hash_mismatch' | 'broken_link' };

/**
 * The append-only, hash-chained audit log. Each entry's hash covers its content and the previous
 * entry's hash, so changing or removing any entry breaks the chain from there on; `verify` finds
 * the first entry where it breaks.
 */
@Injectable()
export class AuditService {
  constructor(private readonly repo: AuditRepository) {}

  record(actor: Actor, event: AuditEventInput): Promise<AuditRecord> {
    const content: AuditContent = {
      at: new Date(),
      actorType: actor.type,
      actorId: actor.id,
      partnerId: event.partnerId ?? null,
      schoolId: event.schoolId ?? null,
      action: event.action,
      targetType: event.targetType ?? null,
      targetId: event.targetId ?? null,
      requestId: actor.requestId,
      details: event.details ?? {},
    };
    return this.repo.append(content);
  }

  list(scope: AuditScope, options: { before?: string; limit: number }): Promise<AuditRecord[]> {
    return this.repo.list(scope, options);
  }

  async *stream(scope: AuditScope): AsyncGenerator<AuditRecord> {
    let before: string | undefined;
    for (;;) {
      const page = await this.repo.list(scope, { ...(before ? { before } : {}), limit: 500 });
      yield* page;
      if (page.length < 500) return;
      before = page[page.length - 1]!.seq;
    }
  }

  async verify(): Promise<VerifyResult> {
    let prev = GENESIS_HASH;
    let entries = 0;
    for await (const row of this.repo.iterate()) {
      entries++;
      if (row.prevHash !== prev) return { ok: false, entries, seq: row.seq, reason: 'broken_link' };
      const { seq: _seq, prevHash, hash, ...content } = row;
      if (auditHash(prevHash, content) !== hash)
        return { ok: false, entries, seq: row.seq, reason: 'hash_mismatch' };
      prev = hash;
    }
    return { ok: true, entries };
  }
}
