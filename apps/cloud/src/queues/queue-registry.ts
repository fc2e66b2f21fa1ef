import { Injectable } from '@nestjs/common';

/**
 * The one registry of queue and job names. Every job name must have a processor in a process
 * that runs the worker role: `JobHandlerRegistry.assertComplete()` refuses to start otherwise, so a
 * job can never sit in Redis with nobody to run it.
 */
export const QueueName = {
  maintenance: 'maintenance',
  runs: 'runs',
  deliveries: 'deliveries',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export const JobName = {
  pruneEnrolmentTokens: 'maintenance.prune-enrolment-tokens',
  /** A run is due (or should be looked at again): dispatch what may start. */
  runKick: 'runs.kick',
  /** Deadlines, lost timers, schedules without a next run, stalled processing. */
  runSweep: 'runs.sweep',
  /** An uploaded run: delta, then delivery. */
  runProcess: 'runs.process',
  /** Send one change set to its webhook or file drop (retried with backoff, then dead-lettered). */
  deliverySend: 'deliveries.send',
  /** Mark a run delivered once all its change sets are. */
  deliveryRunCheck: 'deliveries.run-check',
} as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.pruneEnrolmentTokens]: QueueName.maintenance,
  [JobName.runKick]: QueueName.runs,
  [JobName.runSweep]: QueueName.runs,
  [JobName.runProcess]: QueueName.runs,
  [JobName.deliverySend]: QueueName.deliveries,
  [JobName.deliveryRunCheck]: QueueName.deliveries,
};

@Injectable()
export class JobHandlerRegistry {
  private readonly handled = new Map<JobName, string>();

  register(processor: string, jobs: readonly JobName[]): void {
    for (const job of jobs) {
      const existing = this.handled.get(job);
      if (existing && existing !== processor) {
        throw new Error(`job ${job} has two processors: ${existing} and ${processor}`);
      }
      this.handled.set(job, processor);
    }
  }

  missing(): JobName[] {
    return (Object.keys(JOB_QUEUE) as JobName[]).filter((job) => !this.handled.has(job));
  }

  assertComplete(): void {
    const missing = this.missing();
    if (missing.length > 0) {
      throw new Error(`refusing to start: no processor for job(s) ${missing.join(', ')}`);
    }
  }
}
