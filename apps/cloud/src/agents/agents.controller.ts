import { MisKind, SoftwareVersion } from '@keystage/protocol';
import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy, Public } from '../auth/policy.js';
import { openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { AuthRateLimited } from '../throttle/throttle.js';
import { AgentsService } from './agents.service.js';

const CreateToken = z.strictObject({
  expiresInHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 14)
    .optional(),
});
const Enrol = z.strictObject({
  token: z.string().min(1).max(200),
  publicKey: z.base64().min(40).max(200),
  hostname: Text(255).optional(),
  version: SoftwareVersion,
  os: Text(128),
  misKind: MisKind,
});
const Revoke = z.strictObject({ reason: Text(500) });
const Fleet = z.strictObject({
  status: z.enum(['ACTIVE', 'REPLACED', 'REVOKED']).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});
const school = { kind: 'school', param: 'schoolId' } as const;

@ApiTags('agents')
@Controller()
export class AgentsController {
  constructor(private readonly agents: AgentsService) {}

  @Post('schools/:schoolId/enrolment-tokens')
  @Policy({ roles: ['school_admin', 'support'], tenant: school })
  @ApiBearerAuth()
  @ApiOperation({ summary: 'A one-time token to enrol the school’s agent (shown once; expires).' })
  @ApiBody({ schema: openApiSchema(CreateToken) })
  createToken(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Body(new ZodPipe(CreateToken)) body: z.infer<typeof CreateToken>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agents.createEnrolmentToken(schoolId, body.expiresInHours, actor);
  }

  @Post('agents/enrol')
  @HttpCode(201)
  @Public()
  @AuthRateLimited()
  @ApiOperation({
    summary: 'Called by `keystage-agent enrol`: registers the agent’s public key with a one-time token.',
  })
  @ApiBody({ schema: openApiSchema(Enrol) })
  enrol(@Body(new ZodPipe(Enrol)) body: z.infer<typeof Enrol>, @CurrentActor() actor: Actor) {
    return this.agents.enrol(body, actor);
  }

  @Get('schools/:schoolId/agents')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The school’s agents, online or not, with their last heartbeat.' })
  listForSchool(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.agents.listForSchool(schoolId);
  }

  @Post('schools/:schoolId/agents/:agentId/revoke')
  @HttpCode(200)
  @Policy({ roles: ['school_admin', 'support'], tenant: school })
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Revoke an agent: its socket is closed and it stops reconnecting.' })
  @ApiBody({ schema: openApiSchema(Revoke) })
  revoke(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Param('agentId', new ZodPipe(Uuid)) agentId: string,
    @Body(new ZodPipe(Revoke)) body: z.infer<typeof Revoke>,
    @CurrentActor() actor: Actor,
  ) {
    return this.agents.revoke(schoolId, agentId, body.reason, actor);
  }

  @Get('agents')
  @Policy({ roles: ['support'] })
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The fleet: every agent with its status and last heartbeat (support).' })
  fleet(@Query(new ZodPipe(Fleet)) q: z.infer<typeof Fleet>) {
    return this.agents.listFleet(q.status, q.limit);
  }
}
