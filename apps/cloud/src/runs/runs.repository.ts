import { Prisma, type RunJobState, type RunState, type RunTrigger } from '@keystage/db';
import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

export type { RunJobState, RunState, RunTrigger };

export const IN_FLIGHT: RunState[] = ['DISPATCHED', 'RUNNING'];
export const OPEN_STATES: RunState[] = ['SCHEDULED', 'DISPATCHED', 'RUNNING', 'UPLOADED', 'PROCESSED'];
export const TERMINAL_STATES: RunState[] = ['DELIVERED', 'FAILED', 'MISSED', 'CANCELLED'];

/** Dispatch decisions are serialised across nodes with this advisory lock. */
const DISPATCH_LOCK = 72_001;

export const RUN_SELECT = {
  id: true,
  partnerId: true,
  schoolId: true,
  agreementId: true,
  extractVersionId: true,
  scheduleId: true,
  agentId: true,
  trigger: true,
  state: true,
  attempt: true,
  occurrenceId: true,
  waitReason: true,
  resync: true,
  paramsHash: true,
  params: true,
  dueAt: true,
  deadlineAt: true,
  dispatchedAt: true,
  startedAt: true,
  uploadedAt: true,
  processedAt: true,
  deliveredAt: true,
  finishedAt: true,
  rowCount: true,
  insertCount: true,
  updateCount: true,
  deleteCount: true,
  errorCode: true,
  errorMessage: true,
  createdAt: true,
  updatedAt: true,
  extractVersion: { select: { extractId: true, version: true, extract: { select: { name: true } } } },
  school: { select: { urn: true } },
  jobs: {
    select: {
      id: true,
      datasetName: true,
      position: true,
      state: true,
      rowCount: true,
      chunkCount: true,
      byteCount: true,
      reusedChunks: true,
      reusedBytes: true,
      errorCode: true,
      errorMessage: true,
      acceptedAt: true,
      uploadedAt: true,
    },
    orderBy: { position: 'asc' },
  },
} as const satisfies Prisma.RunSelect;

export type RunRow = Prisma.RunGetPayload<{ select: typeof RUN_SELECT }>;

export interface NewRun {
  partnerId: string;
  schoolId: string;
  agreementId: string;
  extractVersionId: string;
  scheduleId?: string | null;
  occurrenceId?: string | null;
  trigger: RunTrigger;
  params: Record<string, unknown>;
  paramsHash: string;
  resync?: boolean;
  dueAt: Date;
  deadlineAt: Date;
  datasets: string[];
}

export interface RunFilter {
  partnerId?: string;
  schoolId?: string;
  extractId?: string;
  states?: RunState[];
  from?: Date;
  to?: Date;
}

export type RunJobRow = Prisma.RunJobGetPayload<{
  include: { run: { select: typeof RUN_SELECT } };
}>;

/** What a chunk needs of its job's run (a chunk reads its job afresh, but not the whole run view). */
const UPLOAD_RUN_SELECT = { id: true, state: true, schoolId: true } as const satisfies Prisma.RunSelect;

export type UploadJobRow = Prisma.RunJobGetPayload<{
  include: { run: { select: typeof UPLOAD_RUN_SELECT } };
}>;

/** Runs and their per-dataset jobs. PostgreSQL is the truth for every state. */
@Injectable()
export class RunsRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  /**
   * Creates a run with one job per dataset. A scheduled run fills one slot of its schedule: creating
   * the same slot twice returns the existing run (`created: false`) — the idempotency that makes
   * re-planning after a restart safe.
   */
  async create(input: NewRun): Promise<{ run: RunRow; created: boolean }> {
    const { datasets, ...data } = input;
    try {
      const run = await this.prisma.client.run.create({
        data: {
          ...data,
          params: data.params as Prisma.InputJsonValue,
          jobs: { create: datasets.map((datasetName, position) => ({ datasetName, position })) },
        },
        select: RUN_SELECT,
      });
      return { run, created: true };
    } catch (err) {
      if (
        err instanceof Prisma.PrismaClientKnownRequestError &&
        err.code === 'P2002' &&
        input.scheduleId &&
        input.occurrenceId
      ) {
        const run = await this.prisma.client.run.findUniqueOrThrow({
          where: {
            scheduleId_occurrenceId: { scheduleId: input.scheduleId, occurrenceId: input.occurrenceId },
          },
          select: RUN_SELECT,
        });
        return { run, created: false };
      }
      throw err;
    }
  }

  find(id: string, scope: { partnerId?: string; schoolId?: string } = {}): Promise<RunRow | null> {
    return this.prisma.client.run.findFirst({ where: { id, ...scope }, select: RUN_SELECT });
  }

  /**
   * Moves a run from one of `from` to `to`, setting `data`; null when the run was not in one of
   * `from` (someone else moved it first). This conditional update is what makes every transition
   * safe to attempt twice, from any node.
   */
  async transition(
    id: string,
    from: RunState[],
    to: RunState,
    data: Prisma.RunUncheckedUpdateManyInput = {},
  ): Promise<RunRow | null> {
    const { count } = await this.prisma.client.run.updateMany({
      where: { id, state: { in: from } },
      data: { ...data, state: to },
    });
    if (count === 0) return null;
    return this.prisma.client.run.findUnique({ where: { id }, select: RUN_SELECT });
  }

  update(id: string, data: Prisma.RunUncheckedUpdateInput): Promise<RunRow> {
    return this.prisma.client.run.update({ where: { id }, data, select: RUN_SELECT });
  }

  /**
   * Picks runs that are due and may start, and marks them DISPATCHED to the school's active agent,
   * under one advisory lock so that two nodes never exceed a cap: the global cap on runs in flight
   * and each school's own concurrency. Manual runs (and resyncs) go first, then by due time.
   */
  async claimReady(maxInFlight: number, batch: number, now = new Date()): Promise<RunRow[]> {
    const ids = await this.prisma.client.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK})`;
      const [counted] = await tx.$queryRaw<{ inflight: number }[]>`
        SELECT count(*)::int AS inflight FROM runs WHERE state IN ('DISPATCHED', 'RUNNING')`;
      const inflight = counted?.inflight ?? 0;
      const room = Math.min(batch, maxInFlight - inflight);
      if (room <= 0) return [];
      const candidates = await tx.$queryRaw<
        { id: string; school_id: string; agent_id: string | null; busy: number; cap: number }[]
      >`
        SELECT r.id, r.school_id, s.max_concurrent_runs AS cap,
               (SELECT count(*)::int FROM runs x
                 WHERE x.school_id = r.school_id AND x.state IN ('DISPATCHED', 'RUNNING')) AS busy,
               (SELECT a.id FROM agents a WHERE a.school_id = r.school_id AND a.status = 'ACTIVE'
                 ORDER BY a.enrolled_at DESC LIMIT 1) AS agent_id
          FROM runs r JOIN schools s ON s.id = r.school_id
         WHERE r.state = 'SCHEDULED' AND r.due_at <= ${now} AND r.deadline_at > ${now}
         ORDER BY (r.trigger IN ('MANUAL', 'RESYNC')) DESC, r.due_at, r.id
         LIMIT ${room * 4}`;
      const taken = new Map<string, number>();
      const chosen: { id: string; agentId: string }[] = [];
      const noAgent: string[] = [];
      const schoolBusy: string[] = [];
      for (const c of candidates) {
        if (chosen.length >= room) break;
        const used = c.busy + (taken.get(c.school_id) ?? 0);
        if (used >= c.cap) {
          schoolBusy.push(c.id);
          continue;
        }
        if (!c.agent_id) {
          noAgent.push(c.id);
          continue;
        }
        taken.set(c.school_id, (taken.get(c.school_id) ?? 0) + 1);
        chosen.push({ id: c.id, agentId: c.agent_id });
      }
      if (noAgent.length > 0) {
        await tx.run.updateMany({
          where: { id: { in: noAgent }, state: 'SCHEDULED' },
          data: { waitReason: 'no agent is enrolled at this school' },
        });
      }
      if (schoolBusy.length > 0) {
        await tx.run.updateMany({
          where: { id: { in: schoolBusy }, state: 'SCHEDULED', waitReason: null },
          data: { waitReason: 'waiting for another run at this school to finish' },
        });
      }
      for (const c of chosen) {
        await tx.run.updateMany({
          where: { id: c.id, state: 'SCHEDULED' },
          data: { state: 'DISPATCHED', agentId: c.agentId, dispatchedAt: now, waitReason: null },
        });
      }
      return chosen.map((c) => c.id);
    });
    if (ids.length === 0) return [];
    return this.prisma.client.run.findMany({ where: { id: { in: ids } }, select: RUN_SELECT });
  }

  /** Runs of one school that are waiting for its agent (dispatched, job not accepted yet). */
  dispatchedForSchool(schoolId: string): Promise<RunRow[]> {
    return this.prisma.client.run.findMany({
      where: { schoolId, state: { in: ['DISPATCHED', 'RUNNING'] } },
      select: RUN_SELECT,
    });
  }

  /** Dispatched or running runs whose next dataset waits to be offered (none offered or running). */
  async waitingForOffer(limit: number): Promise<RunRow[]> {
    const ids = await this.prisma.client.$queryRaw<{ id: string }[]>`
      SELECT r.id FROM runs r
       WHERE r.state IN ('DISPATCHED', 'RUNNING') AND r.agent_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM run_jobs j WHERE j.run_id = r.id AND j.state = 'PENDING')
         AND NOT EXISTS (SELECT 1 FROM run_jobs j WHERE j.run_id = r.id AND j.state IN ('OFFERED', 'RUNNING'))
       LIMIT ${limit}`;
    if (ids.length === 0) return [];
    return this.prisma.client.run.findMany({
      where: { id: { in: ids.map((r) => r.id) } },
      select: RUN_SELECT,
    });
  }

  /** SCHEDULED runs whose timer may have been lost (Redis restarted): due before `until`. */
  scheduledBefore(until: Date, limit: number): Promise<{ id: string; dueAt: Date; trigger: RunTrigger }[]> {
    return this.prisma.client.run.findMany({
      where: { state: 'SCHEDULED', dueAt: { lte: until } },
      select: { id: true, dueAt: true, trigger: true },
      orderBy: { dueAt: 'asc' },
      take: limit,
    });
  }

  /** Open runs past their deadline (SCHEDULED/DISPATCHED) or past deadline + grace (RUNNING). */
  overdue(now: Date, uploadGraceMs: number, limit: number): Promise<RunRow[]> {
    return this.prisma.client.run.findMany({
      where: {
        OR: [
          { state: { in: ['SCHEDULED', 'DISPATCHED'] }, deadlineAt: { lte: now } },
          { state: 'RUNNING', deadlineAt: { lte: new Date(now.getTime() - uploadGraceMs) } },
        ],
      },
      select: RUN_SELECT,
      take: limit,
    });
  }

  /** Uploaded or processed runs not touched for a while: their queue job may have been lost. */
  stalledProcessing(olderThan: Date, limit: number): Promise<{ id: string }[]> {
    return this.prisma.client.run.findMany({
      where: { state: { in: ['UPLOADED', 'PROCESSED'] }, updatedAt: { lte: olderThan } },
      select: { id: true },
      take: limit,
    });
  }

  async list(filter: RunFilter, page: { cursor?: { dueAt: Date; id: string }; limit: number }) {
    const where: Prisma.RunWhereInput = {
      ...(filter.partnerId ? { partnerId: filter.partnerId } : {}),
      ...(filter.schoolId ? { schoolId: filter.schoolId } : {}),
      ...(filter.extractId ? { extractVersion: { extractId: filter.extractId } } : {}),
      ...(filter.states?.length ? { state: { in: filter.states } } : {}),
      ...(filter.from || filter.to
        ? { dueAt: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } }
        : {}),
    };
    const cursorWhere: Prisma.RunWhereInput = page.cursor
      ? {
          OR: [
            { dueAt: { lt: page.cursor.dueAt } },
            { dueAt: page.cursor.dueAt, id: { lt: page.cursor.id } },
          ],
        }
      : {};
    return this.prisma.client.run.findMany({
      where: { AND: [where, cursorWhere] },
      select: RUN_SELECT,
      orderBy: [{ dueAt: 'desc' }, { id: 'desc' }],
      take: page.limit,
    });
  }

  // ─── Jobs ────────────────────────────────────────────────────────────────

  findJob(jobId: string): Promise<RunJobRow | null> {
    return this.prisma.client.runJob.findUnique({
      where: { id: jobId },
      include: { run: { select: RUN_SELECT } },
    });
  }

  /**
   * A job for one chunk of its upload: the job and its run's id, state and school — two small
   * reads, where {@link findJob} makes seven (the run view with its extract, school and jobs).
   */
  findUploadJob(jobId: string): Promise<UploadJobRow | null> {
    return this.prisma.client.runJob.findUnique({
      where: { id: jobId },
      include: { run: { select: UPLOAD_RUN_SELECT } },
    });
  }

  async transitionJob(
    jobId: string,
    from: RunJobState[],
    to: RunJobState,
    data: Prisma.RunJobUncheckedUpdateManyInput = {},
  ): Promise<boolean> {
    const { count } = await this.prisma.client.runJob.updateMany({
      where: { id: jobId, state: { in: from } },
      data: { ...data, state: to },
    });
    return count > 0;
  }

  /**
   * Records chunk `seq` as stored, with the sha256 of its plaintext (for reuse by the next run):
   * only if it is the next one of the upload sealed with `wrappedKey` (a repeat, or a late chunk of
   * an upload the agent restarted with another key, changes nothing). `reusedBytes` > 0 for a chunk
   * taken from an earlier run's copy rather than sent.
   */
  async advanceUpload(
    jobId: string,
    wrappedKey: string,
    seq: number,
    plainSha256: string,
    reusedBytes = 0,
  ): Promise<boolean> {
    const rows = await this.prisma.client.$queryRaw<{ job_id: string }[]>`
      WITH moved AS (
        UPDATE run_jobs
           SET next_seq = ${seq} + 1,
               reused_chunks = reused_chunks + ${reusedBytes > 0 ? 1 : 0},
               reused_bytes = reused_bytes + ${reusedBytes},
               updated_at = now()
         WHERE id = ${jobId}::uuid AND state = 'RUNNING' AND next_seq = ${seq}
           AND wrapped_key = ${wrappedKey}
        RETURNING id)
      INSERT INTO run_chunks (job_id, seq, plain_sha256)
      SELECT id, ${seq}, ${plainSha256} FROM moved
      ON CONFLICT (job_id, seq) DO UPDATE SET plain_sha256 = EXCLUDED.plain_sha256
      RETURNING job_id`;
    return rows.length > 0;
  }

  /**
   * The job whose stored chunks a new job of the same school, extract, dataset and parameters may
   * reuse: the newest uploaded one of a processed run whose chunks are all still stored and
   * recorded, sealed under the active result key. With its chunk digests in seq order.
   */
  async reuseSource(
    run: { id: string; schoolId: string; extractVersionId: string; paramsHash: string },
    datasetName: string,
    resultKeyId: string,
    limit: number,
  ): Promise<{ jobId: string; chunks: string[] } | null> {
    const [source] = await this.prisma.client.$queryRaw<{ id: string; chunk_count: number }[]>`
      SELECT j.id, j.chunk_count
        FROM run_jobs j
        JOIN runs r ON r.id = j.run_id
        JOIN extract_versions v ON v.id = r.extract_version_id
       WHERE r.school_id = ${run.schoolId}::uuid
         AND v.extract_id = (SELECT extract_id FROM extract_versions WHERE id = ${run.extractVersionId}::uuid)
         AND r.params_hash = ${run.paramsHash}
         AND r.id <> ${run.id}::uuid
         AND r.state IN ('PROCESSED', 'DELIVERED')
         AND r.purged_at IS NULL
         AND j.dataset_name = ${datasetName}
         AND j.state = 'UPLOADED'
         AND j.result_key_id = ${resultKeyId}
       ORDER BY j.uploaded_at DESC
       LIMIT 1`;
    if (!source) return null;
    const chunks = await this.prisma.client.runChunk.findMany({
      where: { jobId: source.id, seq: { lt: limit } },
      orderBy: { seq: 'asc' },
      select: { plainSha256: true },
    });
    // Jobs stored before digests were recorded (or with gaps) offer nothing.
    if (chunks.length !== Math.min(limit, source.chunk_count)) return null;
    return { jobId: source.id, chunks: chunks.map((c) => c.plainSha256) };
  }

  /**
   * When every chunk of an uploaded job was reused from the job whose result the delta state of
   * this dataset already holds, the rows are exactly that result's (each chunk's plaintext was
   * checked against its digest when it was re-sealed): its snapshot is this job's snapshot, with
   * no change. The agent's whole-result digest and counts must agree with that result's, else
   * null and the job is processed in full (where a wrong digest fails it).
   */
  async unchangedSnapshot(
    run: { schoolId: string; paramsHash: string; extractVersionId: string },
    extractId: string,
    job: {
      datasetName: string;
      reuseJobId: string | null;
      reusedChunks: number;
      chunkCount: number | null;
      rowCount: number | null;
      resultSha256: string | null;
    },
  ): Promise<{ snapshotKey: string; rowCount: number; sourceRunId: string } | null> {
    if (!job.reuseJobId || !job.chunkCount || job.reusedChunks !== job.chunkCount) return null;
    const source = await this.prisma.client.runJob.findUnique({
      where: { id: job.reuseJobId },
      select: {
        runId: true,
        chunkCount: true,
        rowCount: true,
        resultSha256: true,
        run: { select: { extractVersionId: true } },
      },
    });
    if (
      !source ||
      // Another version may key or name the same rows differently: only a full pass checks that.
      source.run.extractVersionId !== run.extractVersionId ||
      source.chunkCount !== job.chunkCount ||
      source.rowCount !== job.rowCount ||
      source.resultSha256 !== job.resultSha256
    ) {
      return null;
    }
    const state = await this.prisma.client.deltaState.findUnique({
      where: {
        schoolId_extractId_datasetName_paramsHash: {
          schoolId: run.schoolId,
          extractId,
          datasetName: job.datasetName,
          paramsHash: run.paramsHash,
        },
      },
      select: { runId: true, snapshotKey: true, rowCount: true },
    });
    if (state?.runId !== source.runId || state.rowCount !== job.rowCount) return null;
    return { snapshotKey: state.snapshotKey, rowCount: state.rowCount, sourceRunId: source.runId };
  }

  /** Forgets the plaintext digests of chunks at or beyond `chunkCount` (left by an earlier attempt). */
  async dropChunkDigestsFrom(jobId: string, chunkCount: number): Promise<void> {
    await this.prisma.client.runChunk.deleteMany({ where: { jobId, seq: { gte: chunkCount } } });
  }

  /** Chunk `seq` of a reuse source, with what it takes to open it; null when it is not there. */
  async reuseChunk(jobId: string, seq: number) {
    const chunk = await this.prisma.client.runChunk.findUnique({
      where: { jobId_seq: { jobId, seq } },
      select: {
        plainSha256: true,
        job: {
          select: {
            id: true,
            runId: true,
            wrappedKey: true,
            resultKeyId: true,
            run: { select: { schoolId: true, purgedAt: true } },
          },
        },
      },
    });
    if (!chunk?.job.wrappedKey || chunk.job.run.purgedAt) return null;
    return chunk;
  }

  updateJob(jobId: string, data: Prisma.RunJobUncheckedUpdateInput) {
    return this.prisma.client.runJob.update({ where: { id: jobId }, data });
  }

  /** Puts every unfinished job of a run back to PENDING (a retry starts the datasets again). */
  async resetJobs(runId: string): Promise<void> {
    await this.prisma.client.runChunk.deleteMany({ where: { job: { runId } } });
    await this.prisma.client.runJob.updateMany({
      where: { runId, state: { in: ['PENDING', 'OFFERED', 'RUNNING', 'FAILED', 'UPLOADED'] } },
      data: {
        state: 'PENDING',
        wrappedKey: null,
        resultKeyId: null,
        nextSeq: 0,
        rowCount: null,
        chunkCount: null,
        byteCount: null,
        resultSha256: null,
        errorCode: null,
        errorMessage: null,
        reuseJobId: null,
        reusedChunks: 0,
        reusedBytes: 0,
      },
    });
  }

  async cancelJobs(runId: string): Promise<{ id: string; agentId: string | null; state: RunJobState }[]> {
    const open = await this.prisma.client.runJob.findMany({
      where: { runId, state: { in: ['PENDING', 'OFFERED', 'RUNNING'] } },
      select: { id: true, agentId: true, state: true },
    });
    await this.prisma.client.runJob.updateMany({
      where: { runId, state: { in: ['PENDING', 'OFFERED', 'RUNNING'] } },
      data: { state: 'CANCELLED' },
    });
    return open;
  }

  // ─── Schedules ───────────────────────────────────────────────────────────

  activeSchedulesWithoutOpenRun(limit: number): Promise<{ id: string }[]> {
    return this.prisma.client.$queryRaw<{ id: string }[]>`
      SELECT s.id FROM schedules s
       WHERE s.active
         AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.schedule_id = s.id
                          AND r.state IN ('SCHEDULED', 'DISPATCHED', 'RUNNING', 'UPLOADED', 'PROCESSED'))
       LIMIT ${limit}`;
  }
}
