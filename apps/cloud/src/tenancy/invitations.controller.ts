import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Public } from '../auth/policy.js';
import { openApiSchema, Password, Text, ZodPipe } from '../common/zod-pipe.js';
import { AuthRateLimited } from '../throttle/throttle.js';
import { TenancyService } from './tenancy.service.js';

const Accept = z.strictObject({
  token: z.string().min(1).max(200),
  displayName: Text(200),
  password: Password,
});

@ApiTags('auth')
@Controller('invitations')
export class InvitationsController {
  constructor(private readonly tenancy: TenancyService) {}

  @Post('accept')
  @HttpCode(200)
  @Public()
  @AuthRateLimited()
  @ApiOperation({
    summary:
      'Accept an invitation: creates the account, or adds the role to an existing one (its password needed).',
  })
  @ApiBody({ schema: openApiSchema(Accept) })
  accept(@Body(new ZodPipe(Accept)) body: z.infer<typeof Accept>, @CurrentActor() actor: Actor) {
    return this.tenancy.acceptInvitation(body, actor);
  }
}
