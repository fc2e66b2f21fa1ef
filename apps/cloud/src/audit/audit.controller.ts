import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { Policy } from '../auth/policy.js';
import { Uuid, ZodPipe } from '../common/zod-pipe.js';
import type { AuditRecord, AuditScope } from './audit.repository.js';
import { AuditService } from './audit.service.js';

const Page = z.strictObject({
  before: z
    .string()
    .regex(/^\d{1,19}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const Export = z.strictObject({ format: z.enum(['ndjson', 'csv']).default('ndjson') });
type PageQuery = z.infer<typeof Page>;

const CSV_COLUMNS = [
  'seq',
  'at',
  'actorType',
  'actorId',
  'partnerId',
  'schoolId',
  'action',
  'targetType',
  'targetId',
  'requestId',
  'details',
  'prevHash',
  'hash',
] as const;

function csvCell(value: unknown): string {
  const text =
    value instanceof Date
      ? value.toISOString()
      : typeof value === 'object' && value !== null
        ? JSON.stringify(value)
        : String(value ?? '');
  // Quote everything; neutralise spreadsheet formulas (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return `"${safe.replace(/"/g, '""')}"`;
}

@ApiTags('audit')
@ApiBearerAuth()
@Controller()
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get('partners/:partnerId/audit')
  @Policy({
    roles: ['partner_admin', 'support'],
    tenant: { kind: 'partner', param: 'partnerId' },
    scopes: ['audit:read'],
  })
  @ApiOperation({ summary: "The partner's audit entries, newest first; page with ?before=<seq>." })
  partner(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Query(new ZodPipe(Page)) page: PageQuery,
  ) {
    return this.page({ partnerId }, page);
  }

  @Get('schools/:schoolId/audit')
  @Policy({
    roles: ['school_admin', 'school_viewer', 'support'],
    tenant: { kind: 'school', param: 'schoolId' },
  })
  @ApiOperation({ summary: "The school's audit entries: every movement of its data, newest first." })
  school(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string, @Query(new ZodPipe(Page)) page: PageQuery) {
    return this.page({ schoolId }, page);
  }

  @Get('partners/:partnerId/audit/export')
  @Policy({
    roles: ['partner_admin', 'support'],
    tenant: { kind: 'partner', param: 'partnerId' },
    scopes: ['audit:read'],
  })
  @ApiOperation({ summary: 'Every audit entry of the partner as NDJSON or CSV (streamed).' })
  exportPartner(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Query(new ZodPipe(Export)) q: z.infer<typeof Export>,
    @Res() res: Response,
  ) {
    return this.export({ partnerId }, q.format, res);
  }

  @Get('schools/:schoolId/audit/export')
  @Policy({ roles: ['school_admin', 'support'], tenant: { kind: 'school', param: 'schoolId' } })
  @ApiOperation({ summary: 'Every audit entry of the school as NDJSON or CSV (streamed).' })
  exportSchool(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Query(new ZodPipe(Export)) q: z.infer<typeof Export>,
    @Res() res: Response,
  ) {
    return this.export({ schoolId }, q.format, res);
  }

  @Get('audit/verify')
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'Check the whole hash chain (support); names the first broken entry.' })
  verify() {
    return this.audit.verify();
  }

  private async page(scope: AuditScope, page: PageQuery) {
    const entries = await this.audit.list(scope, {
      ...(page.before ? { before: page.before } : {}),
      limit: page.limit,
    });
    const last = entries[entries.length - 1];
    return { entries, next: entries.length === page.limit && last ? last.seq : null };
  }

  private async export(scope: AuditScope, format: 'ndjson' | 'csv', res: Response): Promise<void> {
    res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    res.setHeader('content-disposition', `attachment; filename="audit.${format}"`);
    if (format === 'csv') res.write(`${CSV_COLUMNS.join(',')}\n`);
    for await (const entry of this.audit.stream(scope)) {
      const line =
        format === 'csv'
          ? `${CSV_COLUMNS.map((c) => csvCell((entry as AuditRecord)[c])).join(',')}\n`
          : `${JSON.stringify(entry)}\n`;
      if (!res.write(line)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  }
}
