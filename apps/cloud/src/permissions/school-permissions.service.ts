import {
  aggregatePermissions,
  documentPermissions,
  type ExtractDocument,
  type ExtractPermissions,
  loadPermissionMapping,
  type PermissionMapping,
  whatBreaks,
} from '@keystage/extract-spec';
import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error.js';
import { PrismaProvider } from '../database/prisma.provider.js';

/**
 * Minimum-necessary MIS permissions for a school: the aggregate over every extract version it has
 * approved, and what would break if one group were taken away. Reads only the school's own
 * agreements.
 */
@Injectable()
export class SchoolPermissionsService {
  private mapping: PermissionMapping | undefined;

  constructor(private readonly prisma: PrismaProvider) {}

  private async approvedExtracts(schoolId: string): Promise<ExtractPermissions[]> {
    this.mapping ??= loadPermissionMapping('sims-v1');
    const rows = await this.prisma.client.agreementExtractVersion.findMany({
      where: { agreement: { schoolId, status: 'APPROVED' } },
      include: {
        agreement: { select: { partner: { select: { slug: true } } } },
        extractVersion: { select: { version: true, document: true, extract: { select: { slug: true } } } },
      },
    });
    return rows.map((r) => ({
      name: `${r.agreement.partner.slug}/${r.extractVersion.extract.slug}@${r.extractVersion.version}`,
      report: documentPermissions(r.extractVersion.document as ExtractDocument, this.mapping!),
    }));
  }

  async forSchool(schoolId: string) {
    const extracts = await this.approvedExtracts(schoolId);
    return { schoolId, extracts: extracts.map((e) => e.name), ...aggregatePermissions(extracts) };
  }

  async whatBreaks(schoolId: string, group: string) {
    const extracts = await this.approvedExtracts(schoolId);
    const report = aggregatePermissions(extracts);
    if (!report.groups.some((g) => g.group === group)) {
      throw new AppError(
        'permissions.group_not_needed',
        `no approved extract of this school needs "${group}"`,
        404,
        {
          needed: report.groups.map((g) => g.group),
        },
      );
    }
    return whatBreaks(extracts, group);
  }

  async schoolIdByUrn(urn: string): Promise<string | null> {
    return (await this.prisma.client.school.findUnique({ where: { urn }, select: { id: true } }))?.id ?? null;
  }
}
