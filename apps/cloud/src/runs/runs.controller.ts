import { Body, Controller, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { RunsService } from './runs.service.js';

const RUN_STATES = [
  'SCHEDULED',
  'DISPATCHED',
  'RUNNING',
  'UPLOADED',
  'PROCESSED',
  'DELIVERED',
  'FAILED',
  'MISSED',
  'CANCELLED',
] as const;

const ListQuery = z.strictObject({
  schoolId: Uuid.optional(),
  extractId: Uuid.optional(),
  /** One state or several, comma-separated, any case. */
  state: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim().toUpperCase()))
    .pipe(z.array(z.enum(RUN_STATES)).min(1))
    .optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
type ListQueryInput = z.infer<typeof ListQuery>;

const RunNow = z.strictObject({
  schoolId: Uuid,
  extractId: Uuid,
  /** Forget the delta state first: the partner receives a full load. */
  resync: z.boolean().optional(),
});
const Cancel = z.strictObject({ reason: Text(500).optional() });
const SetSchedule = z.strictObject({
  /** The agreement's own schedule for this extract, or null to use the extract's again. */
  schedule: z.unknown().nullable(),
});

function filterOf(q: ListQueryInput, scope: { partnerId?: string; schoolId?: string }) {
  return {
    ...(q.schoolId ? { schoolId: q.schoolId } : {}),
    ...(q.extractId ? { extractId: q.extractId } : {}),
    ...(q.state ? { states: q.state } : {}),
    ...(q.from ? { from: new Date(q.from) } : {}),
    ...(q.to ? { to: new Date(q.to) } : {}),
    ...scope,
  };
}

const partner = { kind: 'partner', param: 'partnerId' } as const;
const school = { kind: 'school', param: 'schoolId' } as const;

@ApiTags('runs')
@ApiBearerAuth()
@Controller()
export class RunsController {
  constructor(private readonly runs: RunsService) {}

  @Get('partners/:partnerId/runs')
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['runs:read'],
  })
  @ApiOperation({ summary: "The partner's runs, newest first; filter by school, extract, state, time." })
  partnerRuns(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Query(new ZodPipe(ListQuery)) q: ListQueryInput,
  ) {
    return this.runs.list(filterOf(q, { partnerId }), {
      ...(q.cursor ? { cursor: q.cursor } : {}),
      limit: q.limit,
    });
  }

  @Get('partners/:partnerId/runs/:runId')
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['runs:read'],
  })
  @ApiOperation({ summary: 'One run with its datasets, timestamps, counts and error.' })
  partnerRun(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('runId', new ZodPipe(Uuid)) runId: string,
  ) {
    return this.runs.get(runId, { partnerId });
  }

  @Post('partners/:partnerId/runs')
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['runs:write'],
  })
  @ApiOperation({ summary: 'Run an extract at a school now (ahead of scheduled runs; rate-limited).' })
  @ApiBody({ schema: openApiSchema(RunNow) })
  runNow(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(RunNow)) body: z.infer<typeof RunNow>,
    @CurrentActor() actor: Actor,
  ) {
    return this.runs.runNow(partnerId, body, actor);
  }

  @Post('partners/:partnerId/runs/:runId/cancel')
  @HttpCode(200)
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['runs:write'],
  })
  @ApiOperation({ summary: 'Cancel a run that has not finished uploading (the agent stops its query).' })
  @ApiBody({ schema: openApiSchema(Cancel) })
  cancel(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('runId', new ZodPipe(Uuid)) runId: string,
    @Body(new ZodPipe(Cancel)) body: z.infer<typeof Cancel>,
    @CurrentActor() actor: Actor,
  ) {
    return this.runs.cancel(runId, { partnerId }, body.reason ?? 'cancelled through the API', actor);
  }

  @Get('partners/:partnerId/schedules')
  @Policy({
    roles: ['partner_admin', 'partner_developer', 'support'],
    tenant: partner,
    scopes: ['runs:read'],
  })
  @ApiOperation({ summary: "The partner's schedules with their next due time." })
  partnerSchedules(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.runs.schedules({ partnerId });
  }

  @Put('partners/:partnerId/agreements/:agreementId/schedules/:extractId')
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner, scopes: ['agreements:write'] })
  @ApiOperation({
    summary:
      "Override an extract's schedule for one agreement (null: back to the extract's); re-plans at once.",
  })
  @ApiBody({ schema: openApiSchema(SetSchedule) })
  setSchedule(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('agreementId', new ZodPipe(Uuid)) agreementId: string,
    @Param('extractId', new ZodPipe(Uuid)) extractId: string,
    @Body(new ZodPipe(SetSchedule)) body: z.infer<typeof SetSchedule>,
    @CurrentActor() actor: Actor,
  ) {
    return this.runs.setSchedule(partnerId, agreementId, extractId, body.schedule ?? null, actor);
  }

  @Get('schools/:schoolId/runs')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({ summary: 'Every run at this school (who got what, when), newest first.' })
  schoolRuns(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Query(new ZodPipe(ListQuery)) q: ListQueryInput,
  ) {
    return this.runs.list(filterOf(q, { schoolId }), {
      ...(q.cursor ? { cursor: q.cursor } : {}),
      limit: q.limit,
    });
  }

  @Get('schools/:schoolId/runs/:runId')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({ summary: 'One run at this school.' })
  schoolRun(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Param('runId', new ZodPipe(Uuid)) runId: string,
  ) {
    return this.runs.get(runId, { schoolId });
  }

  @Get('schools/:schoolId/schedules')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({ summary: 'The schedules of the agreements at this school.' })
  schoolSchedules(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.runs.schedules({ schoolId });
  }

  @Get('runs')
  @Policy({ roles: ['support'] })
  @ApiOperation({ summary: 'Support: runs across the fleet, newest first, with the same filters.' })
  fleetRuns(@Query(new ZodPipe(ListQuery)) q: ListQueryInput) {
    return this.runs.list(filterOf(q, {}), { ...(q.cursor ? { cursor: q.cursor } : {}), limit: q.limit });
  }
}
