import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { openApiSchema, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { ExtractPreviewService } from './extract-preview.service.js';
import { ExtractsService } from './extracts.service.js';

const DocumentBody = z.strictObject({
  document: z
    .string()
    .min(1)
    .max(512 * 1024),
});
const PreviewBody = z.strictObject({
  document: z
    .string()
    .min(1)
    .max(512 * 1024),
  dataset: z.string().max(100).optional(),
  limit: z.number().int().min(1).max(500).default(20),
  parameters: z.record(z.string().max(100), z.unknown()).default({}),
});
const VersionNumber = z.coerce.number().int().min(1).max(1_000_000);
const partner = { kind: 'partner', param: 'partnerId' } as const;
const readers = {
  roles: ['partner_admin', 'partner_developer', 'support'],
  tenant: partner,
  scopes: ['extracts:read'],
} as const;
const writers = {
  roles: ['partner_admin', 'partner_developer'],
  tenant: partner,
  scopes: ['extracts:write'],
} as const;

@ApiTags('extracts')
@ApiBearerAuth()
@Controller('partners/:partnerId/extracts')
export class ExtractsController {
  constructor(
    private readonly extracts: ExtractsService,
    private readonly previews: ExtractPreviewService,
  ) {}

  @Post('validate')
  @HttpCode(200)
  @Policy(writers)
  @ApiOperation({
    summary:
      'Check an extract document (YAML or JSON): every problem with its path and SQL position, and the MIS permissions it needs.',
  })
  @ApiBody({ schema: openApiSchema(DocumentBody) })
  validate(
    @Param('partnerId', new ZodPipe(Uuid)) _partnerId: string,
    @Body(new ZodPipe(DocumentBody)) body: z.infer<typeof DocumentBody>,
  ) {
    return this.extracts.validate(body.document);
  }

  @Post('preview')
  @HttpCode(200)
  @Policy(writers)
  @ApiOperation({
    summary: 'Run a draft against the demo MIS (read-only): first rows, column types, row count and time.',
  })
  @ApiBody({ schema: openApiSchema(PreviewBody) })
  preview(
    @Param('partnerId', new ZodPipe(Uuid)) _partnerId: string,
    @Body(new ZodPipe(PreviewBody)) body: z.infer<typeof PreviewBody>,
  ) {
    return this.previews.preview(body);
  }

  @Post()
  @Policy(writers)
  @ApiOperation({
    summary: 'Publish an extract document as a new immutable version (nothing new if it is unchanged).',
  })
  @ApiBody({ schema: openApiSchema(DocumentBody) })
  publish(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(DocumentBody)) body: z.infer<typeof DocumentBody>,
    @CurrentActor() actor: Actor,
  ) {
    return this.extracts.publish(partnerId, body.document, actor);
  }

  @Get()
  @Policy(readers)
  @ApiOperation({ summary: "The partner's extracts with their latest version." })
  list(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.extracts.list(partnerId);
  }

  @Get(':extractId/versions')
  @Policy(readers)
  @ApiOperation({ summary: 'Every published version of an extract.' })
  versions(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('extractId', new ZodPipe(Uuid)) extractId: string,
  ) {
    return this.extracts.versions(partnerId, extractId);
  }

  @Get(':extractId/versions/:version')
  @Policy(readers)
  @ApiOperation({ summary: 'One version: its document and the MIS permissions it needs.' })
  version(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('extractId', new ZodPipe(Uuid)) extractId: string,
    @Param('version', new ZodPipe(VersionNumber)) version: number,
  ) {
    return this.extracts.version(partnerId, extractId, version);
  }

  @Get(':extractId/versions/:from/diff/:to')
  @Policy(readers)
  @ApiOperation({
    summary:
      'What changed between two versions (columns, tables read, categories, SQL), and whether it reads more.',
  })
  diff(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('extractId', new ZodPipe(Uuid)) extractId: string,
    @Param('from', new ZodPipe(VersionNumber)) from: number,
    @Param('to', new ZodPipe(VersionNumber)) to: number,
  ) {
    return this.extracts.diff(partnerId, extractId, from, to);
  }
}
