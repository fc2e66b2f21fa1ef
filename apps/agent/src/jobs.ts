import { appendFileSync } from 'node:fs';
import { generateDataKey, sha256Hex, verifyEnvelope, wrapKeyForRecipient } from '@keystage/crypto';
import type { QueryParam } from '@keystage/mis-connectors';
import { type JobRejectCode, type JobSpec, type MessageBody, RunFailureCode } from '@keystage/protocol';
import {
  BufferFullError,
  type EncodedChunk,
  ResultEncoder,
  SpillBuffer,
  UploadWindow,
} from '@keystage/result-stream';
import { type MisKind, type MisSession, misErrorCode, validateReadOnly } from './mis.js';
import type { ReplayCache } from './replay-cache.js';

type RejectCode = (typeof JobRejectCode)[keyof typeof JobRejectCode];

/** Replies to one `job.offer` (they carry its message id). */
export interface JobOutbox {
  accept(body: MessageBody<'job.accept'>): void;
  reject(body: MessageBody<'job.reject'>): void;
}

/** The link to the control plane, whatever socket is current. */
export interface CloudLink {
  /** Sends on the current socket; false when there is none (the message is dropped). */
  send<T extends 'chunk.reuse' | 'run.resume' | 'run.complete' | 'run.failed' | 'job.progress'>(
    type: T,
    body: MessageBody<T>,
  ): boolean;
  /** Sends one chunk's bytes (binary frame or base64, as the control plane's version allows). */
  sendChunk(body: MessageBody<'chunk.data'>, payload: Buffer): boolean;
}

export interface JobRunnerOptions {
  /** Which SQL dialect jobs are checked against. */
  misKind: MisKind;
  /** The control plane's job-signing key, pinned at enrolment. */
  pinnedKey: string;
  replay: ReplayCache;
  /** Opens the MIS; undefined when no credentials are available (supervised agent without its operator). */
  openMis: () => Promise<MisSession> | undefined;
  link: CloudLink;
  /** Where chunks wait on disk while the control plane is slow or unreachable. */
  spillDir: string;
  /** Most bytes of chunks on disk per run; beyond it the run fails (retryable). */
  spillMaxBytes: number;
  /** When set, one line per statement sent to the MIS (time, run, sha256 of the SQL) — never row data. */
  statementLog?: string | undefined;
  onError?: (code: string, message: string) => void;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** The run in hand: querying, uploading, or waiting for the control plane's `run.ack`. */
interface Running {
  runId: string;
  accept: MessageBody<'job.accept'>;
  abort: AbortController;
  window?: UploadWindow;
  /** The final message, resent after a reconnect until `run.ack`. */
  final?:
    | { type: 'run.complete'; body: MessageBody<'run.complete'> }
    | { type: 'run.failed'; body: MessageBody<'run.failed'> };
  acked?: () => void;
  firstAck?: { runId: string; nextSeq: number; credits: number };
  /**
   * Plaintext digests of the chunks the control plane holds from the last result (the job's
   * `reuse.chunks`): a chunk that hashes the same is sent as `chunk.reuse`. Dropped when the control
   * plane answers `reuse: false`.
   */
  reuse?: readonly string[];
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

  /** The control plane acknowledged chunks: release them and send what the new credits allow. */
  onChunkAck(ack: { runId: string; nextSeq: number; credits: number; reuse?: boolean }): void {
    const running = this.running;
    if (running?.runId !== ack.runId) return;
    if (ack.reuse === false && running.reuse) {
      // The control plane could not reuse a chunk: bytes from its nextSeq on, for the rest of the run.
      running.reuse = undefined;
      running.window?.resetForReconnect();
    }
    const { runId, nextSeq, credits } = ack;
    if (!running.window) {
      // Credits granted before the query produced anything: kept for when the window opens.
      running.firstAck = { runId, nextSeq, credits };
      return;
    }
    running.window.onAck({ runId, nextSeq, credits });
    void this.pump(running);
  }

  /** The control plane recorded the outcome: forget the run. */
  onRunAck(runId: string): void {
    if (this.running?.runId === runId) this.running.acked?.();
  }

  /** A new socket is up: resume the upload in hand, or repeat the outcome not yet acknowledged. */
  onReconnect(): void {
    const running = this.running;
    if (!running) return;
    if (running.final) {
      this.options.link.send(running.final.type, running.final.body as never);
    } else if (running.window) {
      const { runId, nextSeq } = running.window.resetForReconnect();
      this.options.link.send('run.resume', { runId, nextSeq });
    }
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
    const running: Running = {
      runId: job.runId,
      accept,
      abort: new AbortController(),
      ...(job.reuse?.chunks.length ? { reuse: job.reuse.chunks } : {}),
    };
    this.running = running;
    out.accept(accept);
    try {
      await this.execute(job, await session, running, dataKey);
    } finally {
      this.running = undefined;
    }
  }

  cancel(runId: string): boolean {
    if (this.running?.runId !== runId) return false;
    this.running.abort.abort();
    return true;
  }

  private async execute(job: JobSpec, mis: MisSession, running: Running, dataKey: Buffer): Promise<void> {
    const started = new Date();
    const deadline = Date.parse(job.deadline);
    const timer = setTimeout(
      () => running.abort.abort(new Error('deadline')),
      Math.max(0, deadline - Date.now()),
    );
    const signal = running.abort.signal;
    let queryMs = 0;
    let window: UploadWindow | undefined;
    try {
      if (this.options.statementLog) {
        appendFileSync(
          this.options.statementLog,
          `${new Date().toISOString()} run=${job.runId} sql_sha256=${job.sqlSha256}\n`,
        );
      }
      const t0 = performance.now();
      const result = await mis.query(job.sql, job.parameters as QueryParam[], signal);
      const encoder = new ResultEncoder({ runId: job.runId, dataKey, columns: result.columns });
      window = new UploadWindow({
        runId: job.runId,
        spill: await SpillBuffer.create({
          rootDir: this.options.spillDir,
          runId: job.runId,
          maxBytes: this.options.spillMaxBytes,
        }),
      });
      running.window = window;
      if (running.firstAck) window.onAck(running.firstAck);
      const add = async (chunks: EncodedChunk[]) => {
        for (const chunk of chunks) {
          await window!.room({ bytes: chunk.byteLength, signal });
          await window!.add(chunk);
        }
        if (chunks.length > 0) void this.pump(running);
      };
      let first = true;
      try {
        for await (const batch of result.batches) {
          if (first) {
            queryMs = Math.round(performance.now() - t0);
            first = false;
          }
          if (!Array.isArray(batch)) {
            await add(encoder.pushPacked(batch));
            continue;
          }
          const sealed: EncodedChunk[] = [];
          for (const row of batch) for (const c of encoder.push(row)) sealed.push(c);
          await add(sealed);
        }
      } finally {
        await result.close().catch(() => undefined);
      }
      const { chunks, summary } = encoder.finish();
      await add(chunks);
      await this.untilAllAcked(running, window, signal);
      const finished = new Date();
      const totalMs = finished.getTime() - started.getTime();
      running.final = {
        type: 'run.complete',
        body: {
          runId: job.runId,
          rowCount: summary.rowCount,
          chunkCount: summary.chunkCount,
          byteCount: summary.byteCount,
          resultSha256: summary.resultSha256,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          timings: { queryMs, streamMs: Math.max(0, totalMs - queryMs), totalMs },
        },
      };
      this.options.log?.('run complete', {
        runId: job.runId,
        rows: summary.rowCount,
        chunks: summary.chunkCount,
      });
    } catch (err) {
      const aborted = signal.aborted;
      const deadlineHit = aborted && signal.reason instanceof Error && signal.reason.message === 'deadline';
      const code = deadlineHit
        ? RunFailureCode.DeadlineExceeded
        : aborted
          ? RunFailureCode.Cancelled
          : err instanceof BufferFullError
            ? RunFailureCode.BufferFull
            : misErrorCode(err);
      const message = deadlineHit
        ? 'the run passed its deadline'
        : aborted
          ? 'cancelled by the control plane'
          : err instanceof BufferFullError
            ? 'the upload buffer on disk is full: the control plane was unreachable for too long'
            : redact(err);
      this.options.onError?.(code, message);
      this.options.log?.('run failed', { runId: job.runId, code });
      running.final = {
        type: 'run.failed',
        body: {
          runId: job.runId,
          code,
          message,
          retryable: code === RunFailureCode.MisUnavailable || code === RunFailureCode.BufferFull,
        },
      };
    } finally {
      clearTimeout(timer);
      await mis.close().catch(() => undefined);
    }
    // Repeat the outcome (after each reconnect) until the control plane records it.
    const acked = new Promise<void>((resolve) => {
      running.acked = resolve;
    });
    this.options.link.send(running.final.type, running.final.body as never);
    const giveUp = setTimeout(() => running.acked?.(), Math.max(60_000, deadline - Date.now()));
    await acked;
    clearTimeout(giveUp);
    await window?.dispose().catch(() => undefined);
  }

  /** Sends what the window allows, in order, on the current socket. */
  private async pump(running: Running): Promise<void> {
    const window = running.window;
    if (!window) return;
    for (const chunk of await window.sendable()) {
      if (chunk.plainSha256 && running.reuse?.[chunk.seq] === chunk.plainSha256) {
        this.options.link.send('chunk.reuse', {
          runId: running.runId,
          seq: chunk.seq,
          byteLength: chunk.byteLength,
          plainSha256: chunk.plainSha256,
        });
        continue;
      }
      this.options.link.sendChunk(
        { runId: running.runId, seq: chunk.seq, byteLength: chunk.byteLength, sha256: chunk.sha256 },
        chunk.bytes,
      );
    }
  }

  private untilAllAcked(running: Running, window: UploadWindow, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (window.allAcked) {
          clearInterval(poll);
          signal.removeEventListener('abort', onAbort);
          resolve();
        } else {
          void this.pump(running);
        }
      };
      const onAbort = () => {
        clearInterval(poll);
        reject(signal.reason);
      };
      const poll = setInterval(check, 50);
      signal.addEventListener('abort', onAbort, { once: true });
      check();
    });
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
