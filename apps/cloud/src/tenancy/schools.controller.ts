import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { Email, openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { TenancyService } from './tenancy.service.js';

const CreateSchool = z.strictObject({
  urn: z.string().regex(/^\d{6}$/, 'a URN is 6 digits'),
  laEstab: z.string().regex(/^\d{3}\/\d{4}$/, 'LAESTAB looks like 873/4012'),
  name: Text(200),
  misType: z.enum(['SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL', 'OTHER']),
});
const InviteToSchool = z.strictObject({ email: Email, role: z.enum(['school_admin', 'school_viewer']) });
const school = { kind: 'school', param: 'schoolId' } as const;

@ApiTags('schools')
@ApiBearerAuth()
@Controller('schools')
export class SchoolsController {
  constructor(private readonly tenancy: TenancyService) {}

  @Post()
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'Register a school (support).' })
  @ApiBody({ schema: openApiSchema(CreateSchool) })
  create(@Body(new ZodPipe(CreateSchool)) body: z.infer<typeof CreateSchool>, @CurrentActor() actor: Actor) {
    return this.tenancy.createSchool(body, actor);
  }

  @Get()
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'All schools (support).' })
  list() {
    return this.tenancy.listSchools();
  }

  @Get(':schoolId')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({ summary: 'One school.' })
  get(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.tenancy.getSchool(schoolId);
  }

  @Get(':schoolId/members')
  @Policy({ roles: ['school_admin', 'support'], tenant: school, breakGlass: true })
  @ApiHeader({
    name: 'X-Break-Glass-Reason',
    required: false,
    description: 'Required for support: why you need this.',
  })
  @ApiOperation({
    summary: "The school's users (staff names and e-mails: support needs a break-glass reason).",
  })
  members(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.tenancy.members({ schoolId });
  }

  @Post(':schoolId/invitations')
  @Policy({ roles: ['school_admin', 'support'], tenant: school })
  @ApiOperation({ summary: 'Invite someone to the school; the link is e-mailed.' })
  @ApiBody({ schema: openApiSchema(InviteToSchool) })
  invite(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Body(new ZodPipe(InviteToSchool)) body: z.infer<typeof InviteToSchool>,
    @CurrentActor() actor: Actor,
  ) {
    return this.tenancy.invite({ schoolId }, body, actor);
  }
}
