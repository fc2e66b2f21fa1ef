import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { MaintenanceRepository } from './maintenance.repository.js';

/** Expired, unused enrolment tokens are kept this long for support to see, then deleted. */
export const ENROLMENT_TOKEN_GRACE_MS = 7 * 24 * 3600 * 1000;

@Injectable()
export class MaintenanceService {
  constructor(
    private readonly repo: MaintenanceRepository,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(MaintenanceService.name);
  }

  async pruneEnrolmentTokens(now = new Date()): Promise<number> {
    const deleted = await this.repo.deleteExpiredEnrolmentTokens(
      new Date(now.getTime() - ENROLMENT_TOKEN_GRACE_MS),
    );
    this.logger.info({ deleted }, 'pruned expired enrolment tokens');
    return deleted;
  }
}
