import { Global, Module } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { Logger } from 'nestjs-pino';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { RedisProvider } from '../redis/redis.provider.js';

// Fixed window per key; when the limit is passed the tracker is blocked for `block` ms.
// Returns {hits, window pttl, blocked, block pttl}. One round trip, atomic.
const INCREMENT = `
local key, blockKey = KEYS[1], KEYS[2]
local ttl, limit, block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local blocked = redis.call('PTTL', blockKey)
if blocked > 0 then
  return {limit + 1, redis.call('PTTL', key), 1, blocked}
end
local hits = redis.call('INCR', key)
if hits == 1 then redis.call('PEXPIRE', key, ttl) end
local pttl = redis.call('PTTL', key)
if hits > limit then
  redis.call('SET', blockKey, '1', 'PX', block)
  return {hits, pttl, 1, block}
end
return {hits, pttl, 0, 0}
`;

/**
 * Rate-limit counters in Redis, shared by every API node. While Redis is unreachable the limits fail
 * open (requests pass, a warning is logged at most every 30 s): readiness already reports the outage,
 * and refusing every request would turn a Redis blip into a full API outage.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private lastWarned = 0;

  constructor(
    private readonly redis: RedisProvider,
    private readonly prefix: string,
    private readonly warn: (fields: Record<string, unknown>, message: string) => void = () => undefined,
  ) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string) {
    try {
      return await this.count(key, ttl, limit, blockDuration, throttlerName);
    } catch (err) {
      if (Date.now() - this.lastWarned > 30_000) {
        this.lastWarned = Date.now();
        this.warn({ err: (err as Error).message }, 'rate limits unavailable (Redis); failing open');
      }
      return { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 };
    }
  }

  private async count(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string) {
    const k = `${this.prefix}:throttle:${throttlerName}:${key}`;
    const [hits, pttl, blocked, blockPttl] = (await this.redis.client.eval(
      INCREMENT,
      2,
      k,
      `${k}:blocked`,
      ttl,
      limit,
      blockDuration > 0 ? blockDuration : ttl,
    )) as [number, number, number, number];
    return {
      totalHits: hits,
      timeToExpire: Math.max(0, Math.ceil(pttl / 1000)),
      isBlocked: blocked === 1,
      timeToBlockExpire: Math.max(0, Math.ceil(blockPttl / 1000)),
    };
  }
}

/** The one storage instance, shared by the per-IP throttler and the per-principal guard. */
export const throttlerStorageProvider = {
  provide: RedisThrottlerStorage,
  inject: [RedisProvider, CLOUD_CONFIG, Logger],
  useFactory: (redis: RedisProvider, config: CloudConfig, logger: Logger) =>
    new RedisThrottlerStorage(redis, config.redisPrefix, (fields, message) => logger.warn(fields, message)),
};

@Global()
@Module({ providers: [throttlerStorageProvider], exports: [RedisThrottlerStorage] })
export class ThrottleStorageModule {}
