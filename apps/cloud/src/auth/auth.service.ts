import { randomUUID } from 'node:crypto';
import { generateToken as newToken, sha256Hex } from '@keystage/crypto';
import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { MailOutbox } from '../mail/mail-outbox.repository.js';
import { AuthRepository, type UserRecord } from './auth.repository.js';
import { PasswordHasher } from './password-hasher.js';
import type { Principal } from './principal.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

interface AccessClaims {
  sub: string;
  sid: string;
  typ: 'access';
}

const RESET_TTL_MS = 60 * 60 * 1000;
const invalidCredentials = () => new AppError('auth.invalid_credentials', 'e-mail or password is wrong', 401);
const invalidRefresh = () => new AppError('auth.invalid_refresh_token', 'refresh token is not valid', 401);

/**
 * Sign-in, sessions and passwords. A session is a family of refresh tokens: each refresh rotates the
 * token; presenting a rotated-out token again means it was stolen, and the whole family is revoked.
 * Access tokens are short-lived JWTs naming their session, and stop working once it is revoked.
 */
@Injectable()
export class AuthService {
  constructor(
    private readonly repo: AuthRepository,
    private readonly hasher: PasswordHasher,
    private readonly jwt: JwtService,
    private readonly audit: AuditService,
    private readonly outbox: MailOutbox,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  /** Checks e-mail and password with lock-out; used by the passport local strategy. */
  async validateCredentials(email: string, password: string, actor: Actor): Promise<UserRecord> {
    const user = await this.repo.findUserByEmail(email);
    const now = new Date();
    if (!user?.passwordHash || user.disabledAt) {
      await this.hasher.burn(password);
      await this.audit.record(actor, { action: 'auth.sign_in_failed', details: { reason: 'unknown_user' } });
      throw invalidCredentials();
    }
    if (user.lockedUntil && user.lockedUntil > now) {
      throw lockedError(user.lockedUntil, now);
    }
    if (!(await this.hasher.verify(password, user.passwordHash))) {
      const lockUntil = new Date(now.getTime() + this.config.auth.lockoutMs);
      const { locked } = await this.repo.recordFailedLogin(
        user.id,
        this.config.auth.maxFailedLogins,
        lockUntil,
      );
      await this.audit.record(
        { ...actor, type: 'USER', id: user.id },
        {
          action: locked ? 'auth.account_locked' : 'auth.sign_in_failed',
          targetType: 'user',
          targetId: user.id,
        },
      );
      if (locked) throw lockedError(lockUntil, now);
      throw invalidCredentials();
    }
    await this.repo.recordSuccessfulLogin(user.id);
    return user;
  }

  async signIn(user: UserRecord, actor: Actor): Promise<TokenPair> {
    const familyId = randomUUID();
    const pair = await this.issue(user.id, familyId);
    await this.audit.record(
      { ...actor, type: 'USER', id: user.id },
      { action: 'auth.signed_in', targetType: 'session', targetId: familyId },
    );
    return pair;
  }

  async refresh(refreshToken: string, actor: Actor): Promise<TokenPair> {
    const token = await this.repo.findRefreshToken(sha256Hex(refreshToken));
    const now = new Date();
    if (!token) throw invalidRefresh();
    if (token.revokedAt || token.expiresAt <= now) throw invalidRefresh();
    if (token.replacedAt || !(await this.repo.markReplaced(token.id))) {
      // A rotated-out token came back: someone holds a copy. End the whole session.
      const revoked = await this.repo.revokeFamily(token.familyId, 'refresh_reuse');
      await this.audit.record(
        { ...actor, type: 'USER', id: token.userId },
        {
          action: 'auth.refresh_reuse_detected',
          targetType: 'session',
          targetId: token.familyId,
          details: { revoked },
        },
      );
      throw new AppError(
        'auth.refresh_token_reused',
        'refresh token was already used; the session is revoked',
        401,
      );
    }
    const user = await this.repo.findUserById(token.userId);
    if (!user || user.disabledAt) throw invalidRefresh();
    return this.issue(user.id, token.familyId);
  }

  async logout(principal: Principal, actor: Actor): Promise<void> {
    if (principal.kind !== 'user') throw new AppError('auth.not_a_session', 'API keys have no session', 400);
    await this.repo.revokeFamily(principal.sessionId, 'logout');
    await this.audit.record(actor, {
      action: 'auth.signed_out',
      targetType: 'session',
      targetId: principal.sessionId,
    });
  }

  async changePassword(principal: Principal, current: string, next: string, actor: Actor): Promise<void> {
    if (principal.kind !== 'user') throw new AppError('auth.not_a_session', 'API keys have no password', 400);
    const user = await this.repo.findUserById(principal.userId);
    if (!user?.passwordHash || !(await this.hasher.verify(current, user.passwordHash))) {
      throw new AppError('auth.invalid_credentials', 'current password is wrong', 401);
    }
    await this.repo.setPassword(user.id, await this.hasher.hash(next));
    const revoked = await this.repo.revokeAllSessions(user.id, 'password_changed', principal.sessionId);
    await this.audit.record(actor, {
      action: 'auth.password_changed',
      targetType: 'user',
      targetId: user.id,
      details: { otherSessionsRevoked: revoked },
    });
  }

  /** Always succeeds from the caller's view, so it cannot tell which e-mails exist. */
  async requestPasswordReset(email: string, actor: Actor): Promise<void> {
    const user = await this.repo.findUserByEmail(email);
    if (!user || user.disabledAt) return;
    const token = newToken('ks_rst');
    await this.repo.createResetToken({
      userId: user.id,
      tokenHash: sha256Hex(token),
      expiresAt: new Date(Date.now() + RESET_TTL_MS),
    });
    await this.outbox.enqueue({
      to: user.email,
      subject: 'Reset your Keystage password',
      body: `Someone asked to reset the password of this account. If it was you, open\n${this.config.publicUrl}/reset-password#token=${token}\nwithin an hour. Otherwise ignore this message.`,
    });
    await this.audit.record(
      { ...actor, type: 'USER', id: user.id },
      { action: 'auth.password_reset_requested', targetType: 'user', targetId: user.id },
    );
  }

  async resetPassword(token: string, password: string, actor: Actor): Promise<void> {
    const consumed = await this.repo.consumeResetToken(sha256Hex(token), new Date());
    if (!consumed) throw new AppError('auth.invalid_reset_token', 'reset token is not valid', 400);
    await this.repo.setPassword(consumed.userId, await this.hasher.hash(password));
    const revoked = await this.repo.revokeAllSessions(consumed.userId, 'password_reset');
    await this.audit.record(
      { ...actor, type: 'USER', id: consumed.userId },
      {
        action: 'auth.password_reset',
        targetType: 'user',
        targetId: consumed.userId,
        details: { sessionsRevoked: revoked },
      },
    );
  }

  /** Resolves a bearer access token into a principal, or throws 401. */
  async principalFromAccessToken(token: string): Promise<Principal> {
    let claims: AccessClaims;
    try {
      claims = await this.jwt.verifyAsync<AccessClaims>(token, { algorithms: ['HS256'], issuer: 'keystage' });
    } catch (err) {
      const expired = (err as Error).name === 'TokenExpiredError';
      throw new AppError(
        expired ? 'auth.token_expired' : 'auth.invalid_token',
        expired ? 'access token has expired' : 'access token is not valid',
        401,
      );
    }
    if (claims.typ !== 'access') throw new AppError('auth.invalid_token', 'access token is not valid', 401);
    const [user, live] = await Promise.all([
      this.repo.findUserById(claims.sub),
      this.repo.isSessionLive(claims.sid, new Date()),
    ]);
    if (!user || user.disabledAt || !live)
      throw new AppError('auth.session_revoked', 'session has ended', 401);
    return {
      kind: 'user',
      userId: user.id,
      email: user.email,
      sessionId: claims.sid,
      memberships: await this.repo.memberships(user.id),
    };
  }

  private async issue(userId: string, familyId: string): Promise<TokenPair> {
    const refreshToken = newToken('ks_rt');
    await this.repo.createRefreshToken({
      userId,
      familyId,
      tokenHash: sha256Hex(refreshToken),
      expiresAt: new Date(Date.now() + this.config.auth.refreshTokenTtlDays * 86_400_000),
    });
    const claims: AccessClaims = { sub: userId, sid: familyId, typ: 'access' };
    const accessToken = await this.jwt.signAsync(claims, {
      algorithm: 'HS256',
      issuer: 'keystage',
      expiresIn: this.config.auth.accessTokenTtlSeconds,
    });
    return {
      accessToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.config.auth.accessTokenTtlSeconds,
    };
  }
}

function lockedError(until: Date, now: Date): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppError('auth.account_locked', 'account is locked after repeated failed sign-ins', 423, {
    retryAfterSeconds,
  });
}
