import { signEnvelope } from '@keystage/crypto';
import { createMessage, encodeMessage, type JobSpec, type MessageBody } from '@keystage/protocol';
import { Inject, Injectable } from '@nestjs/common';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RedisProvider } from '../redis/redis.provider.js';
import { AgentPresence } from './agent-presence.js';
import { PlatformKeysService } from './platform-keys.service.js';

/** A job before signing; the channel adds the result key and signs it. */
export type JobInput = Pick<
  JobSpec,
  'extractVersionId' | 'datasetName' | 'sql' | 'sqlSha256' | 'parameters' | 'deadline' | 'reuse'
> & { runId: string };

/** Shortest validity a signed job gets, so a slow link still delivers it. */
const MIN_JOB_TTL_MS = 30_000;

/**
 * Reaches an agent from any role: signs jobs with the platform's job-signing key and routes frames
 * through Redis to the gateway node that holds the agent's socket. A job is also kept in the agent's
 * pending queue until the agent accepts or rejects it, so an agent that connects later pulls it.
 */
@Injectable()
export class AgentChannel {
  constructor(
    private readonly keys: PlatformKeysService,
    private readonly presence: AgentPresence,
    private readonly redis: RedisProvider,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  /**
   * Signs and delivers a job. The signature is valid for the configured job TTL, never past the
   * run's deadline (the agent must not start it after that); re-offering signs afresh.
   */
  async offerJob(agentId: string, job: JobInput): Promise<boolean> {
    const [signing, wrapping] = await Promise.all([
      this.keys.active('job-signing'),
      this.keys.active('result-wrapping'),
    ]);
    const payload = {
      ...job,
      resultKey: { alg: 'X25519', keyId: wrapping.keyId, publicKey: wrapping.publicKey },
    };
    const untilDeadline = Date.parse(job.deadline) - Date.now();
    const ttlMs = Math.max(MIN_JOB_TTL_MS, Math.min(this.config.agents.jobTtlMs, untilDeadline));
    const signed = signEnvelope(payload, signing.privateKeyObject, { kind: 'job', ttlMs });
    const frame = encodeMessage(createMessage('job.offer', { job: signed } as MessageBody<'job.offer'>));
    const key = this.pendingKey(agentId);
    await this.redis.client
      .multi()
      .hset(key, { [job.runId]: frame })
      .pexpire(key, 86_400_000)
      .exec();
    return this.send(agentId, frame);
  }

  async cancelJob(agentId: string, runId: string, reason: string): Promise<void> {
    await this.forget(agentId, runId);
    await this.send(agentId, encodeMessage(createMessage('job.cancel', { runId, reason })));
  }

  /** Drops a job from the agent's pending queue (accepted, rejected, cancelled). */
  async forget(agentId: string, runId: string): Promise<void> {
    await this.redis.client.hdel(this.pendingKey(agentId), runId);
  }

  /** The ids of the jobs in an agent's pending queue. */
  pendingIds(agentId: string): Promise<string[]> {
    return this.redis.client.hkeys(this.pendingKey(agentId));
  }

  /** The pending job frames of an agent, for `work.pull`. */
  pending(agentId: string): Promise<string[]> {
    return this.redis.client.hvals(this.pendingKey(agentId));
  }

  /** Sends a frame to an agent wherever its socket is; false when it is not connected anywhere. */
  send(agentId: string, frame: string): Promise<boolean> {
    return this.presence.route({ kind: 'send', agentId, frame });
  }

  isOnline(agentId: string): Promise<boolean> {
    return this.presence.onlineSet([agentId]).then((s) => s.has(agentId));
  }

  private pendingKey(agentId: string): string {
    return `${this.config.redisPrefix}:agents:pending:${agentId}`;
  }
}
