import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

export type AgreementStatus = 'REQUESTED' | 'APPROVED' | 'REJECTED' | 'REVOKED';

export interface AgreementRecord {
  id: string;
  partnerId: string;
  schoolId: string;
  status: AgreementStatus;
  purpose: string;
  lawfulBasis: string;
  retentionDays: number;
  decisionNote: string | null;
  requestedAt: Date;
  decidedAt: Date | null;
  revokedAt: Date | null;
  extractVersions: { extractVersionId: string; extractId: string; version: number; columns: unknown }[];
}

export interface VersionDoc {
  id: string;
  extractId: string;
  version: number;
  document: unknown;
}

const INCLUDE = {
  extractVersions: { include: { extractVersion: { select: { extractId: true, version: true } } } },
} as const;

type Row = {
  id: string;
  partnerId: string;
  schoolId: string;
  status: AgreementStatus;
  purpose: string;
  lawfulBasis: string;
  retentionDays: number;
  decisionNote: string | null;
  requestedAt: Date;
  decidedAt: Date | null;
  revokedAt: Date | null;
  extractVersions: {
    extractVersionId: string;
    columns: unknown;
    extractVersion: { extractId: string; version: number };
  }[];
};

const toRecord = (r: Row): AgreementRecord => ({
  id: r.id,
  partnerId: r.partnerId,
  schoolId: r.schoolId,
  status: r.status,
  purpose: r.purpose,
  lawfulBasis: r.lawfulBasis,
  retentionDays: r.retentionDays,
  decisionNote: r.decisionNote,
  requestedAt: r.requestedAt,
  decidedAt: r.decidedAt,
  revokedAt: r.revokedAt,
  extractVersions: r.extractVersions.map((v) => ({
    extractVersionId: v.extractVersionId,
    extractId: v.extractVersion.extractId,
    version: v.extractVersion.version,
    columns: v.columns,
  })),
});

/** Data agreements. Reads and writes name the partner or the school they belong to. */
@Injectable()
export class AgreementsRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  /** The partner's own versions among `ids`, with their documents. */
  partnerVersions(partnerId: string, ids: string[]): Promise<VersionDoc[]> {
    return this.prisma.client.extractVersion.findMany({
      where: { id: { in: ids }, extract: { partnerId } },
      select: { id: true, extractId: true, version: true, document: true },
    });
  }

  schoolExists(schoolId: string): Promise<boolean> {
    return this.prisma.client.school.count({ where: { id: schoolId } }).then((n) => n > 0);
  }

  async create(
    partnerId: string,
    data: {
      schoolId: string;
      purpose: string;
      lawfulBasis: string;
      retentionDays: number;
      requestedById: string | null;
    },
    versions: { extractVersionId: string; columns: object }[],
  ): Promise<AgreementRecord> {
    const row = await this.prisma.client.dataAgreement.create({
      data: { partnerId, ...data, extractVersions: { create: versions } },
      include: INCLUDE,
    });
    return toRecord(row as Row);
  }

  async forPartner(partnerId: string): Promise<AgreementRecord[]> {
    const rows = await this.prisma.client.dataAgreement.findMany({
      where: { partnerId },
      orderBy: { requestedAt: 'desc' },
      include: INCLUDE,
    });
    return rows.map((r) => toRecord(r as Row));
  }

  async forSchool(schoolId: string): Promise<AgreementRecord[]> {
    const rows = await this.prisma.client.dataAgreement.findMany({
      where: { schoolId },
      orderBy: { requestedAt: 'desc' },
      include: INCLUDE,
    });
    return rows.map((r) => toRecord(r as Row));
  }

  /** Moves an agreement of this school from one of `from` to `to`; null when it is not there or not in `from`. */
  async transition(
    schoolId: string,
    id: string,
    from: AgreementStatus[],
    to: AgreementStatus,
    data: { decidedById?: string | null; decisionNote?: string | null; at: Date },
  ): Promise<AgreementRecord | null> {
    const { count } = await this.prisma.client.dataAgreement.updateMany({
      where: { id, schoolId, status: { in: from } },
      data: {
        status: to,
        ...(to === 'REVOKED'
          ? { revokedAt: data.at }
          : { decidedAt: data.at, decidedById: data.decidedById ?? null }),
        ...(data.decisionNote !== undefined ? { decisionNote: data.decisionNote } : {}),
      },
    });
    if (count === 0) return null;
    const row = await this.prisma.client.dataAgreement.findFirst({
      where: { id, schoolId },
      include: INCLUDE,
    });
    return row ? toRecord(row as Row) : null;
  }

  async findForSchool(schoolId: string, id: string): Promise<AgreementRecord | null> {
    const row = await this.prisma.client.dataAgreement.findFirst({
      where: { id, schoolId },
      include: INCLUDE,
    });
    return row ? toRecord(row as Row) : null;
  }

  /** Stops everything that would still run under an agreement: queued runs cancelled, schedules off. */
  async stopRuns(
    agreementId: string,
    at: Date,
  ): Promise<{ runsCancelled: number; schedulesStopped: number }> {
    return this.prisma.client.$transaction(async (tx) => {
      const runs = await tx.run.updateMany({
        where: { agreementId, state: { in: ['SCHEDULED', 'DISPATCHED', 'RUNNING'] } },
        data: {
          state: 'CANCELLED',
          finishedAt: at,
          errorCode: 'agreement.revoked',
          errorMessage: 'the school revoked the agreement',
        },
      });
      const schedules = await tx.schedule.updateMany({
        where: { agreementId, active: true },
        data: { active: false, nextDueAt: null },
      });
      return { runsCancelled: runs.count, schedulesStopped: schedules.count };
    });
  }

  /** Approved agreements of a school that cover a version of `extractId`, newest approved version first. */
  async approvedCovering(
    schoolId: string,
    extractId: string,
  ): Promise<{ agreementId: string; version: VersionDoc }[]> {
    const rows = await this.prisma.client.agreementExtractVersion.findMany({
      where: { agreement: { schoolId, status: 'APPROVED' }, extractVersion: { extractId } },
      include: { extractVersion: { select: { id: true, extractId: true, version: true, document: true } } },
      orderBy: { extractVersion: { version: 'desc' } },
    });
    return rows.map((r) => ({ agreementId: r.agreementId, version: r.extractVersion }));
  }

  version(extractVersionId: string): Promise<VersionDoc | null> {
    return this.prisma.client.extractVersion.findUnique({
      where: { id: extractVersionId },
      select: { id: true, extractId: true, version: true, document: true },
    });
  }
}
