import { decryptChunk, encryptChunk, sha256Hex, unwrapKeyForRecipient } from '@keystage/crypto';
import { JobRejectCode } from '@keystage/protocol';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import {
  AgentGateway,
  type AgentMessageEvent,
  type AgentMessageHandler,
  type AgentReply,
} from '../agents/agent-gateway.js';
import { PlatformKeysService } from '../agents/platform-keys.service.js';
import { UUID } from '../common/uuid.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { ResultStore } from '../results/result-store.js';
import { RunDispatcher } from './run-dispatcher.js';
import { RunLifecycle } from './run-lifecycle.js';
import { RunQueue } from './run-queue.js';
import { type RunJobRow, RunsRepository, type UploadJobRow } from './runs.repository.js';
import { SnapshotPrebuilds } from './snapshot-prebuilds.js';

/** Rejections worth offering again later (the agent was busy, expired in transit, no session). */
const RETRY_REJECTS = new Set<string>([JobRejectCode.Expired, JobRejectCode.NotYetValid]);
/** A safety net: a busy agent gets the job again as soon as it finishes its current one. */
const REOFFER_DELAY_MS = 5_000;

/**
 * The gateway side of the run lifecycle: what agents say about jobs, recorded in PostgreSQL before
 * the gateway answers, so an acknowledgement always means "stored". An agent can only speak about
 * jobs dispatched to it: anything else is answered `run.unknown` and changes nothing.
 */
@Injectable()
export class RunMessages implements AgentMessageHandler, OnModuleInit {
  /** Unwrapped data keys of uploads in progress on this node. */
  private readonly keys = new Map<string, { wrapped: string; key: Buffer }>();

  constructor(
    private readonly gateway: AgentGateway,
    private readonly repo: RunsRepository,
    private readonly lifecycle: RunLifecycle,
    private readonly dispatcher: RunDispatcher,
    private readonly queue: RunQueue,
    private readonly results: ResultStore,
    private readonly platformKeys: PlatformKeysService,
    private readonly prebuilds: SnapshotPrebuilds,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext('Runs');
  }

  onModuleInit(): void {
    this.gateway.setMessageHandler(this);
  }

  /**
   * An agent is up: its pending queue loses offers it must no longer get before it may pull (the
   * gateway holds `work.pull` until this returns); the re-offers and dispatch follow without
   * holding its frames up.
   */
  async connected(agentId: string, schoolId: string): Promise<void> {
    await this.dispatcher.dropStaleOffers(agentId, schoolId);
    void this.dispatcher.agentReady(agentId, schoolId).catch((err: unknown) => {
      this.logger.error({ err, agentId }, 'run hand-over after connect failed');
    });
  }

  async handle(event: AgentMessageEvent, reply: AgentReply): Promise<void> {
    const { message } = event;
    if (message.type === 'job.progress') return;
    if (!('runId' in message.body)) return;
    const runId = message.body.runId as string;
    if (message.type === 'chunk' || message.type === 'chunk.data' || message.type === 'chunk.reuse') {
      // Read afresh for every chunk (a cancel or a new upload may have been decided on another
      // node), but only what a chunk needs: most of an upload's statements are these.
      const job = await this.jobOf(event.agentId, runId, (id) => this.repo.findUploadJob(id));
      if (!job) return this.unknown(runId, true, reply);
      if (message.type === 'chunk.reuse') return this.chunkReuse(job, message.body, reply);
      // Bytes from a binary frame (1.3), or base64 in a `chunk` text message.
      const bytes =
        message.type === 'chunk.data'
          ? (event.payload ?? Buffer.alloc(0))
          : Buffer.from(message.body.payload, 'base64');
      return this.chunk(job, { ...message.body, bytes }, reply);
    }
    const job = await this.jobOf(event.agentId, runId, (id) => this.repo.findJob(id));
    if (!job) {
      return this.unknown(runId, message.type === 'job.accept' || message.type === 'run.resume', reply);
    }
    switch (message.type) {
      case 'job.accept':
        return this.accepted(job, message.body.dataKey, reply);
      case 'job.reject':
        return this.rejected(job, message.body);
      case 'run.complete':
        await this.completed(job, message.body, reply);
        return this.dispatcher.agentReady(event.agentId, event.schoolId);
      case 'run.failed':
        await this.failed(job, message.body, reply);
        return this.dispatcher.agentReady(event.agentId, event.schoolId);
      case 'run.resume':
        return this.resume(job, reply);
    }
  }

  /**
   * The answer about a job that is not this agent's: `run.unknown`, and — for a message that means
   * the agent holds such a job (a stale offer) — `job.cancel`, or it would stay busy with it.
   */
  private unknown(runId: string, stoppable: boolean, reply: AgentReply): void {
    reply('error', { code: 'run.unknown', message: 'no such run for this agent' });
    if (stoppable && UUID.test(runId)) {
      reply('job.cancel', { runId, reason: 'no such run for this agent' });
    }
  }

  /** Where the upload stands, as a `chunk.ack` (also the answer to `run.resume`). */
  private ack(job: { id: string }, nextSeq: number, reply: AgentReply, reuse?: false): void {
    reply('chunk.ack', {
      runId: job.id,
      nextSeq,
      credits: this.config.delivery.ingestCredits,
      ...(reuse === false ? { reuse } : {}),
    });
  }

  private async resume(job: RunJobRow, reply: AgentReply): Promise<void> {
    if (job.state === 'UPLOADED') return this.ack(job, job.chunkCount ?? job.nextSeq, reply);
    if (job.state !== 'RUNNING') {
      reply('job.cancel', { runId: job.id, reason: `the run is ${job.run.state.toLowerCase()}` });
      return;
    }
    this.ack(job, job.nextSeq, reply);
  }

  /**
   * One chunk of an upload: checked (position, size and sha256, then authenticated decryption with
   * the run's data key — a chunk of another run or position does not open), stored encrypted under
   * the school's key, recorded, acknowledged. A duplicate is acknowledged again and dropped.
   */
  private async chunk(
    job: UploadJobRow,
    body: { seq: number; byteLength: number; sha256: string; bytes: Buffer },
    reply: AgentReply,
  ): Promise<void> {
    if (!this.inWindow(job, body.seq, reply)) return;
    const bytes = body.bytes;
    if (bytes.length !== body.byteLength || sha256Hex(bytes) !== body.sha256) {
      reply('error', {
        code: 'chunk.digest_mismatch',
        message: `chunk ${body.seq} does not match its sha256`,
      });
      return;
    }
    const dataKey = await this.dataKey(job);
    let plaintext: Buffer;
    try {
      plaintext = decryptChunk(bytes, dataKey, { runId: job.id, seq: body.seq });
    } catch {
      this.logger.warn({ runId: job.runId, seq: body.seq }, 'refused a chunk that does not authenticate');
      reply('error', {
        code: 'chunk.rejected',
        message: `chunk ${body.seq} does not authenticate for this run and position`,
      });
      await this.repo.transitionJob(job.id, ['RUNNING'], 'FAILED', {
        errorCode: 'chunk.rejected',
        errorMessage: `chunk ${body.seq} did not authenticate`,
      });
      reply('job.cancel', { runId: job.id, reason: 'a chunk did not authenticate' });
      this.prebuilds.release(job.id);
      const run = await this.repo.find(job.runId);
      if (!run) return;
      await this.lifecycle.failOrRetry(run, {
        code: 'result.chunk_rejected',
        message: `chunk ${body.seq} of dataset ${job.datasetName} did not authenticate`,
        retryable: true,
      });
      return;
    }
    await this.results.put(job.run.schoolId, this.results.chunkKey(job.runId, job.id, body.seq), bytes);
    const stored = await this.repo.advanceUpload(job.id, job.wrappedKey!, body.seq, sha256Hex(plaintext));
    if (stored) job.nextSeq = body.seq + 1;
    this.ack(job, job.nextSeq, reply);
    if (stored) this.prebuilds.offer({ ...job, wrappedKey: job.wrappedKey! }, body.seq, bytes, dataKey);
  }

  /**
   * Whether chunk `seq` is the one to store now. Otherwise answers for it: a finished upload or a
   * resend is acknowledged with where the upload stands, a closed one cancelled, one beyond the
   * credits refused.
   */
  private inWindow(job: UploadJobRow, seq: number, reply: AgentReply): boolean {
    if (job.state === 'UPLOADED') {
      this.ack(job, job.chunkCount ?? job.nextSeq, reply);
      return false;
    }
    if (job.state !== 'RUNNING' || !job.wrappedKey) {
      reply('job.cancel', { runId: job.id, reason: 'no upload is open for this run' });
      return false;
    }
    if (seq === job.nextSeq) return true;
    if (seq >= job.nextSeq + this.config.delivery.ingestCredits) {
      reply('error', { code: 'chunk.out_of_window', message: `chunk ${seq} is beyond the credits` });
      return false;
    }
    // A resend of a stored chunk, or one after a gap: say where the upload really is.
    this.ack(job, job.nextSeq, reply);
    return false;
  }

  /**
   * A chunk the agent did not send because the earlier result this job was offered for reuse has
   * the same plaintext at that position (protocol 1.2): our copy of it is opened with that run's
   * data key, its digest checked, sealed again for this job and seq, stored and recorded as if it
   * had arrived. Anything that does not check out — no such copy, another school's, a digest that
   * differs, a size that does not match — is answered `reuse: false` and the agent sends bytes.
   */
  private async chunkReuse(
    job: UploadJobRow,
    body: { seq: number; byteLength: number; plainSha256: string },
    reply: AgentReply,
  ): Promise<void> {
    if (!this.inWindow(job, body.seq, reply)) return;
    const refuse = (why: string) => {
      this.logger.info({ runId: job.runId, seq: body.seq, why }, 'chunk not reusable; asking for bytes');
      this.ack(job, job.nextSeq, reply, false);
    };
    if (!job.reuseJobId) return refuse('no reuse was offered');
    const source = await this.repo.reuseChunk(job.reuseJobId, body.seq);
    if (!source || source.job.run.schoolId !== job.run.schoolId) return refuse('no stored copy');
    if (source.plainSha256 !== body.plainSha256) return refuse('the digest differs');
    let plaintext: Buffer;
    try {
      const bytes = await this.results.getBuffer(
        job.run.schoolId,
        this.results.chunkKey(source.job.runId, source.job.id, body.seq),
      );
      const sourceKey = await this.dataKey(source.job);
      plaintext = decryptChunk(bytes, sourceKey, { runId: source.job.id, seq: body.seq });
    } catch {
      return refuse('the stored copy cannot be opened');
    }
    if (sha256Hex(plaintext) !== body.plainSha256) return refuse('the stored copy differs');
    const sealed = encryptChunk(plaintext, await this.dataKey(job), { runId: job.id, seq: body.seq });
    if (sealed.length !== body.byteLength) return refuse('the sealed size differs');
    await this.results.put(job.run.schoolId, this.results.chunkKey(job.runId, job.id, body.seq), sealed);
    const stored = await this.repo.advanceUpload(
      job.id,
      job.wrappedKey!,
      body.seq,
      body.plainSha256,
      sealed.length,
    );
    if (stored) job.nextSeq = body.seq + 1;
    this.ack(job, job.nextSeq, reply);
    // Decoding ahead is for results that arrive: one whose chunks are reused is most likely the
    // last one again (processing then needs no snapshot at all).
    if (stored) this.prebuilds.release(job.id);
  }

  /** The data key of a job (this one, or a reuse source), unwrapped with the active result key. */
  private async dataKey(job: {
    id: string;
    wrappedKey: string | null;
    resultKeyId: string | null;
  }): Promise<Buffer> {
    const cached = this.keys.get(job.id);
    if (cached && cached.wrapped === job.wrappedKey) return cached.key;
    const wrapping = await this.platformKeys.active('result-wrapping');
    if (job.resultKeyId !== wrapping.keyId || !job.wrappedKey) {
      throw new Error('the data key was wrapped for a result key that is no longer active');
    }
    const key = unwrapKeyForRecipient(
      Buffer.from(job.wrappedKey, 'base64'),
      wrapping.privateKeyObject,
      job.id,
    );
    if (this.keys.size > 1000) this.keys.clear();
    this.keys.set(job.id, { wrapped: job.wrappedKey, key });
    return key;
  }

  /** The job (read with `read`), if it exists and was given to this agent. */
  private async jobOf<J extends { agentId: string | null }>(
    agentId: string,
    jobId: string,
    read: (jobId: string) => Promise<J | null>,
  ): Promise<J | null> {
    if (!UUID.test(jobId)) return null;
    const job = await read(jobId);
    if (!job || job.agentId !== agentId) return null;
    return job;
  }

  private async accepted(
    job: RunJobRow,
    dataKey: { keyId: string; wrapped: string },
    reply: AgentReply,
  ): Promise<void> {
    const open = job.run.state === 'DISPATCHED' || job.run.state === 'RUNNING';
    if (!open || job.state === 'CANCELLED' || job.state === 'FAILED' || job.state === 'UPLOADED') {
      reply('job.cancel', { runId: job.id, reason: `the run is ${job.run.state.toLowerCase()}` });
      return;
    }
    if (job.state !== 'RUNNING' || job.wrappedKey !== dataKey.wrapped) {
      await this.repo.transitionJob(job.id, ['PENDING', 'OFFERED', 'RUNNING'], 'RUNNING', {
        wrappedKey: dataKey.wrapped,
        resultKeyId: dataKey.keyId,
        acceptedAt: new Date(),
        nextSeq: 0,
        reusedChunks: 0,
        reusedBytes: 0,
      });
    }
    await this.lifecycle.move(job.runId, ['DISPATCHED'], 'RUNNING', { waitReason: null });
    const fresh = await this.repo.findJob(job.id);
    if (fresh?.state === 'RUNNING') this.ack(fresh, fresh.nextSeq, reply);
  }

  private async rejected(
    job: RunJobRow,
    body: { code: string; message: string; retryable: boolean },
  ): Promise<void> {
    if (job.state !== 'OFFERED' && job.state !== 'PENDING') return;
    // The same signed offer arrived twice (pushed and pulled): the first copy is being handled.
    if (body.code === JobRejectCode.Replayed) return;
    if (body.retryable || RETRY_REJECTS.has(body.code)) {
      await this.repo.transitionJob(job.id, ['OFFERED'], 'PENDING', { lastRejectCode: body.code });
      const reason =
        body.code === 'job.credentials_missing'
          ? 'waiting for a supervised session at the school (no MIS credentials)'
          : `the agent asked to try later (${body.code})`;
      await this.repo.update(job.runId, { waitReason: reason });
      await this.queue.tryKick(job.runId, new Date(Date.now() + REOFFER_DELAY_MS));
      return;
    }
    await this.repo.transitionJob(job.id, ['OFFERED', 'PENDING'], 'FAILED', {
      errorCode: body.code,
      errorMessage: body.message,
    });
    this.logger.warn({ runId: job.runId, code: body.code }, 'the agent refused a job');
    await this.lifecycle.move(job.runId, ['DISPATCHED', 'RUNNING'], 'FAILED', {
      errorCode: body.code,
      errorMessage: `the agent refused the job: ${body.message} (not retried)`,
    });
  }

  private async completed(
    job: RunJobRow,
    body: { rowCount: number; chunkCount: number; byteCount: number; resultSha256: string },
    reply: AgentReply,
  ): Promise<void> {
    if (job.state === 'UPLOADED') {
      reply('run.ack', { runId: job.id, outcome: 'completed' });
      return;
    }
    if (job.state !== 'RUNNING') {
      reply('run.ack', { runId: job.id, outcome: job.state === 'CANCELLED' ? 'cancelled' : 'failed' });
      return;
    }
    if (job.nextSeq < body.chunkCount) {
      // Not everything is stored yet (a resend is under way): ask for the rest, no ack.
      this.ack(job, job.nextSeq, reply);
      return;
    }
    await this.repo.transitionJob(job.id, ['RUNNING'], 'UPLOADED', {
      rowCount: body.rowCount,
      chunkCount: body.chunkCount,
      byteCount: BigInt(body.byteCount),
      resultSha256: body.resultSha256,
      uploadedAt: new Date(),
    });
    // Digests left by an earlier, longer attempt would make this result unusable as a reuse source.
    await this.repo.dropChunkDigestsFrom(job.id, body.chunkCount);
    reply('run.ack', { runId: job.id, outcome: 'completed' });
    await this.afterUpload(job.runId);
  }

  /** A dataset is in: offer the next one, or close the upload and queue processing. */
  private async afterUpload(runId: string): Promise<void> {
    const run = await this.repo.find(runId);
    if (run?.state !== 'RUNNING') return;
    if (await this.dispatcher.offerNext(run)) return;
    const rowCount = run.jobs.reduce((n, j) => n + (j.rowCount ?? 0), 0);
    const uploaded = await this.lifecycle.move(runId, ['RUNNING'], 'UPLOADED', { rowCount });
    if (uploaded) await this.queue.tryProcess(runId);
  }

  private async failed(
    job: RunJobRow,
    body: { code: string; message: string; retryable: boolean },
    reply: AgentReply,
  ): Promise<void> {
    this.prebuilds.release(job.id);
    if (job.state === 'RUNNING' || job.state === 'OFFERED') {
      await this.repo.transitionJob(job.id, ['RUNNING', 'OFFERED'], 'FAILED', {
        errorCode: body.code,
        errorMessage: body.message,
      });
      reply('run.ack', { runId: job.id, outcome: 'failed' });
      if (body.code !== 'run.cancelled') await this.lifecycle.failOrRetry(job.run, body);
      return;
    }
    reply('run.ack', { runId: job.id, outcome: job.state === 'CANCELLED' ? 'cancelled' : 'failed' });
  }
}
