import {
  documentPermissions,
  type ExtractDocument,
  type ExtractProblem,
  loadPermissionMapping,
  type PermissionMapping,
  type PermissionReport,
  parseExtractDocument,
} from '@keystage/extract-spec';
import { Injectable } from '@nestjs/common';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { diffVersions } from './extract-diff.js';
import { ExtractsRepository, type ExtractVersionRecord } from './extracts.repository.js';

export interface ValidationResult {
  ok: boolean;
  hash?: string;
  problems: readonly ExtractProblem[];
  warnings: readonly ExtractProblem[];
  permissions?: PermissionReport;
}

/** Authoring and publishing extracts. Versions never change once published. */
@Injectable()
export class ExtractsService {
  private mapping: PermissionMapping | undefined;

  constructor(
    private readonly repo: ExtractsRepository,
    private readonly audit: AuditService,
  ) {}

  private permissionMapping(): PermissionMapping {
    this.mapping ??= loadPermissionMapping('sims-v1');
    return this.mapping;
  }

  validate(text: string): ValidationResult {
    const parsed = parseExtractDocument(text);
    if (!parsed.ok) return { ok: false, problems: parsed.problems, warnings: [] };
    return {
      ok: true,
      hash: parsed.hash,
      problems: [],
      warnings: parsed.warnings,
      permissions: documentPermissions(parsed.document, this.permissionMapping()),
    };
  }

  async publish(partnerId: string, text: string, actor: Actor) {
    const parsed = parseExtractDocument(text);
    if (!parsed.ok) {
      throw new AppError(
        'extract.invalid',
        `the extract document has ${parsed.problems.length} problem(s)`,
        422,
        parsed.problems,
      );
    }
    const doc = parsed.document;
    const { version, created } = await this.repo.publish(partnerId, {
      slug: doc.name,
      name: doc.title ?? doc.name,
      description: doc.description,
      misType: doc.mis,
      document: doc as unknown as object,
      documentHash: parsed.hash,
      publishedById: actor.type === 'USER' ? actor.id : null,
    });
    if (created) {
      await this.audit.record(actor, {
        action: 'extract.published',
        partnerId,
        targetType: 'extract_version',
        targetId: version.id,
        details: { extract: doc.name, version: version.version, hash: parsed.hash },
      });
    }
    return { ...this.view(version), created };
  }

  list(partnerId: string) {
    return this.repo.list(partnerId);
  }

  async versions(partnerId: string, extractId: string) {
    if (!(await this.repo.findExtract(partnerId, extractId))) throw AppError.notFound('extract');
    return (await this.repo.versions(partnerId, extractId)).map((v) => this.view(v));
  }

  async version(partnerId: string, extractId: string, version: number) {
    const v = await this.repo.version(partnerId, extractId, version);
    if (!v) throw AppError.notFound('extract_version');
    return {
      ...this.view(v),
      document: v.document,
      permissions: documentPermissions(v.document as ExtractDocument, this.permissionMapping()),
    };
  }

  async diff(partnerId: string, extractId: string, from: number, to: number) {
    const [a, b] = await Promise.all([
      this.repo.version(partnerId, extractId, from),
      this.repo.version(partnerId, extractId, to),
    ]);
    if (!a || !b) throw AppError.notFound('extract_version');
    return diffVersions(
      { version: a.version, document: a.document as ExtractDocument },
      { version: b.version, document: b.document as ExtractDocument },
    );
  }

  private view(v: ExtractVersionRecord) {
    return {
      id: v.id,
      extractId: v.extractId,
      version: v.version,
      misType: v.misType,
      documentHash: v.documentHash,
      publishedAt: v.publishedAt,
    };
  }
}
