import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { Email, openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { TenancyService } from './tenancy.service.js';

const CreatePartner = z.strictObject({
  slug: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lower-case letters, digits and hyphens, 2–63 characters'),
  name: Text(200),
});
const InviteToPartner = z.strictObject({
  email: Email,
  role: z.enum(['partner_admin', 'partner_developer']),
});
const partner = { kind: 'partner', param: 'partnerId' } as const;

@ApiTags('partners')
@ApiBearerAuth()
@Controller('partners')
export class PartnersController {
  constructor(private readonly tenancy: TenancyService) {}

  @Post()
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'Register a partner (support).' })
  @ApiBody({ schema: openApiSchema(CreatePartner) })
  create(
    @Body(new ZodPipe(CreatePartner)) body: z.infer<typeof CreatePartner>,
    @CurrentActor() actor: Actor,
  ) {
    return this.tenancy.createPartner(body, actor);
  }

  @Get()
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'All partners (support).' })
  list() {
    return this.tenancy.listPartners();
  }

  @Get(':partnerId')
  @Policy({ roles: ['partner_admin', 'partner_developer', 'support'], tenant: partner })
  @ApiOperation({ summary: 'One partner.' })
  get(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.tenancy.getPartner(partnerId);
  }

  @Get(':partnerId/members')
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner })
  @ApiOperation({ summary: "The partner's users and their roles." })
  members(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.tenancy.members({ partnerId });
  }

  @Post(':partnerId/invitations')
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner })
  @ApiOperation({ summary: 'Invite someone to the partner; the link is e-mailed.' })
  @ApiBody({ schema: openApiSchema(InviteToPartner) })
  invite(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(InviteToPartner)) body: z.infer<typeof InviteToPartner>,
    @CurrentActor() actor: Actor,
  ) {
    return this.tenancy.invite({ partnerId }, body, actor);
  }
}
