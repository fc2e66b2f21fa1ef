import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';
import { RedisProvider } from '../redis/redis.provider.js';

/** The side effects of the readiness check: one round trip to each dependency. */
@Injectable()
export class HealthRepository {
  constructor(
    private readonly prisma: PrismaProvider,
    private readonly redis: RedisProvider,
  ) {}

  async pingPostgres(): Promise<void> {
    await this.prisma.client.$queryRaw`SELECT 1`;
  }

  async pingRedis(): Promise<void> {
    const answer = await this.redis.client.ping();
    if (answer !== 'PONG') throw new Error(`unexpected PING answer ${answer}`);
  }
}
