import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RedisProvider } from '../redis/redis.provider.js';

/** A command for the gateway node that holds an agent's socket. */
export type GatewayCommand =
  | { kind: 'disconnect'; agentId: string; code: 'agent.revoked' | 'agent.unknown'; message: string }
  | { kind: 'send'; agentId: string; frame: string };

const RELEASE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Which gateway node holds which agent's socket, in Redis (a key per agent, with a TTL the
 * heartbeats refresh), and a channel per node to reach it. Any node can therefore reach any agent.
 */
@Injectable()
export class AgentPresence implements OnApplicationShutdown {
  readonly nodeId = randomUUID();
  private subscriber: Redis | undefined;
  private readonly prefix: string;

  constructor(
    private readonly redis: RedisProvider,
    @Inject(CLOUD_CONFIG) config: CloudConfig,
  ) {
    this.prefix = `${config.redisPrefix}:agents`;
  }

  private key(agentId: string) {
    return `${this.prefix}:online:${agentId}`;
  }
  private channel(nodeId: string) {
    return `${this.prefix}:node:${nodeId}`;
  }

  async markOnline(agentId: string, ttlMs: number): Promise<void> {
    await this.redis.client.set(this.key(agentId), this.nodeId, 'PX', ttlMs);
  }

  /** Refreshes many agents' presence in one pipeline (the gateway's heartbeat flush). */
  async markManyOnline(agentIds: string[], ttlMs: number): Promise<void> {
    if (agentIds.length === 0) return;
    const pipeline = this.redis.client.pipeline();
    for (const id of agentIds) pipeline.set(this.key(id), this.nodeId, 'PX', ttlMs);
    await pipeline.exec();
  }

  async markOffline(agentId: string): Promise<void> {
    await this.redis.client.eval(RELEASE_IF_OWNER, 1, this.key(agentId), this.nodeId);
  }

  async onlineSet(agentIds: string[]): Promise<Set<string>> {
    if (agentIds.length === 0) return new Set();
    const owners = await this.redis.client.mget(...agentIds.map((id) => this.key(id)));
    return new Set(agentIds.filter((_, i) => owners[i] !== null));
  }

  /** Delivers a command to the node holding the agent; false when no node holds it. */
  async route(command: GatewayCommand): Promise<boolean> {
    const owner = await this.redis.client.get(this.key(command.agentId));
    if (!owner) return false;
    await this.redis.client.publish(this.channel(owner), JSON.stringify(command));
    return true;
  }

  /** Gateway nodes listen on their own channel. */
  async listen(handler: (command: GatewayCommand) => void): Promise<void> {
    this.subscriber = this.redis.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel, text) => {
      try {
        handler(JSON.parse(text) as GatewayCommand);
      } catch {
        // A malformed command from Redis is dropped; nothing an agent sent can reach this channel.
      }
    });
    await this.subscriber.subscribe(this.channel(this.nodeId));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.subscriber) await this.subscriber.quit().catch(() => this.subscriber?.disconnect());
  }
}
