import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

@Injectable()
export class MaintenanceRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  /** Unused enrolment tokens that expired before `before`; used ones stay as enrolment history. */
  async deleteExpiredEnrolmentTokens(before: Date): Promise<number> {
    const { count } = await this.prisma.client.enrolmentToken.deleteMany({
      where: { usedAt: null, expiresAt: { lt: before } },
    });
    return count;
  }
}
