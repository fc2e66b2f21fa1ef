import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import type { OnApplicationBootstrap } from '@nestjs/common';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import { QueueErrorLogger } from '../queues/queue-error-logger.js';
import { JobHandlerRegistry, JobName, QueueName } from '../queues/queue-registry.js';
import { MaintenanceService } from './maintenance.service.js';

const HOUR = 3600_000;

@Processor(QueueName.maintenance, { concurrency: 1 })
export class MaintenanceProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly maintenance: MaintenanceService,
    registry: JobHandlerRegistry,
    @InjectQueue(QueueName.maintenance) private readonly queue: Queue,
    private readonly errors: QueueErrorLogger,
  ) {
    super();
    registry.register(MaintenanceProcessor.name, [JobName.pruneEnrolmentTokens]);
  }

  /** Idempotent: the scheduler id is fixed, so every worker node upserts the same schedule. */
  async onApplicationBootstrap(): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobName.pruneEnrolmentTokens,
      { every: HOUR },
      { name: JobName.pruneEnrolmentTokens, opts: { removeOnComplete: 100, removeOnFail: 100 } },
    );
  }

  @OnWorkerEvent('error')
  onWorkerError(err: Error): void {
    this.errors.log(`worker:${QueueName.maintenance}`, err);
  }

  async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case JobName.pruneEnrolmentTokens:
        return { deleted: await this.maintenance.pruneEnrolmentTokens() };
      default:
        throw new UnrecoverableError(`no handler for job ${job.name} on queue ${QueueName.maintenance}`);
    }
  }
}
