import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { generateDataKey, sha256Hex, verifyEnvelope, wrapKeyForRecipient } from '@keystage/crypto';
import type { QueryParam } from '@keystage/mis-connectors';
import { type JobRejectCode, type JobSpec, type MessageBody, RunFailureCode } from '@keystage/protocol';
import { type MisKind, type MisSession, misErrorCode, validateReadOnly } from './mis.js';
import type { ReplayCache } from './replay-cache.js';

type RejectCode = (typeof JobRejectCode)[keyof typeof JobRejectCode];

export interface JobOutbox {
  accept(body: MessageBody<'job.accept'>): void;
  reject(body: MessageBody<'job.reject'>): void;
  complete(body: MessageBody<'run.complete'>): void;
  fail(body: MessageBody<'run.failed'>): void;
}

export interface JobRunnerOptions {
  /** Which SQL dialect jobs are checked against. */
  misKind: MisKind;
  /** The control plane's job-signing key, pinned at enrolment. */
  pinnedKey: string;
  replay: ReplayCache;
  /** Opens the MIS; undefined when no credentials are available (supervised agent without its operator). */
  openMis: () => Promise<MisSession> | undefined;
  /** When set, one line per statement sent to the MIS (time, run, sha256 of the SQL) — never row data. */
  statementLog?: string | undefined;
  onError?: (code: string, message: string) => void;
}

interface Running {
  runId: string;
  accept: MessageBody<'job.accept'>;
  abort: AbortController;
}

const reject = (
  runId: string,
  code: RejectCode,
  message: string,
  retryable = false,
): MessageBody<'job.reject'> => ({
  runId,
  code,
  message,
  retryable,
});

/**
 * Checks a signed job and runs it. In order, before the MIS is touched: the signature against the
 * pinned key, the validity window, replay, the SQL hash, the SQL being one read-only statement, then
 * capacity and credentials. One job at a time (one MIS query at a time is what schools expect).
 */
export class JobRunner {
  private running: Running | undefined;

  constructor(private readonly options: JobRunnerOptions) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  async offer(signedJob: unknown, out: JobOutbox): Promise<void> {
    const claimedRunId = readRunId(signedJob);
    const verified = verifyEnvelope<JobSpec>(signedJob, this.options.pinnedKey, { kind: 'job' });
    if (!verified.ok) {
      const code: RejectCode =
        verified.code === 'envelope.expired'
          ? 'job.expired'
          : verified.code === 'envelope.not_yet_valid'
            ? 'job.not_yet_valid'
            : verified.code === 'envelope.bad_lifetime'
              ? 'job.invalid'
              : 'job.bad_signature';
      out.reject(reject(claimedRunId, code, verified.message));
      this.options.onError?.(code, verified.message);
      return;
    }
    const { envelope } = verified;
    const job = envelope.payload;
    if (this.running?.runId === job.runId) {
      // The cloud re-offered a run we hold (it missed our accept): answer the same way again.
      out.accept(this.running.accept);
      return;
    }
    if (this.options.replay.has(envelope.nonce)) {
      out.reject(reject(job.runId, 'job.replayed', 'this job was already received once'));
      this.options.onError?.('job.replayed', 'a job was replayed');
      return;
    }
    this.options.replay.remember(envelope.nonce, Date.parse(envelope.expiresAt));
    if (sha256Hex(job.sql) !== job.sqlSha256) {
      out.reject(reject(job.runId, 'job.hash_mismatch', 'the SQL does not match the approved hash'));
      return;
    }
    const readOnly = await validateReadOnly(job.sql, this.options.misKind);
    if (!readOnly.ok) {
      out.reject(reject(job.runId, 'job.sql_not_read_only', readOnly.message));
      return;
    }
    if (this.running) {
      out.reject(reject(job.runId, 'job.busy', 'another job is running', true));
      return;
    }
    const session = this.options.openMis();
    if (!session) {
      out.reject(
        reject(
          job.runId,
          'job.credentials_missing',
          'no MIS credentials: waiting for a supervised session',
          true,
        ),
      );
      return;
    }
    const dataKey = generateDataKey();
    const accept: MessageBody<'job.accept'> = {
      runId: job.runId,
      dataKey: {
        keyId: job.resultKey.keyId,
        wrapped: wrapKeyForRecipient(dataKey, job.resultKey.publicKey, job.runId).toString('base64'),
      },
    };
    const running: Running = { runId: job.runId, accept, abort: new AbortController() };
    this.running = running;
    out.accept(accept);
    try {
      await this.execute(job, await session, running, out);
    } finally {
      this.running = undefined;
    }
  }

  cancel(runId: string): boolean {
    if (this.running?.runId !== runId) return false;
    this.running.abort.abort();
    return true;
  }

  private async execute(job: JobSpec, mis: MisSession, running: Running, out: JobOutbox): Promise<void> {
    const started = new Date();
    const deadline = Date.parse(job.deadline);
    const timer = setTimeout(
      () => running.abort.abort(new Error('deadline')),
      Math.max(0, deadline - Date.now()),
    );
    let rowCount = 0;
    const digest = createHash('sha256');
    let queryMs = 0;
    try {
      if (this.options.statementLog) {
        appendFileSync(
          this.options.statementLog,
          `${new Date().toISOString()} run=${job.runId} sql_sha256=${job.sqlSha256}\n`,
        );
      }
      const t0 = performance.now();
      let first = true;
      for await (const row of mis.stream(job.sql, job.parameters as QueryParam[], running.abort.signal)) {
        if (first) {
          queryMs = Math.round(performance.now() - t0);
          first = false;
        }
        rowCount++;
        digest.update(JSON.stringify(row));
        digest.update('\n');
      }
      const finished = new Date();
      const totalMs = finished.getTime() - started.getTime();
      out.complete({
        runId: job.runId,
        rowCount,
        chunkCount: 0,
        byteCount: 0,
        resultSha256: digest.digest('hex'),
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        timings: { queryMs, streamMs: Math.max(0, totalMs - queryMs), totalMs },
      });
    } catch (err) {
      const aborted = running.abort.signal.aborted;
      const deadlineHit =
        aborted &&
        running.abort.signal.reason instanceof Error &&
        running.abort.signal.reason.message === 'deadline';
      const code = deadlineHit
        ? RunFailureCode.DeadlineExceeded
        : aborted
          ? RunFailureCode.Cancelled
          : misErrorCode(err);
      const message = deadlineHit
        ? 'the run passed its deadline'
        : aborted
          ? 'cancelled by the control plane'
          : redact(err);
      this.options.onError?.(code, message);
      out.fail({ runId: job.runId, code, message, retryable: code === RunFailureCode.MisUnavailable });
    } finally {
      clearTimeout(timer);
      await mis.close().catch(() => undefined);
    }
  }
}

function readRunId(job: unknown): string {
  const id = (job as { payload?: { runId?: unknown } } | null)?.payload?.runId;
  return typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id) ? id : '00000000-0000-0000-0000-000000000000';
}

/** An error message without values that could carry data or secrets. */
function redact(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text
    .replace(/'[^']*'/g, "'…'")
    .replace(/\w+:\/\/\S+/g, '[url]')
    .slice(0, 300);
}
