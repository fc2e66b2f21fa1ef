import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import { JobName, QueueName } from '../queues/queue-registry.js';

/** Manual runs jump the queue (BullMQ: lower is sooner). */
export const PRIORITY = { manual: 1, scheduled: 5 } as const;

/**
 * Timers for runs, as BullMQ jobs with idempotent ids: one `runs.kick` per run and due time, one
 * `runs.process` per uploaded run. PostgreSQL stays the truth: a kick only asks "is anything
 * ready?", so a lost timer (Redis restarted) is re-created by the sweep and a duplicate does
 * nothing.
 */
@Injectable()
export class RunQueue {
  constructor(
    @InjectQueue(QueueName.runs) private readonly queue: Queue,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(RunQueue.name);
  }

  async kick(runId: string, at: Date, priority: number = PRIORITY.scheduled): Promise<void> {
    const delay = Math.max(0, at.getTime() - Date.now());
    await this.queue.add(
      JobName.runKick,
      { runId },
      {
        jobId: `kick-${runId}-${at.getTime()}`,
        delay,
        priority,
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 86_400 },
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000 },
      },
    );
  }

  /** Best effort: a kick that cannot be queued now is re-created by the sweep. */
  async tryKick(runId: string, at: Date, priority?: number): Promise<void> {
    await this.kick(runId, at, priority).catch((err: unknown) => {
      this.logger.warn(
        { runId, err: (err as Error).message },
        'could not queue a run timer (the sweep will)',
      );
    });
  }

  async process(runId: string): Promise<void> {
    await this.queue.add(
      JobName.runProcess,
      { runId },
      {
        jobId: `process-${runId}`,
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 7 * 86_400 },
        attempts: 5,
        backoff: { type: 'exponential', delay: 2000 },
      },
    );
  }

  async tryProcess(runId: string): Promise<void> {
    await this.process(runId).catch((err: unknown) => {
      this.logger.warn({ runId, err: (err as Error).message }, 'could not queue processing (the sweep will)');
    });
  }

  async ensureSweep(everyMs: number): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobName.runSweep,
      { every: everyMs },
      { name: JobName.runSweep, opts: { removeOnComplete: 50, removeOnFail: 50 } },
    );
  }

  /**
   * The sweep's own timer lives in Redis too: a Redis that restarted empty has lost it, and with it
   * every timer the sweep would re-create. Re-creates it when missing; true when it was.
   */
  async restoreSweep(everyMs: number): Promise<boolean> {
    if (await this.queue.getJobScheduler(JobName.runSweep)) return false;
    await this.ensureSweep(everyMs);
    this.logger.warn('the run sweep was missing from Redis (restarted empty?): re-created it');
    return true;
  }
}
