import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { AgentChannel } from '../agents/agent-channel.js';
import { AuditService, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { DeliveryQueue } from '../deliveries/delivery-queue.js';
import { SNAPSHOT_ENCODING } from '../results/change-sets.js';
import { ResultStore } from '../results/result-store.js';
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
 * lost timers, processing jobs and change-set sends, plans schedules left without a next run, and
 * dispatches.
 */
@Injectable()
export class RunSweeper {
  constructor(
    private readonly repo: RunsRepository,
    private readonly lifecycle: RunLifecycle,
    private readonly scheduler: SchedulerService,
    private readonly dispatcher: RunDispatcher,
    private readonly queue: RunQueue,
    private readonly deliveryQueue: DeliveryQueue,
    private readonly channel: AgentChannel,
    private readonly results: ResultStore,
    private readonly prisma: PrismaProvider,
    private readonly audit: AuditService,
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
    const requeued = await this.deliveryQueue.recoverLost(
      new Date(now.getTime() - this.config.delivery.stallMs),
      BATCH,
    );
    if (requeued.length > 0) {
      this.logger.warn(
        { deliveries: requeued },
        'change sets queued again: their send jobs were gone from Redis',
      );
    }
    const dispatched = await this.dispatcher.dispatch();
    const purged = await this.purgeExpired();
    return { missed, timers: soon.length, dispatched, purged, requeued: requeued.length };
  }

  /**
   * Retention: a finished run's stored results and change sets are deleted once its agreement's
   * retention has passed — at once when the agreement was revoked, with the delta snapshots of its
   * extracts at that school. Every deletion is audited.
   */
  async purgeExpired(): Promise<number> {
    const prisma = this.prisma.client;
    const expired = await prisma.$queryRaw<
      { id: string; school_id: string; partner_id: string; params_hash: string; revoked: boolean }[]
    >`
      SELECT r.id, r.school_id, r.partner_id, r.params_hash, (a.status = 'REVOKED') AS revoked
        FROM runs r JOIN data_agreements a ON a.id = r.agreement_id
       WHERE r.purged_at IS NULL AND r.finished_at IS NOT NULL
         AND (a.status = 'REVOKED' OR r.finished_at < now() - make_interval(days => a.retention_days))
       LIMIT ${BATCH}`;
    for (const run of expired) {
      let objects =
        (await this.results.deletePrefix(run.school_id, `runs/${run.id}/`)) +
        (await this.results.deletePrefix(run.school_id, `changesets/${run.id}/`));
      // Full loads' change sets are kept as the run's snapshots: those go too, unless one is still
      // the delta state of its dataset.
      for (const d of await prisma.delivery.findMany({
        where: { runId: run.id, contentEncoding: SNAPSHOT_ENCODING, datasetName: { not: null } },
        select: { extractId: true, datasetName: true },
      })) {
        const key = this.results.snapshotKey(d.extractId, d.datasetName!, run.params_hash, run.id);
        const current = await prisma.deltaState.count({
          where: { schoolId: run.school_id, snapshotKey: key },
        });
        if (current === 0 && (await this.results.deletePrefix(run.school_id, key)) > 0) objects++;
      }
      await prisma.run.update({ where: { id: run.id }, data: { purgedAt: new Date() } });
      await this.audit.record(SYSTEM_ACTOR, {
        action: 'data.deleted',
        partnerId: run.partner_id,
        schoolId: run.school_id,
        targetType: 'run',
        targetId: run.id,
        details: { objects, reason: run.revoked ? 'agreement revoked' : 'retention period passed' },
      });
    }
    // Delta snapshots of extracts no approved agreement covers at a school any more.
    const orphaned = await prisma.$queryRaw<{ id: string; school_id: string; snapshot_key: string }[]>`
      SELECT d.id, d.school_id, d.snapshot_key FROM delta_states d
       WHERE NOT EXISTS (
         SELECT 1 FROM data_agreements a
           JOIN agreement_extract_versions av ON av.agreement_id = a.id
           JOIN extract_versions v ON v.id = av.extract_version_id
          WHERE a.school_id = d.school_id AND a.status = 'APPROVED' AND v.extract_id = d.extract_id)
       LIMIT ${BATCH}`;
    for (const state of orphaned) {
      await this.results.delete(state.school_id, state.snapshot_key);
      await prisma.deltaState.delete({ where: { id: state.id } });
      await this.audit.record(SYSTEM_ACTOR, {
        action: 'data.deleted',
        schoolId: state.school_id,
        targetType: 'delta_state',
        targetId: state.id,
        details: { objects: 1, reason: 'no agreement covers the extract any more' },
      });
    }
    return expired.length + orphaned.length;
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
