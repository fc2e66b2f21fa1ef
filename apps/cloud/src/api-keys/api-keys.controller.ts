import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { API_KEY_SCOPES, CurrentActor, Policy } from '../auth/policy.js';
import { openApiSchema, Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { ApiKeysService } from './api-keys.service.js';

const CreateApiKey = z.strictObject({
  name: Text(100),
  scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).max(API_KEY_SCOPES.length),
  expiresInDays: z.number().int().min(1).max(730).optional(),
});

const partner = { kind: 'partner', param: 'partnerId' } as const;

@ApiTags('api keys')
@ApiBearerAuth()
@Controller('partners/:partnerId/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @Policy({ roles: ['partner_admin'], tenant: partner })
  @ApiOperation({ summary: 'Create an API key. The key is shown in this answer only.' })
  @ApiBody({ schema: openApiSchema(CreateApiKey) })
  create(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(CreateApiKey)) body: z.infer<typeof CreateApiKey>,
    @CurrentActor() actor: Actor,
  ) {
    return this.keys.create(partnerId, body, actor);
  }

  @Get()
  @Policy({ roles: ['partner_admin', 'partner_developer', 'support'], tenant: partner })
  @ApiOperation({ summary: "List the partner's API keys (never the keys themselves)." })
  list(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string) {
    return this.keys.list(partnerId);
  }

  @Delete(':keyId')
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner })
  @ApiOperation({ summary: 'Revoke an API key at once.' })
  revoke(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('keyId', new ZodPipe(Uuid)) keyId: string,
    @CurrentActor() actor: Actor,
  ) {
    return this.keys.revoke(partnerId, keyId, actor);
  }
}
