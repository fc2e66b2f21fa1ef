import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';
import { type AuditContent, auditHash, GENESIS_HASH } from './audit-chain.js';

export interface AuditRecord extends AuditContent {
  seq: string;
  prevHash: string;
  hash: string;
}

/** Which entries a reader may see: one partner's, one school's, or (support) all. */
export type AuditScope = { partnerId: string } | { schoolId: string } | { all: true };

// Any fixed number: appends take this transaction-scoped lock so the chain has one writer at a time.
const CHAIN_LOCK = 7_246_001;

@Injectable()
export class AuditRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  async append(entry: AuditContent): Promise<AuditRecord> {
    return this.prisma.client.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`;
      const last = await tx.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { hash: true } });
      const prevHash = last?.hash ?? GENESIS_HASH;
      const hash = auditHash(prevHash, entry);
      const row = await tx.auditEvent.create({
        data: { ...entry, details: entry.details as object, prevHash, hash },
      });
      return toRecord(row);
    });
  }

  /** Newest first; `before` is the seq of the last entry of the previous page. */
  async list(scope: AuditScope, options: { before?: string; limit: number }): Promise<AuditRecord[]> {
    const rows = await this.prisma.client.auditEvent.findMany({
      where: {
        ...scopeWhere(scope),
        ...(options.before ? { seq: { lt: BigInt(options.before) } } : {}),
      },
      orderBy: { seq: 'desc' },
      take: options.limit,
    });
    return rows.map(toRecord);
  }

  /** The whole chain in order, in batches, with bounded memory. */
  async *iterate(batchSize = 1000): AsyncGenerator<AuditRecord> {
    let after = 0n;
    for (;;) {
      const rows = await this.prisma.client.auditEvent.findMany({
        where: { seq: { gt: after } },
        orderBy: { seq: 'asc' },
        take: batchSize,
      });
      for (const row of rows) yield toRecord(row);
      if (rows.length < batchSize) return;
      after = rows[rows.length - 1]!.seq;
    }
  }
}

function scopeWhere(scope: AuditScope) {
  if ('partnerId' in scope) return { partnerId: scope.partnerId };
  if ('schoolId' in scope) return { schoolId: scope.schoolId };
  return {};
}

function toRecord(row: {
  seq: bigint;
  at: Date;
  actorType: AuditContent['actorType'];
  actorId: string | null;
  partnerId: string | null;
  schoolId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  details: unknown;
  prevHash: string;
  hash: string;
}): AuditRecord {
  return {
    seq: row.seq.toString(),
    at: row.at,
    actorType: row.actorType,
    actorId: row.actorId,
    partnerId: row.partnerId,
    schoolId: row.schoolId,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    requestId: row.requestId,
    details: (row.details ?? {}) as Record<string, unknown>,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}
