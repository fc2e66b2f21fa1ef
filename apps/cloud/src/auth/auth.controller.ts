import { Body, Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { AuthGuard as PassportGuard } from '@nestjs/passport';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { Email, openApiSchema, Password, ZodPipe } from '../common/zod-pipe.js';
import { AuthRateLimited } from '../throttle/throttle.js';
import type { UserRecord } from './auth.repository.js';
import { AuthService, type TokenPair } from './auth.service.js';
import { CurrentActor, CurrentPrincipal, Policy, Public } from './policy.js';
import { type AuthedRequest, type Principal, ROLE_NAMES } from './principal.js';

const Login = z.strictObject({ email: z.string().max(320), password: z.string().max(256) });
const Refresh = z.strictObject({ refreshToken: z.string().min(1).max(200) });
const ChangePassword = z.strictObject({ currentPassword: z.string().max(256), newPassword: Password });
const ResetRequest = z.strictObject({ email: Email });
const ResetConfirm = z.strictObject({ token: z.string().min(1).max(200), newPassword: Password });

const anySignedIn = { roles: ROLE_NAMES } as const;

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @HttpCode(200)
  @Public()
  @AuthRateLimited()
  @UseGuards(PassportGuard('local'))
  @ApiOperation({ summary: 'Sign in with e-mail and password; returns an access and a refresh token.' })
  @ApiBody({ schema: openApiSchema(Login) })
  login(@Req() req: AuthedRequest & { user: UserRecord }, @CurrentActor() actor: Actor): Promise<TokenPair> {
    return this.auth.signIn(req.user, actor);
  }

  @Post('refresh')
  @HttpCode(200)
  @Public()
  @AuthRateLimited()
  @ApiOperation({ summary: 'Rotate a refresh token. Reusing an old one revokes the whole session.' })
  @ApiBody({ schema: openApiSchema(Refresh) })
  refresh(@Body(new ZodPipe(Refresh)) body: z.infer<typeof Refresh>, @CurrentActor() actor: Actor) {
    return this.auth.refresh(body.refreshToken, actor);
  }

  @Post('logout')
  @HttpCode(204)
  @Policy(anySignedIn)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'End this session (its refresh tokens and access tokens stop working).' })
  async logout(@CurrentPrincipal() principal: Principal, @CurrentActor() actor: Actor): Promise<void> {
    await this.auth.logout(principal, actor);
  }

  @Get('me')
  @Policy(anySignedIn)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Who is signed in, with their roles.' })
  me(@CurrentPrincipal() principal: Principal) {
    if (principal.kind !== 'user') return principal;
    return { userId: principal.userId, email: principal.email, memberships: principal.memberships };
  }

  @Post('password')
  @HttpCode(204)
  @Policy(anySignedIn)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Change the password; every other session is signed out.' })
  @ApiBody({ schema: openApiSchema(ChangePassword) })
  async changePassword(
    @Body(new ZodPipe(ChangePassword)) body: z.infer<typeof ChangePassword>,
    @CurrentPrincipal() principal: Principal,
    @CurrentActor() actor: Actor,
  ): Promise<void> {
    await this.auth.changePassword(principal, body.currentPassword, body.newPassword, actor);
  }

  @Post('password-reset/request')
  @HttpCode(202)
  @Public()
  @AuthRateLimited()
  @ApiOperation({ summary: 'E-mail a one-time reset link (answers 202 whether or not the e-mail is known).' })
  @ApiBody({ schema: openApiSchema(ResetRequest) })
  async requestReset(
    @Body(new ZodPipe(ResetRequest)) body: z.infer<typeof ResetRequest>,
    @CurrentActor() actor: Actor,
  ): Promise<{ status: 'accepted' }> {
    await this.auth.requestPasswordReset(body.email, actor);
    return { status: 'accepted' };
  }

  @Post('password-reset/confirm')
  @HttpCode(204)
  @Public()
  @AuthRateLimited()
  @ApiOperation({ summary: 'Set a new password with a reset token; every session is signed out.' })
  @ApiBody({ schema: openApiSchema(ResetConfirm) })
  async confirmReset(
    @Body(new ZodPipe(ResetConfirm)) body: z.infer<typeof ResetConfirm>,
    @CurrentActor() actor: Actor,
  ): Promise<void> {
    await this.auth.resetPassword(body.token, body.newPassword, actor);
  }
}
