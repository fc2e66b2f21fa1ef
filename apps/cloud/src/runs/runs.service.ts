import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { AgentChannel } from '../agents/agent-channel.js';
import { AgreementsService } from '../agreements/agreements.service.js';
import type { Actor } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { RedisProvider } from '../redis/redis.provider.js';
import { RunLifecycle } from './run-lifecycle.js';
import { type RunFilter, type RunRow, RunsRepository } from './runs.repository.js';
import { SchedulerService } from './scheduler.service.js';

/** A run as the API shows it. */
export function runView(run: RunRow) {
  const { extractVersion, school, jobs, params: _params, paramsHash: _hash, ...rest } = run;
  return {
    ...rest,
    extract: {
      id: extractVersion.extractId,
      name: extractVersion.extract.name,
      version: extractVersion.version,
    },
    schoolUrn: school.urn,
    datasets: jobs.map((j) => ({
      name: j.datasetName,
      state: j.state,
      rowCount: j.rowCount,
      chunkCount: j.chunkCount,
      byteCount: j.byteCount === null ? null : Number(j.byteCount),
      /** Chunks (and sealed bytes) not sent by the agent: the control plane reused its copy. */
      reusedChunks: j.reusedChunks,
      reusedBytes: Number(j.reusedBytes),
      errorCode: j.errorCode,
      errorMessage: j.errorMessage,
      acceptedAt: j.acceptedAt,
      uploadedAt: j.uploadedAt,
    })),
  };
}

export interface ScheduleView {
  id: string;
  agreementId: string;
  extractId: string;
  extractName: string;
  schoolId: string;
  spec: unknown;
  override: unknown;
  active: boolean;
  nextDueAt: Date | null;
}

function encodeCursor(run: RunRow): string {
  return Buffer.from(`${run.dueAt.toISOString()}|${run.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { dueAt: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const dueAt = new Date(at ?? '');
  if (Number.isNaN(dueAt.getTime()) || !id || !/^[0-9a-f-]{36}$/.test(id)) {
    throw new AppError('runs.bad_cursor', 'the cursor is not one this API returned', 400);
  }
  return { dueAt, id };
}

/** What the API does with runs: list, look at, start now, cancel. Tenant scope comes from the route. */
@Injectable()
export class RunsService implements OnModuleInit {
  constructor(
    private readonly repo: RunsRepository,
    private readonly scheduler: SchedulerService,
    private readonly lifecycle: RunLifecycle,
    private readonly agreements: AgreementsService,
    private readonly channel: AgentChannel,
    private readonly prisma: PrismaProvider,
    private readonly redis: RedisProvider,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  onModuleInit(): void {
    this.agreements.onApproved((id, actor) => this.scheduler.onAgreementApproved(id, actor));
    this.agreements.onRevoked((id) => this.stopJobsOfAgreement(id));
  }

  async list(filter: RunFilter, page: { cursor?: string; limit: number }) {
    const rows = await this.repo.list(filter, {
      ...(page.cursor ? { cursor: decodeCursor(page.cursor) } : {}),
      limit: page.limit + 1,
    });
    const more = rows.length > page.limit;
    const items = more ? rows.slice(0, page.limit) : rows;
    return { items: items.map(runView), nextCursor: more ? encodeCursor(items[items.length - 1]!) : null };
  }

  async get(runId: string, scope: { partnerId?: string; schoolId?: string }) {
    const run = await this.repo.find(runId, scope);
    if (!run) throw AppError.notFound('run');
    return runView(run);
  }

  /**
   * "Run now": a manual run of the partner's extract at one school, ahead of scheduled runs, under
   * the approved agreement that covers its newest version. Limited per (extract, school).
   */
  async runNow(
    partnerId: string,
    input: { schoolId: string; extractId: string; resync?: boolean | undefined },
    actor: Actor,
  ) {
    const extract = await this.prisma.client.extract.findFirst({
      where: { id: input.extractId, partnerId },
      select: { id: true, versions: { orderBy: { version: 'desc' }, select: { id: true }, take: 1 } },
    });
    if (!extract) throw AppError.notFound('extract');
    const newest = extract.versions[0];
    if (!newest) throw new AppError('extract.unpublished', 'the extract has no published version', 409);
    const coverage = await this.agreements.coverage(input.schoolId, newest.id);
    if (!coverage.covered) {
      throw new AppError(
        'run.not_covered',
        coverage.reason === 'widens'
          ? 'the newest version reads more than the school approved: ask for a new agreement'
          : 'the school has not approved an agreement for this extract',
        409,
        { reason: coverage.reason },
      );
    }
    await this.rateLimit(input.extractId, input.schoolId);
    const now = new Date();
    const run = await this.scheduler.createRun(
      {
        partnerId,
        schoolId: input.schoolId,
        agreementId: coverage.agreementId,
        extractVersionId: newest.id,
        trigger: input.resync ? 'RESYNC' : 'MANUAL',
        resync: input.resync ?? false,
        dueAt: now,
        deadlineAt: new Date(now.getTime() + this.config.runs.runNowDeadlineMs),
      },
      actor,
    );
    return runView(run);
  }

  async cancel(
    runId: string,
    scope: { partnerId?: string; schoolId?: string },
    reason: string,
    actor: Actor,
  ) {
    const run = await this.repo.find(runId, scope);
    if (!run) throw AppError.notFound('run');
    const cancelled = await this.lifecycle.move(
      run.id,
      ['SCHEDULED', 'DISPATCHED', 'RUNNING'],
      'CANCELLED',
      { errorCode: 'run.cancelled', errorMessage: reason },
      actor,
    );
    if (!cancelled) {
      throw new AppError(
        'run.invalid_state',
        `a run that is ${run.state.toLowerCase()} cannot be cancelled`,
        409,
      );
    }
    await this.stopJobs(run.id, reason);
    return runView((await this.repo.find(run.id))!);
  }

  /** After an agreement is revoked (its runs are already cancelled): stop the agents' jobs. */
  async stopJobsOfAgreement(agreementId: string): Promise<void> {
    const runs = await this.prisma.client.run.findMany({
      where: {
        agreementId,
        state: 'CANCELLED',
        jobs: { some: { state: { in: ['PENDING', 'OFFERED', 'RUNNING'] } } },
      },
      select: { id: true },
    });
    for (const r of runs) await this.stopJobs(r.id, 'the school revoked the agreement');
  }

  private async stopJobs(runId: string, reason: string): Promise<void> {
    const jobs = await this.repo.cancelJobs(runId);
    for (const job of jobs) {
      if (!job.agentId) continue;
      if (job.state === 'PENDING') await this.channel.forget(job.agentId, job.id).catch(() => undefined);
      else await this.channel.cancelJob(job.agentId, job.id, reason).catch(() => undefined);
    }
  }

  setSchedule(partnerId: string, agreementId: string, extractId: string, spec: unknown | null, actor: Actor) {
    return this.scheduler.setOverride(partnerId, agreementId, extractId, spec, actor);
  }

  async schedules(scope: { partnerId?: string; schoolId?: string }): Promise<ScheduleView[]> {
    const rows = await this.prisma.client.schedule.findMany({
      where: {
        ...(scope.schoolId ? { schoolId: scope.schoolId } : {}),
        ...(scope.partnerId ? { agreement: { partnerId: scope.partnerId } } : {}),
      },
      select: {
        id: true,
        agreementId: true,
        extractId: true,
        schoolId: true,
        spec: true,
        override: true,
        active: true,
        nextDueAt: true,
        extract: { select: { name: true } },
      },
      orderBy: { nextDueAt: 'asc' },
    });
    return rows.map(({ extract, ...r }) => ({ ...r, extractName: extract.name }));
  }

  private async rateLimit(extractId: string, schoolId: string): Promise<void> {
    const key = `${this.config.redisPrefix}:runnow:${extractId}:${schoolId}`;
    const [[, count]] = (await this.redis.client
      .multi()
      .incr(key)
      .expire(key, this.config.runs.runNowWindowSeconds, 'NX')
      .exec()) as [[Error | null, number]];
    if (count > this.config.runs.runNowLimit) {
      const ttl = await this.redis.client.ttl(key);
      throw new AppError(
        'run.rate_limited',
        `at most ${this.config.runs.runNowLimit} manual runs of this extract at this school per ${this.config.runs.runNowWindowSeconds} s; try again in ${Math.max(1, ttl)} s`,
        429,
        { retryAfterSeconds: Math.max(1, ttl) },
      );
    }
  }
}
