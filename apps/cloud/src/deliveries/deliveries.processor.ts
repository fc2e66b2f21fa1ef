import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { type Job, UnrecoverableError } from 'bullmq';
import { QueueErrorLogger } from '../queues/queue-error-logger.js';
import { JobHandlerRegistry, JobName, QueueName } from '../queues/queue-registry.js';
import { DeliveryService } from './delivery.service.js';

/** Sends change sets (worker role). BullMQ retries a failed attempt with exponential backoff. */
@Processor(QueueName.deliveries, { concurrency: 8 })
export class DeliveriesProcessor extends WorkerHost {
  constructor(
    private readonly deliveries: DeliveryService,
    private readonly errors: QueueErrorLogger,
    registry: JobHandlerRegistry,
  ) {
    super();
    registry.register(DeliveriesProcessor.name, [JobName.deliverySend, JobName.deliveryRunCheck]);
  }

  @OnWorkerEvent('error')
  onWorkerError(err: Error): void {
    this.errors.log(`worker:${QueueName.deliveries}`, err);
  }

  async process(job: Job<{ deliveryId?: string; runId?: string }>): Promise<unknown> {
    switch (job.name) {
      case JobName.deliverySend: {
        if (!job.data.deliveryId) throw new UnrecoverableError('deliveries.send without a deliveryId');
        const attempts = job.opts.attempts ?? 1;
        return this.deliveries.send(job.data.deliveryId, job.attemptsMade, job.attemptsMade + 1 >= attempts);
      }
      case JobName.deliveryRunCheck:
        if (!job.data.runId) throw new UnrecoverableError('deliveries.run-check without a runId');
        return this.deliveries.completeRun(job.data.runId);
      default:
        throw new UnrecoverableError(`no handler for job ${job.name} on queue ${QueueName.deliveries}`);
    }
  }
}
