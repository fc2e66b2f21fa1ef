import { sha256Hex } from '@keystage/crypto';
import {
  bindParameters,
  type ExtractDocument,
  MIS_DIALECT,
  ParameterBindingError,
  resolveParameters,
} from '@keystage/extract-spec';
import { type JobParameter, MAX_REUSE_CHUNKS } from '@keystage/protocol';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { AgentChannel, type JobInput } from '../agents/agent-channel.js';
import { PlatformKeysService } from '../agents/platform-keys.service.js';
import { AgreementsService } from '../agreements/agreements.service.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { RunLifecycle } from './run-lifecycle.js';
import { type RunRow, RunsRepository } from './runs.repository.js';

const DISPATCH_BATCH = 200;

/** Today in Europe/London, `YYYY-MM-DD`: what "today" means in an extract's parameters. */
export function londonToday(now = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/London' }).format(now);
}

/**
 * Sends due runs to schools' agents. A run goes out one dataset (one signed job) at a time, to the
 * school's active agent wherever its socket is; an offline agent gets it when it reconnects (the
 * job is re-signed then), until the run's deadline. Before anything leaves, the run must still be
 * covered by an approved agreement (`AgreementsService.coverage`).
 */
@Injectable()
export class RunDispatcher {
  private dispatching: Promise<number> | undefined;
  private again = false;

  constructor(
    private readonly repo: RunsRepository,
    private readonly lifecycle: RunLifecycle,
    private readonly channel: AgentChannel,
    private readonly agreements: AgreementsService,
    private readonly prisma: PrismaProvider,
    private readonly keys: PlatformKeysService,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext(RunDispatcher.name);
  }

  /** Dispatches everything that is due and may start; concurrent calls coalesce. */
  dispatch(): Promise<number> {
    if (this.dispatching) {
      this.again = true;
      return this.dispatching;
    }
    this.dispatching = (async () => {
      let total = 0;
      try {
        do {
          this.again = false;
          for (;;) {
            const claimed = await this.repo.claimReady(this.config.runs.maxInFlight, DISPATCH_BATCH);
            for (const run of claimed) await this.start(run);
            total += claimed.length;
            if (claimed.length < DISPATCH_BATCH) break;
          }
          await this.reofferWaiting();
        } while (this.again);
      } finally {
        this.dispatching = undefined;
      }
      return total;
    })();
    return this.dispatching;
  }

  /**
   * Runs handed to an agent whose next dataset waits (the agent was busy, asked to try later, or
   * the offer was lost): offered again, freshly signed. Nothing is offered twice at once: a run
   * with a dataset already offered or running is left alone.
   */
  private async reofferWaiting(): Promise<void> {
    for (const run of await this.repo.waitingForOffer(DISPATCH_BATCH)) await this.offerNext(run);
  }

  /** A run just claimed (DISPATCHED): check coverage, record, offer its first dataset. */
  private async start(run: RunRow): Promise<void> {
    try {
      const coverage = await this.agreements.coverage(run.schoolId, run.extractVersionId);
      if (!coverage.covered) {
        await this.lifecycle.move(run.id, ['DISPATCHED'], 'FAILED', {
          errorCode: 'run.not_covered',
          errorMessage: `no approved agreement covers this extract version (${coverage.reason}); not retried`,
        });
        return;
      }
      await this.lifecycle.recordCurrent(run);
      await this.offerNext(run);
    } catch (err) {
      // Mostly a dependency that is briefly away (Redis restarting while the job is offered): the
      // run goes back to SCHEDULED with backoff while attempts remain, like any transient failure.
      this.logger.error({ err, runId: run.id }, 'dispatch failed');
      await this.lifecycle.failOrRetry(run, {
        code: 'run.dispatch_failed',
        message: 'the control plane could not prepare the job',
        retryable: true,
      });
    }
  }

  /**
   * Offers the run's next dataset that is not uploaded yet (or re-offers one already offered, or
   * being uploaded, with a fresh signature: an agent that restarted has lost it, one that holds it
   * accepts again with the same data key). Returns false when every dataset is uploaded.
   */
  async offerNext(run: RunRow): Promise<boolean> {
    const job = run.jobs.find((j) => j.state === 'PENDING' || j.state === 'OFFERED' || j.state === 'RUNNING');
    if (!job) return false;
    if (!run.agentId) return true;
    const version = await this.prisma.client.extractVersion.findUniqueOrThrow({
      where: { id: run.extractVersionId },
      select: { document: true },
    });
    const input = this.buildJob(run, job.id, job.datasetName, version.document as unknown as ExtractDocument);
    if ('error' in input) {
      await this.lifecycle.move(run.id, ['DISPATCHED', 'RUNNING'], 'FAILED', {
        errorCode: 'run.bad_parameters',
        errorMessage: `${input.error}; not retried`,
      });
      return true;
    }
    if (job.state !== 'RUNNING') {
      // The last stored result of this dataset, whose unchanged chunks the agent need not send.
      // (A job re-offered while running keeps the source it was first offered, and an agent that
      // restarted it gets no list: it uploads in full.)
      const wrapping = await this.keys.active('result-wrapping');
      const reuse = await this.repo.reuseSource(run, job.datasetName, wrapping.keyId, MAX_REUSE_CHUNKS);
      if (reuse) input.reuse = { chunks: reuse.chunks };
      const offered = await this.repo.transitionJob(job.id, ['PENDING', 'OFFERED'], 'OFFERED', {
        agentId: run.agentId,
        offeredAt: new Date(),
        reuseJobId: reuse?.jobId ?? null,
      });
      // Cancelled (or finished) meanwhile: an offer now would sit in the agent's queue, unowned.
      if (!offered) return true;
    }
    const delivered = await this.channel.offerJob(run.agentId, input);
    if (!delivered && job.state !== 'RUNNING') {
      await this.repo.update(run.id, { waitReason: 'the school’s agent is offline; waiting for it' });
    }
    return true;
  }

  /**
   * An agent (re)connected or finished a job: drop jobs it should no longer get from its pending
   * queue, re-offer (freshly signed) what waits for it — including a dataset it was uploading, which
   * a restarted agent no longer has — then dispatch anything now possible.
   */
  async agentReady(agentId: string, schoolId: string): Promise<void> {
    const runs = await this.dropStaleOffers(agentId, schoolId);
    for (const run of runs) {
      if (run.agentId !== agentId) continue;
      await this.offerNext(run);
    }
    await this.dispatch();
  }

  /** Drops from the agent's pending queue every offer of a job no longer waiting; the open runs. */
  async dropStaleOffers(agentId: string, schoolId: string): Promise<RunRow[]> {
    const runs = await this.repo.dispatchedForSchool(schoolId);
    const open = new Set(
      runs.flatMap((r) =>
        r.jobs.filter((j) => j.state === 'OFFERED' || j.state === 'PENDING').map((j) => j.id),
      ),
    );
    for (const id of await this.channel.pendingIds(agentId)) {
      if (!open.has(id)) await this.channel.forget(agentId, id);
    }
    return runs;
  }

  private buildJob(
    run: RunRow,
    jobId: string,
    datasetName: string,
    doc: ExtractDocument,
  ): JobInput | { error: string } {
    const dataset = doc.datasets.find((d) => d.name === datasetName);
    if (!dataset) return { error: `the extract version has no dataset "${datasetName}"` };
    const resolved = resolveParameters(doc.parameters, run.params as Record<string, unknown>, {
      today: londonToday(),
    });
    if (!resolved.ok) return { error: resolved.problems.map((p) => p.message).join('; ') };
    try {
      const bound = bindParameters(dataset.sql, MIS_DIALECT[doc.mis], resolved.bindings, 'colon');
      const parameters: JobParameter[] = Object.entries(bound.named).map(([name, value]) =>
        typeof value === 'number'
          ? { name, type: Number.isInteger(value) ? 'integer' : 'number', value }
          : { name, type: 'string', value },
      );
      const deadline = new Date(
        Math.max(run.deadlineAt.getTime(), Date.now()) + this.config.runs.uploadGraceMs,
      );
      return {
        runId: jobId,
        extractVersionId: run.extractVersionId,
        datasetName,
        sql: bound.sql,
        sqlSha256: sha256Hex(bound.sql),
        parameters,
        deadline: deadline.toISOString(),
      };
    } catch (err) {
      if (err instanceof ParameterBindingError) return { error: err.message };
      throw err;
    }
  }
}
