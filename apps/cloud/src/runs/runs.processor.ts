import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type Job, UnrecoverableError } from 'bullmq';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { QueueErrorLogger } from '../queues/queue-error-logger.js';
import { JobHandlerRegistry, JobName, QueueName } from '../queues/queue-registry.js';
import { RunDispatcher } from './run-dispatcher.js';
import { RunPipeline } from './run-pipeline.js';
import { RunQueue } from './run-queue.js';
import { RunSweeper } from './run-sweeper.js';

/** The worker side of runs: timers, the sweep, processing of uploaded runs. */
@Processor(QueueName.runs, { concurrency: 4 })
export class RunsProcessor extends WorkerHost implements OnApplicationBootstrap, OnApplicationShutdown {
  private sweepWatch: NodeJS.Timeout | undefined;

  constructor(
    private readonly dispatcher: RunDispatcher,
    private readonly sweeper: RunSweeper,
    private readonly pipeline: RunPipeline,
    private readonly queue: RunQueue,
    private readonly errors: QueueErrorLogger,
    registry: JobHandlerRegistry,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    super();
    registry.register(RunsProcessor.name, [JobName.runKick, JobName.runSweep, JobName.runProcess]);
  }

  async onApplicationBootstrap(): Promise<void> {
    const every = this.config.runs.sweepIntervalMs;
    await this.queue.ensureSweep(every);
    // The sweep re-creates lost timers, but its own is in Redis: put it back if Redis lost it.
    let checking = false;
    this.sweepWatch = setInterval(() => {
      if (checking) return;
      checking = true;
      void this.queue
        .restoreSweep(every)
        .catch(() => undefined)
        .finally(() => {
          checking = false;
        });
    }, every);
    this.sweepWatch.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepWatch);
  }

  @OnWorkerEvent('error')
  onWorkerError(err: Error): void {
    this.errors.log(`worker:${QueueName.runs}`, err);
  }

  async process(job: Job<{ runId?: string }>): Promise<unknown> {
    switch (job.name) {
      case JobName.runKick:
        return { dispatched: await this.dispatcher.dispatch() };
      case JobName.runSweep:
        return this.sweeper.sweep();
      case JobName.runProcess:
        if (!job.data.runId) throw new UnrecoverableError('runs.process without a runId');
        return this.pipeline.process(job.data.runId);
      default:
        throw new UnrecoverableError(`no handler for job ${job.name} on queue ${QueueName.runs}`);
    }
  }
}
