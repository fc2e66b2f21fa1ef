import type { Prisma } from '@keystage/db';
import { Inject, Injectable } from '@nestjs/common';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RunJournal } from './run-journal.js';
import { PRIORITY, RunQueue } from './run-queue.js';
import { type RunRow, type RunState, RunsRepository, TERMINAL_STATES } from './runs.repository.js';
import { SchedulerService } from './scheduler.service.js';

/** The timestamp column each state sets when a run enters it. */
const STAMP: Partial<Record<RunState, keyof Prisma.RunUncheckedUpdateManyInput>> = {
  DISPATCHED: 'dispatchedAt',
  RUNNING: 'startedAt',
  UPLOADED: 'uploadedAt',
  PROCESSED: 'processedAt',
  DELIVERED: 'deliveredAt',
};

/**
 * Every state change of a run goes through here: a conditional update in PostgreSQL (so it is safe
 * to attempt twice, from any node), a log line, an audit entry, and — when the run ends — the
 * planning of its schedule's next occurrence.
 *
 *   scheduled → dispatched → running → uploaded → processed → delivered
 *   (any open state) → failed | missed | cancelled;  dispatched/running → scheduled (retry)
 */
@Injectable()
export class RunLifecycle {
  constructor(
    private readonly repo: RunsRepository,
    private readonly journal: RunJournal,
    private readonly scheduler: SchedulerService,
    private readonly queue: RunQueue,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  async move(
    runId: string,
    from: RunState[],
    to: RunState,
    data: Prisma.RunUncheckedUpdateManyInput = {},
    actor: Actor = SYSTEM_ACTOR,
    details: Record<string, unknown> = {},
  ): Promise<RunRow | null> {
    const now = new Date();
    const stamp = STAMP[to];
    const terminal = TERMINAL_STATES.includes(to);
    const run = await this.repo.transition(runId, from, to, {
      ...(stamp ? { [stamp]: now } : {}),
      ...(terminal ? { finishedAt: now } : {}),
      ...data,
    });
    if (!run) return null;
    await this.journal.record(run, actor, details);
    if (terminal) await this.scheduler.planAfter(run);
    return run;
  }

  /** Records a transition made elsewhere (the dispatcher's claim). */
  recordCurrent(
    run: RunRow,
    actor: Actor = SYSTEM_ACTOR,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    return this.journal.record(run, actor, details);
  }

  /**
   * An accepted run could not finish. A transient failure (MIS down, agent restarted, buffer full)
   * is retried with exponential backoff and jitter while attempts remain and the retry can still
   * start before the deadline; a permanent one (SQL error, permission denied in the MIS) fails the
   * run at once and says it will not be retried.
   */
  async failOrRetry(
    run: RunRow,
    failure: { code: string; message: string; retryable: boolean },
  ): Promise<RunRow | null> {
    const from: RunState[] = ['DISPATCHED', 'RUNNING'];
    const attempts = run.attempt + 1;
    if (failure.retryable && attempts < this.config.runs.maxAttempts) {
      const base = this.config.runs.retryBaseMs * 2 ** run.attempt;
      const dueAt = new Date(Date.now() + Math.round(base * (0.75 + Math.random() * 0.5)));
      if (dueAt < run.deadlineAt) {
        const retried = await this.repo.transition(run.id, from, 'SCHEDULED', {
          attempt: attempts,
          dueAt,
          agentId: null,
          waitReason: `retry ${attempts + 1} of ${this.config.runs.maxAttempts} after ${failure.code}`,
          errorCode: failure.code,
          errorMessage: failure.message,
        });
        if (!retried) return null;
        await this.repo.resetJobs(run.id);
        await this.journal.record(retried, undefined, { retryAt: dueAt.toISOString() });
        await this.queue.tryKick(
          run.id,
          dueAt,
          run.trigger === 'SCHEDULED' ? PRIORITY.scheduled : PRIORITY.manual,
        );
        return retried;
      }
    }
    const why = !failure.retryable
      ? 'permanent failure, not retried'
      : attempts >= this.config.runs.maxAttempts
        ? `gave up after ${attempts} attempt(s)`
        : 'no time left before the deadline to retry';
    return this.move(run.id, from, 'FAILED', {
      attempt: attempts,
      errorCode: failure.code,
      errorMessage: `${failure.message} (${why})`,
    });
  }
}
