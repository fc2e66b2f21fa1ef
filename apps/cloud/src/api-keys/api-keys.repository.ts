import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

const VIEW = {
  id: true,
  name: true,
  prefix: true,
  scopes: true,
  expiresAt: true,
  revokedAt: true,
  lastUsedAt: true,
  createdAt: true,
} as const;

/** Partner API keys. Every query is scoped by the partner that owns the key. */
@Injectable()
export class ApiKeysRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  create(
    partnerId: string,
    data: {
      name: string;
      prefix: string;
      keyHash: string;
      scopes: string[];
      expiresAt: Date | null;
      createdById: string | null;
    },
  ): Promise<ApiKeyView> {
    return this.prisma.client.apiKey.create({ data: { partnerId, ...data }, select: VIEW });
  }

  list(partnerId: string): Promise<ApiKeyView[]> {
    return this.prisma.client.apiKey.findMany({
      where: { partnerId },
      orderBy: { createdAt: 'desc' },
      select: VIEW,
    });
  }

  /** Revokes the key if it belongs to the partner; null when it does not exist there. */
  async revoke(partnerId: string, id: string): Promise<ApiKeyView | null> {
    const { count } = await this.prisma.client.apiKey.updateMany({
      where: { id, partnerId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    const key = await this.prisma.client.apiKey.findFirst({ where: { id, partnerId }, select: VIEW });
    return count === 0 && !key ? null : key;
  }
}
