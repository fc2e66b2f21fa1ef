import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import { QueueName } from './queue-registry.js';

const QUIET_MS = 30_000;

/**
 * BullMQ prints connection errors with console.error when nobody listens. This listens and logs
 * them through pino, at most once per queue every 30 s, so a Redis outage is visible but does not
 * flood the log; readiness reports the outage to probes.
 */
@Injectable()
export class QueueErrorLogger {
  private readonly lastLogged = new Map<string, number>();

  // Listeners are attached in the constructor, right after the queues exist, before their first
  // connection attempt can fail. Every queue of the registry is injected here.
  constructor(
    private readonly logger: PinoLogger,
    @InjectQueue(QueueName.maintenance) maintenance: Queue,
  ) {
    logger.setContext(QueueErrorLogger.name);
    for (const queue of [maintenance]) queue.on('error', (err) => this.log(queue.name, err));
  }

  log(source: string, err: Error): void {
    const now = Date.now();
    if (now - (this.lastLogged.get(source) ?? 0) < QUIET_MS) return;
    this.lastLogged.set(source, now);
    this.logger.warn(
      { source, code: (err as NodeJS.ErrnoException).code, err: err.message },
      'queue connection error',
    );
  }
}
