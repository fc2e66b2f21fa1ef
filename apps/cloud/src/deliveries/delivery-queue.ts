import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { JobName, QueueName } from '../queues/queue-registry.js';

/** BullMQ job states in which a send series is still going. */
const LIVE_JOB_STATES = new Set<string>(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

/**
 * Queues change sets for sending. One BullMQ job per delivery attempt series, with the configured
 * attempts and exponential backoff; the job id carries the delivery's attempt generation, so a
 * manual redelivery starts a fresh series while a duplicate enqueue of the same one is a no-op.
 */
@Injectable()
export class DeliveryQueue {
  constructor(
    @InjectQueue(QueueName.deliveries) private readonly queue: Queue,
    private readonly prisma: PrismaProvider,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  async send(deliveryId: string, generation: number): Promise<void> {
    const jobId = `send-${deliveryId}-${generation}`;
    // Recorded first: if the job never reaches Redis, the sweep finds it missing and sends again.
    await this.prisma.client.delivery.update({ where: { id: deliveryId }, data: { sendJobId: jobId } });
    await this.enqueue(deliveryId, jobId);
  }

  private async enqueue(deliveryId: string, jobId: string): Promise<void> {
    await this.queue.add(
      JobName.deliverySend,
      { deliveryId },
      {
        jobId,
        attempts: this.config.delivery.webhookMaxAttempts,
        backoff: { type: 'exponential', delay: this.config.delivery.webhookRetryBaseMs },
        removeOnComplete: { age: 86_400, count: 10_000 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
  }

  /**
   * The sweep's safety net for sends: a pushable change set still waiting (PENDING, or FAILED
   * between retries) and untouched since `olderThan` whose send job is gone from Redis (lost with
   * it, or finished without the row saying so) gets a fresh series. One whose job still waits,
   * backs off or runs is left alone, so nothing is sent by two series. Returns the ids queued again.
   */
  async recoverLost(olderThan: Date, limit: number): Promise<string[]> {
    const waiting = await this.prisma.client.delivery.findMany({
      where: {
        state: { in: ['PENDING', 'FAILED'] },
        sink: { in: ['WEBHOOK', 'FILE'] },
        updatedAt: { lte: olderThan },
      },
      select: { id: true, sendJobId: true },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
    const requeued: string[] = [];
    for (const d of waiting) {
      const job = d.sendJobId ? await this.queue.getJob(d.sendJobId) : undefined;
      const state = job ? await job.getState() : 'missing';
      if (LIVE_JOB_STATES.has(state)) continue;
      // Claimed by replacing the job id this sweep saw: a sweep running at the same time (on
      // another worker) that saw it too finds it changed and leaves it, so one series starts.
      const jobId = `send-${d.id}-r${Date.now()}`;
      const { count } = await this.prisma.client.delivery.updateMany({
        where: { id: d.id, sendJobId: d.sendJobId, state: { in: ['PENDING', 'FAILED'] } },
        data: { sendJobId: jobId },
      });
      if (count === 0) continue;
      await this.enqueue(d.id, jobId);
      requeued.push(d.id);
    }
    return requeued;
  }

  /** Queues every pushable (webhook, file) delivery of a processed run that is waiting. */
  async dispatchRun(runId: string): Promise<void> {
    const pending = await this.prisma.client.delivery.findMany({
      where: { runId, state: 'PENDING', sink: { in: ['WEBHOOK', 'FILE'] } },
      select: { id: true, attempts: true },
    });
    for (const d of pending) await this.send(d.id, 0);
    await this.queue.add(
      JobName.deliveryRunCheck,
      { runId },
      { jobId: `runcheck-${runId}-${Date.now()}`, removeOnComplete: true, removeOnFail: 100 },
    );
  }
}
