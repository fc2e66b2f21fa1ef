import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { CLOUD_CONFIG } from './config/config.js';
import type { CloudConfig } from './config/config.schema.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { loggerParams } from './logging/logging.js';
import { MaintenanceModule } from './maintenance/maintenance.module.js';
import { QueuesModule } from './queues/queues.module.js';
import { RedisModule } from './redis/redis.module.js';

@Module({})
class ConfigHolderModule {}

/**
 * The control plane. One image, three roles chosen by KEYSTAGE_ROLES:
 *  - api: the HTTP API and its OpenAPI document (feature controllers join here);
 *  - gateway: agents' WebSocket sessions (arrives with the agent issue);
 *  - worker: queue processors (maintenance now; scheduling, ingest, delta and delivery later).
 * Health endpoints answer in every role, so each node can be probed.
 */
@Module({})
export class AppModule {
  static forRoot(config: CloudConfig): DynamicModule {
    const roleModules = [...(config.roles.has('worker') ? [MaintenanceModule] : [])];
    return {
      module: AppModule,
      imports: [
        {
          module: ConfigHolderModule,
          global: true,
          providers: [{ provide: CLOUD_CONFIG, useValue: config }],
          exports: [CLOUD_CONFIG],
        },
        LoggerModule.forRoot(loggerParams(config)),
        DatabaseModule,
        RedisModule,
        QueuesModule.forRoot(config),
        HealthModule,
        ...roleModules,
      ],
    };
  }
}
