import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';
import type { MembershipGrant, RoleName } from './principal.js';

export interface UserRecord {
  id: string;
  email: string;
  displayName: string;
  passwordHash: string | null;
  failedLoginCount: number;
  lockedUntil: Date | null;
  disabledAt: Date | null;
}

export interface RefreshTokenRecord {
  id: string;
  userId: string;
  familyId: string;
  expiresAt: Date;
  replacedAt: Date | null;
  revokedAt: Date | null;
}

export interface ApiKeyRecord {
  id: string;
  partnerId: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

const toRole = (r: string) => r.toLowerCase() as RoleName;

/** Users, sessions (refresh-token families), reset tokens and key look-ups: the auth module's storage. */
@Injectable()
export class AuthRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  findUserByEmail(email: string): Promise<UserRecord | null> {
    return this.prisma.client.user.findUnique({ where: { email: email.toLowerCase() } });
  }

  findUserById(id: string): Promise<UserRecord | null> {
    return this.prisma.client.user.findUnique({ where: { id } });
  }

  async memberships(userId: string): Promise<MembershipGrant[]> {
    const rows = await this.prisma.client.membership.findMany({
      where: { userId },
      select: { role: true, partnerId: true, schoolId: true },
    });
    return rows.map((m) => ({ role: toRole(m.role), partnerId: m.partnerId, schoolId: m.schoolId }));
  }

  async recordFailedLogin(
    userId: string,
    maxFailures: number,
    lockUntil: Date,
  ): Promise<{ locked: boolean }> {
    // One statement, so concurrent failures cannot both read the same count.
    const rows = await this.prisma.client.$queryRaw<{ locked: boolean }[]>`
      UPDATE users SET
        failed_login_count = failed_login_count + 1,
        locked_until = CASE WHEN failed_login_count + 1 >= ${maxFailures} THEN ${lockUntil}::timestamptz ELSE locked_until END,
        updated_at = now()
      WHERE id = ${userId}::uuid
      RETURNING (failed_login_count >= ${maxFailures}) AS locked`;
    return { locked: rows[0]?.locked ?? false };
  }

  async recordSuccessfulLogin(userId: string): Promise<void> {
    await this.prisma.client.user.update({
      where: { id: userId },
      data: { failedLoginCount: 0, lockedUntil: null, lastLoginAt: new Date() },
    });
  }

  async setPassword(userId: string, passwordHash: string): Promise<void> {
    await this.prisma.client.user.update({
      where: { id: userId },
      data: { passwordHash, failedLoginCount: 0, lockedUntil: null },
    });
  }

  async createRefreshToken(data: { userId: string; familyId: string; tokenHash: string; expiresAt: Date }) {
    await this.prisma.client.refreshToken.create({ data });
  }

  findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    return this.prisma.client.refreshToken.findUnique({ where: { tokenHash } });
  }

  /** Marks a token replaced unless it already was; false when another request won the race. */
  async markReplaced(id: string): Promise<boolean> {
    const { count } = await this.prisma.client.refreshToken.updateMany({
      where: { id, replacedAt: null, revokedAt: null },
      data: { replacedAt: new Date() },
    });
    return count === 1;
  }

  async revokeFamily(familyId: string, reason: string): Promise<number> {
    const { count } = await this.prisma.client.refreshToken.updateMany({
      where: { familyId, revokedAt: null },
      data: { revokedAt: new Date(), revokeReason: reason },
    });
    return count;
  }

  async revokeAllSessions(userId: string, reason: string, exceptFamilyId?: string): Promise<number> {
    const { count } = await this.prisma.client.refreshToken.updateMany({
      where: { userId, revokedAt: null, ...(exceptFamilyId ? { NOT: { familyId: exceptFamilyId } } : {}) },
      data: { revokedAt: new Date(), revokeReason: reason },
    });
    return count;
  }

  /** A session is live while its family has a token that is neither revoked nor expired. */
  async isSessionLive(familyId: string, now: Date): Promise<boolean> {
    const live = await this.prisma.client.refreshToken.findFirst({
      where: { familyId, revokedAt: null, expiresAt: { gt: now } },
      select: { id: true },
    });
    return live !== null;
  }

  async createResetToken(data: { userId: string; tokenHash: string; expiresAt: Date }) {
    await this.prisma.client.passwordResetToken.create({ data });
  }

  /** Consumes a reset token once; null when unknown, used or expired. */
  async consumeResetToken(tokenHash: string, now: Date): Promise<{ userId: string } | null> {
    const token = await this.prisma.client.passwordResetToken.findUnique({ where: { tokenHash } });
    if (!token || token.usedAt || token.expiresAt <= now) return null;
    const { count } = await this.prisma.client.passwordResetToken.updateMany({
      where: { id: token.id, usedAt: null },
      data: { usedAt: now },
    });
    return count === 1 ? { userId: token.userId } : null;
  }

  findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    return this.prisma.client.apiKey.findUnique({
      where: { keyHash },
      select: { id: true, partnerId: true, scopes: true, expiresAt: true, revokedAt: true, lastUsedAt: true },
    });
  }

  async touchApiKey(id: string, at: Date): Promise<void> {
    await this.prisma.client.apiKey.update({ where: { id }, data: { lastUsedAt: at } });
  }
}
