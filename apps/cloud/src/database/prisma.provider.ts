import { createPrismaClient, type PrismaClient } from '@keystage/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';

/**
 * Owns the one Prisma client of the process. Only repositories inject it; services speak in
 * domain types (see docs/architecture.md).
 */
@Injectable()
export class PrismaProvider implements OnApplicationShutdown {
  readonly client: PrismaClient;

  constructor(@Inject(CLOUD_CONFIG) config: CloudConfig) {
    this.client = createPrismaClient(config.databaseUrl);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.$disconnect();
  }
}
