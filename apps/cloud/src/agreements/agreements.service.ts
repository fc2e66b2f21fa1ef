import type { ExtractDocument } from '@keystage/extract-spec';
import { Injectable } from '@nestjs/common';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { diffVersions } from '../extracts/extract-diff.js';
import { type AgreementRecord, AgreementsRepository } from './agreements.repository.js';

export const LAWFUL_BASES = [
  'consent',
  'contract',
  'legal_obligation',
  'vital_interests',
  'public_task',
  'legitimate_interests',
] as const;

export interface AgreementRequest {
  schoolId: string;
  extractVersionIds: string[];
  purpose: string;
  lawfulBasis: (typeof LAWFUL_BASES)[number];
  retentionDays: number;
}

export type Coverage =
  | { covered: true; agreementId: string; approvedVersion: number; carriedOver: boolean }
  | { covered: false; reason: 'no_agreement' | 'widens' | 'unknown_version' };

/** The exact columns an agreement shows the school: per dataset, name and personal-data category. */
function columnsOf(document: ExtractDocument) {
  return Object.fromEntries(
    document.datasets.map((d) => [d.name, d.columns.map((c) => ({ name: c.name, category: c.category }))]),
  );
}

/**
 * Data agreements: a partner asks, a school's admin decides. A run is allowed only under an approved
 * agreement covering its extract version — or a later version of the same extract that reads no more
 * (no new column, table, column read or personal-data category); anything wider needs a new approval.
 * Revoking stops everything at once and is recorded as a deletion request to the partner.
 */
export type AgreementListener = (agreementId: string, actor: Actor) => Promise<void>;

@Injectable()
export class AgreementsService {
  private readonly approvedListeners: AgreementListener[] = [];
  private readonly revokedListeners: AgreementListener[] = [];

  /** Scheduling subscribes here: an approval plans runs, a revocation stops agents' jobs. */
  onApproved(listener: AgreementListener): void {
    this.approvedListeners.push(listener);
  }

  onRevoked(listener: AgreementListener): void {
    this.revokedListeners.push(listener);
  }

  constructor(
    private readonly repo: AgreementsRepository,
    private readonly audit: AuditService,
  ) {}

  async request(partnerId: string, input: AgreementRequest, actor: Actor): Promise<AgreementRecord> {
    const ids = [...new Set(input.extractVersionIds)];
    const versions = await this.repo.partnerVersions(partnerId, ids);
    if (versions.length !== ids.length) {
      const known = new Set(versions.map((v) => v.id));
      throw new AppError(
        'agreement.unknown_extract_version',
        'some extract versions are not this partner’s',
        422,
        {
          unknown: ids.filter((id) => !known.has(id)),
        },
      );
    }
    if (!(await this.repo.schoolExists(input.schoolId))) throw AppError.notFound('school');
    const agreement = await this.repo.create(
      partnerId,
      {
        schoolId: input.schoolId,
        purpose: input.purpose,
        lawfulBasis: input.lawfulBasis,
        retentionDays: input.retentionDays,
        requestedById: actor.type === 'USER' ? actor.id : null,
      },
      versions.map((v) => ({ extractVersionId: v.id, columns: columnsOf(v.document as ExtractDocument) })),
    );
    await this.audit.record(actor, {
      action: 'agreement.requested',
      partnerId,
      schoolId: input.schoolId,
      targetType: 'agreement',
      targetId: agreement.id,
      details: { extractVersionIds: ids, lawfulBasis: input.lawfulBasis, retentionDays: input.retentionDays },
    });
    return agreement;
  }

  forPartner(partnerId: string) {
    return this.repo.forPartner(partnerId);
  }

  forSchool(schoolId: string) {
    return this.repo.forSchool(schoolId);
  }

  approve(schoolId: string, id: string, note: string | undefined, actor: Actor) {
    return this.decide(schoolId, id, 'APPROVED', note, actor);
  }

  reject(schoolId: string, id: string, note: string | undefined, actor: Actor) {
    return this.decide(schoolId, id, 'REJECTED', note, actor);
  }

  async revoke(schoolId: string, id: string, reason: string, actor: Actor) {
    const at = new Date();
    const agreement = await this.repo.transition(schoolId, id, ['APPROVED', 'REQUESTED'], 'REVOKED', {
      decisionNote: reason,
      at,
    });
    if (!agreement) throw await this.notDecidable(schoolId, id, 'revoked');
    const stopped = await this.repo.stopRuns(id, at);
    await this.audit.record(actor, {
      action: 'agreement.revoked',
      partnerId: agreement.partnerId,
      schoolId,
      targetType: 'agreement',
      targetId: id,
      details: { reason, ...stopped },
    });
    // The partner must delete what it received under this agreement; the request is on record.
    await this.audit.record(actor, {
      action: 'agreement.deletion_requested',
      partnerId: agreement.partnerId,
      schoolId,
      targetType: 'agreement',
      targetId: id,
      details: { reason },
    });
    for (const listener of this.revokedListeners) await listener(id, actor);
    return { ...agreement, ...stopped, deletionRequested: true };
  }

  /** Whether a run of this extract version at this school is allowed, and under which agreement. */
  async coverage(schoolId: string, extractVersionId: string): Promise<Coverage> {
    const target = await this.repo.version(extractVersionId);
    if (!target) return { covered: false, reason: 'unknown_version' };
    const approved = await this.repo.approvedCovering(schoolId, target.extractId);
    if (approved.length === 0) return { covered: false, reason: 'no_agreement' };
    const exact = approved.find((a) => a.version.id === extractVersionId);
    if (exact)
      return {
        covered: true,
        agreementId: exact.agreementId,
        approvedVersion: target.version,
        carriedOver: false,
      };
    for (const a of approved) {
      const diff = diffVersions(
        { version: a.version.version, document: a.version.document as ExtractDocument },
        { version: target.version, document: target.document as ExtractDocument },
      );
      if (!diff.widens)
        return {
          covered: true,
          agreementId: a.agreementId,
          approvedVersion: a.version.version,
          carriedOver: true,
        };
    }
    return { covered: false, reason: 'widens' };
  }

  private async decide(
    schoolId: string,
    id: string,
    to: 'APPROVED' | 'REJECTED',
    note: string | undefined,
    actor: Actor,
  ) {
    const agreement = await this.repo.transition(schoolId, id, ['REQUESTED'], to, {
      decidedById: actor.type === 'USER' ? actor.id : null,
      decisionNote: note ?? null,
      at: new Date(),
    });
    if (!agreement) throw await this.notDecidable(schoolId, id, to === 'APPROVED' ? 'approved' : 'rejected');
    await this.audit.record(actor, {
      action: to === 'APPROVED' ? 'agreement.approved' : 'agreement.rejected',
      partnerId: agreement.partnerId,
      schoolId,
      targetType: 'agreement',
      targetId: id,
      details: { extractVersionIds: agreement.extractVersions.map((v) => v.extractVersionId) },
    });
    if (to === 'APPROVED') for (const listener of this.approvedListeners) await listener(id, actor);
    return agreement;
  }

  private async notDecidable(schoolId: string, id: string, verb: string): Promise<AppError> {
    const existing = await this.repo.findForSchool(schoolId, id);
    if (!existing) return AppError.notFound('agreement');
    return new AppError(
      'agreement.invalid_state',
      `an agreement that is ${existing.status.toLowerCase()} cannot be ${verb}`,
      409,
    );
  }
}
