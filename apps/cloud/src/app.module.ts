import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { AgentGatewayModule, AgentsApiModule } from './agents/agents.module.js';
import { AgreementsModule } from './agreements/agreements.module.js';
import { ApiKeysModule } from './api-keys/api-keys.module.js';
import { AuditApiModule, AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
import { CLOUD_CONFIG } from './config/config.js';
import type { CloudConfig } from './config/config.schema.js';
import { DatabaseModule } from './database/database.module.js';
import { ExtractsModule } from './extracts/extracts.module.js';
import { HealthModule } from './health/health.module.js';
import { loggerParams } from './logging/logging.js';
import { MailModule } from './mail/mail.module.js';
import { MaintenanceModule } from './maintenance/maintenance.module.js';
import { PermissionsModule } from './permissions/permissions.module.js';
import { QueuesModule } from './queues/queues.module.js';
import { RedisModule } from './redis/redis.module.js';
import { RunsApiModule, RunsGatewayModule, RunsWorkerModule } from './runs/runs.module.js';
import { TenancyModule } from './tenancy/tenancy.module.js';

@Module({})
class ConfigHolderModule {}

/**
 * The control plane. One image, three roles chosen by KEYSTAGE_ROLES:
 *  - api: the HTTP API (auth, tenancy, API keys, audit …), its guards and its OpenAPI document;
 *  - gateway: the agents' WebSocket endpoint (/agent): authentication, sessions, heartbeats, jobs;
 *  - worker: queue processors (maintenance, run timers and the sweep, processing of uploaded runs).
 * Health endpoints answer in every role, so each node can be probed.
 */
@Module({})
export class AppModule {
  static forRoot(config: CloudConfig): DynamicModule {
    const roleModules = [
      ...(config.roles.has('api')
        ? [
            AuthModule,
            TenancyModule,
            ApiKeysModule,
            AuditApiModule,
            AgentsApiModule,
            ExtractsModule,
            AgreementsModule,
            PermissionsModule,
            RunsApiModule,
          ]
        : []),
      ...(config.roles.has('gateway') ? [AgentGatewayModule, RunsGatewayModule] : []),
      ...(config.roles.has('worker') ? [MaintenanceModule, RunsWorkerModule] : []),
    ];
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
        AuditModule,
        MailModule,
        HealthModule,
        ...roleModules,
      ],
    };
  }
}
