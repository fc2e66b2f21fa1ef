import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { AgentChannel } from '../agents/agent-channel.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RunDispatcher } from './run-dispatcher.js';
import { RunLifecycle } from './run-lifecycle.js';
import { PRIORITY, RunQueue } from './run-queue.js';
import { RunsRepository } from './runs.repository.js';
import { SchedulerService } from './scheduler.service.js';

const BATCH = 500;
/** Timers for runs due within this horizon are (re-)created by each sweep. */
const HORIZON_MS = 10 * 60_000;
/** An uploaded/processed run untouched this long has lost its processing job. */
const STALL_MS = 2 * 60_000;

/**
 * The safety net, run by the worker every RUN_SWEEP_INTERVAL_MS: nothing depends on a timer in
 * Redis surviving. It marks runs that passed their deadline (missed, with the reason), re-creates
 * lost timers and processing jobs, plans schedules left without a next run, and dispatches.
 */
@Injectable()
export class RunSweeper {
  constructor(
    private readonly repo: RunsRepository,
    private readonly lifecycle: RunLifecycle,
    private readonly scheduler: SchedulerService,
    private readonly dispatcher: RunDispatcher,
    private readonly queue: RunQueue,
    private readonly channel: AgentChannel,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext(RunSweeper.name);
  }

  async sweep(now = new Date()) {
    const missed = await this.expire(now);
    for (const s of await this.repo.activeSchedulesWithoutOpenRun(BATCH)) {
      await this.scheduler.planSchedule(s.id).catch((err: unknown) => {
        this.logger.error({ err, scheduleId: s.id }, 'could not plan a schedule');
      });
    }
    const soon = await this.repo.scheduledBefore(new Date(now.getTime() + HORIZON_MS), BATCH);
    for (const r of soon) {
      await this.queue.tryKick(
        r.id,
        r.dueAt,
        r.trigger === 'SCHEDULED' ? PRIORITY.scheduled : PRIORITY.manual,
      );
    }
    for (const r of await this.repo.stalledProcessing(new Date(now.getTime() - STALL_MS), BATCH)) {
      await this.queue.tryProcess(r.id);
    }
    const dispatched = await this.dispatcher.dispatch();
    return { missed, timers: soon.length, dispatched };
  }

  private async expire(now: Date): Promise<number> {
    let n = 0;
    for (const run of await this.repo.overdue(now, this.config.runs.uploadGraceMs, BATCH)) {
      if (run.state === 'RUNNING') {
        await this.lifecycle.failOrRetry(run, {
          code: 'run.deadline_exceeded',
          message: 'the agent did not finish the upload in time',
          retryable: false,
        });
      } else {
        const job = run.jobs.find((j) => j.state === 'OFFERED' || j.state === 'PENDING');
        const reason =
          run.waitReason ??
          (run.state === 'SCHEDULED'
            ? 'the run could not start before its deadline'
            : 'the school’s agent did not take the job before the deadline (offline)');
        await this.lifecycle.move(run.id, [run.state], 'MISSED', {
          errorCode: run.agentId ? 'run.agent_offline' : 'run.not_started',
          errorMessage: reason,
        });
        if (job && run.agentId) {
          await this.repo.cancelJobs(run.id);
          await this.channel.forget(run.agentId, job.id).catch(() => undefined);
        }
      }
      n++;
    }
    return n;
  }
}
