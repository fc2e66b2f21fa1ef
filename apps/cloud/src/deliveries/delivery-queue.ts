import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { JobName, QueueName } from '../queues/queue-registry.js';

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
    await this.queue.add(
      JobName.deliverySend,
      { deliveryId },
      {
        jobId: `send-${deliveryId}-${generation}`,
        attempts: this.config.delivery.webhookMaxAttempts,
        backoff: { type: 'exponential', delay: this.config.delivery.webhookRetryBaseMs },
        removeOnComplete: { age: 86_400, count: 10_000 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
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
