import { Inject, Injectable } from '@nestjs/common';
import { describeError } from '../common/describe-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { HealthRepository } from './health.repository.js';

export interface DependencyCheck {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

export interface Readiness {
  status: 'ready' | 'not_ready';
  checks: { postgres: DependencyCheck; redis: DependencyCheck };
}

@Injectable()
export class HealthService {
  private shuttingDown = false;

  constructor(
    private readonly repo: HealthRepository,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  /** Once shutdown starts the node reports not ready, so a load balancer stops sending to it. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  async readiness(): Promise<Readiness> {
    const [postgres, redis] = await Promise.all([
      this.check(() => this.repo.pingPostgres()),
      this.check(() => this.repo.pingRedis()),
    ]);
    const ready = !this.shuttingDown && postgres.status === 'up' && redis.status === 'up';
    return { status: ready ? 'ready' : 'not_ready', checks: { postgres, redis } };
  }

  private async check(ping: () => Promise<void>): Promise<DependencyCheck> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.config.readyTimeoutMs} ms`)),
            this.config.readyTimeoutMs,
          );
        }),
      ]);
      return { status: 'up', latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      return {
        status: 'down',
        latencyMs: Math.round(performance.now() - started),
        error: describeError(err),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}
