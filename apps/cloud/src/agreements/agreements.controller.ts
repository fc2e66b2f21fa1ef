import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { AgreementsService, LAWFUL_BASES } from './agreements.service.js';

const RequestAgreement = z.strictObject({
  schoolId: Uuid,
  extractVersionIds: z.array(Uuid).min(1).max(50),
  purpose: Text(2000),
  lawfulBasis: z.enum(LAWFUL_BASES),
  retentionDays: z.number().int().min(1).max(3650),
});
const Decision = z.strictObject({ note: Text(2000).optional() });
const Revocation = z.strictObject({ reason: Text(2000) });
const partner = { kind: 'partner', param: 'partnerId' } as const;
const school = { kind: 'school', param: 'schoolId' } as const;

@ApiTags('agreements')
@ApiBearerAuth()
@Controller()
export class AgreementsController {
  constructor(private readonly agreements: AgreementsService) {}

  @Post('partners/:partnerId/agreements')
  @Policy({ roles: ['partner_admin'], tenant: partner, scopes: ['agreements:write'] })
  @ApiOperation({
    summary: 'Ask a school to agree to named extract versions, with purpose, lawful basis and retention.',
  })
  @ApiBody({ schema: openApiSchema(RequestAgreement) })
  request(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(RequestAgreement)) body: z.infer<typeof RequestAgreement>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agreements.request(partnerId, body, actor);
  }

  @Get('partners/:partnerId/agreements')
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['agreements:read'],
  })
  @ApiOperation({ summary: "The partner's agreements (revoked ones carry a deletion request)." })
  forPartner(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.agreements.forPartner(partnerId);
  }

  @Get('schools/:schoolId/agreements')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({ summary: 'Who gets what from this school: every agreement with its exact columns.' })
  forSchool(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.agreements.forSchool(schoolId);
  }

  @Post('schools/:schoolId/agreements/:agreementId/approve')
  @HttpCode(200)
  @Policy({ roles: ['school_admin'], tenant: school })
  @ApiOperation({ summary: 'Approve a requested agreement (school admin).' })
  @ApiBody({ schema: openApiSchema(Decision) })
  approve(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Param('agreementId', new ZodPipe(Uuid)) id: string,
    @Body(new ZodPipe(Decision)) body: z.infer<typeof Decision>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agreements.approve(schoolId, id, body.note, actor);
  }

  @Post('schools/:schoolId/agreements/:agreementId/reject')
  @HttpCode(200)
  @Policy({ roles: ['school_admin'], tenant: school })
  @ApiOperation({ summary: 'Reject a requested agreement (school admin).' })
  @ApiBody({ schema: openApiSchema(Decision) })
  reject(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Param('agreementId', new ZodPipe(Uuid)) id: string,
    @Body(new ZodPipe(Decision)) body: z.infer<typeof Decision>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agreements.reject(schoolId, id, body.note, actor);
  }

  @Post('schools/:schoolId/agreements/:agreementId/revoke')
  @HttpCode(200)
  @Policy({ roles: ['school_admin'], tenant: school })
  @ApiOperation({
    summary: 'Revoke an agreement: queued and scheduled runs stop at once; the partner is asked to delete.',
  })
  @ApiBody({ schema: openApiSchema(Revocation) })
  revoke(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Param('agreementId', new ZodPipe(Uuid)) id: string,
    @Body(new ZodPipe(Revocation)) body: z.infer<typeof Revocation>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agreements.revoke(schoolId, id, body.reason, actor);
  }
}
