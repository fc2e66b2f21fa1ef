import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';

/** The shared Redis connection for commands (queues open their own, as BullMQ requires). */
@Injectable()
export class RedisProvider implements OnModuleInit, OnApplicationShutdown {
  readonly client: Redis;

  constructor(@Inject(CLOUD_CONFIG) config: CloudConfig) {
    this.client = new Redis(config.redisUrl, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2_000,
    });
    // Errors surface through /health/ready and the calls that fail; an unhandled 'error' event
    // would otherwise crash the process while Redis restarts.
    this.client.on('error', () => undefined);
  }

  /** Waits (briefly) for the first connection, so the node is ready as soon as it listens. */
  async onModuleInit(): Promise<void> {
    if (this.client.status === 'ready') return;
    const client = this.client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 3_000);
      client.once('ready', done);
      function done() {
        clearTimeout(timer);
        client.off('ready', done);
        resolve();
      }
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.client.status === 'end') return;
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
