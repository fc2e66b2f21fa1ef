import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Global, Module, type OnApplicationBootstrap } from '@nestjs/common';
import type { CloudConfig } from '../config/config.schema.js';
import { QueueErrorLogger } from './queue-error-logger.js';
import { JobHandlerRegistry, QueueName } from './queue-registry.js';

/** ioredis options from a redis:// URL, for BullMQ's own connections. */
export function redisConnectionOptions(url: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    // BullMQ workers block on Redis; they must retry forever rather than fail a request.
    maxRetriesPerRequest: null,
  };
}

class RegistryCheck implements OnApplicationBootstrap {
  constructor(private readonly registry: JobHandlerRegistry) {}
  onApplicationBootstrap(): void {
    this.registry.assertComplete();
  }
}

@Global()
@Module({})
export class QueuesModule {
  static forRoot(config: CloudConfig): DynamicModule {
    const worker = config.roles.has('worker');
    return {
      module: QueuesModule,
      imports: [
        BullModule.forRoot({
          connection: redisConnectionOptions(config.redisUrl),
          prefix: config.redisPrefix,
        }),
        BullModule.registerQueue(...Object.values(QueueName).map((name) => ({ name }))),
      ],
      providers: [
        JobHandlerRegistry,
        QueueErrorLogger,
        ...(worker
          ? [
              {
                provide: RegistryCheck,
                useFactory: (r: JobHandlerRegistry) => new RegistryCheck(r),
                inject: [JobHandlerRegistry],
              },
            ]
          : []),
      ],
      exports: [BullModule, JobHandlerRegistry, QueueErrorLogger],
    };
  }
}
