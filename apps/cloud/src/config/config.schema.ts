import { z } from 'zod';

export const ROLES = ['api', 'gateway', 'worker'] as const;
export type Role = (typeof ROLES)[number];

const postgresUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'postgresql:' || u.protocol === 'postgres:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be a PostgreSQL URL such as postgresql://user@host:5432/db');

const redisUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be a Redis URL such as redis://127.0.0.1:6379');

const port = z.coerce.number().int().min(0).max(65535);

/**
 * Every setting of the control plane. Parsed once at start; nothing else reads process.env.
 * Secrets may also be given as `<NAME>_FILE` (a path whose content is the value).
 */
export const CloudEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: port.default(3000),
  DATABASE_URL: postgresUrl,
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key Keystage writes (queues, rate limits); lets environments share a Redis. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, _ and - only (1–40)')
    .default('keystage'),
  /** Comma-separated roles this process takes; all three by default (one node runs everything). */
  KEYSTAGE_ROLES: z
    .string()
    .default('api,gateway,worker')
    .transform((v, ctx) => {
      const roles = v
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
      if (bad.length > 0 || roles.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a comma-separated subset of ${ROLES.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`,
        });
        return z.NEVER;
      }
      return [...new Set(roles)] as Role[];
    }),
  /** Master secret: signs tokens and derives the keys that encrypt secrets at rest. */
  KEYSTAGE_SECRET: z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 48`)'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The portal's origin, the only one CORS lets in. */
  CORS_ORIGIN: z.string().trim().default('http://127.0.0.1:3000'),
  /** How long shutdown may take to drain requests and close queues before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Base URL people use to reach the portal/API; links in e-mails point here. */
  PUBLIC_URL: z.url().optional(),
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(900),
  REFRESH_TOKEN_TTL_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  /** Failed sign-ins in a row before an account is locked, and for how long. */
  AUTH_MAX_FAILED_LOGINS: z.coerce.number().int().min(1).max(100).default(5),
  /** scrypt cost as log2(N); 17 follows OWASP's advice. Tests lower it for speed. */
  PASSWORD_HASH_COST: z.coerce.number().int().min(10).max(20).default(17),
  AUTH_LOCKOUT_SECONDS: z.coerce.number().min(0.1).max(86_400).default(900),
  /** Requests per minute per client IP, and per signed-in user or API key. */
  RATE_LIMIT_PER_IP: z.coerce.number().int().min(1).default(600),
  RATE_LIMIT_PER_PRINCIPAL: z.coerce.number().int().min(1).default(1200),
  /** Sign-in and password-reset attempts per minute per IP. */
  RATE_LIMIT_AUTH_PER_IP: z.coerce.number().int().min(1).default(20),
  /** How often agents send heartbeats; a session silent for 3 intervals is dropped. */
  AGENT_HEARTBEAT_INTERVAL_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  /** How long a new agent connection may take to authenticate. */
  AGENT_AUTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** How long a signed job may wait before the agent must refuse it as expired. */
  JOB_TTL_SECONDS: z.coerce.number().int().min(5).max(86_400).default(600),
  /** The demo MIS (SQLite) that partners preview draft extracts against; unset: no preview. */
  PREVIEW_MIS_PATH: z.string().trim().min(1).optional(),
  /** Most runs in flight (dispatched or running) across the whole fleet at once. */
  RUNS_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000_000).default(2_000),
  /** Attempts a run gets when it fails for a transient reason (MIS down, agent restarted). */
  RUN_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** First retry delay; doubles per attempt (with jitter). */
  RUN_RETRY_BASE_SECONDS: z.coerce.number().min(0.1).max(86_400).default(60),
  /** "Run now": how many manual runs of one extract at one school per window. */
  RUN_NOW_LIMIT: z.coerce.number().int().min(1).max(1000).default(3),
  RUN_NOW_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(600),
  /** How long a manual run may wait for the school's agent before it is missed. */
  RUN_NOW_DEADLINE_MINUTES: z.coerce.number().min(0.05).max(10_080).default(60),
  /** How long after its deadline an accepted run may take to finish uploading before it fails. */
  RUN_UPLOAD_GRACE_MINUTES: z.coerce.number().min(0.05).max(10_080).default(60),
  /** How often the worker checks deadlines, re-plans lost timers and dispatches waiting runs. */
  RUN_SWEEP_INTERVAL_MS: z.coerce.number().int().min(200).max(600_000).default(15_000),
  /** Where results, snapshots and change sets are kept (encrypted per tenant): local or s3. */
  OBJECT_STORE: z.enum(['local', 's3']).default('local'),
  /** For OBJECT_STORE=local: the directory (created 0700). */
  OBJECT_STORE_DIR: z.string().trim().min(1).default('data/objects'),
  S3_BUCKET: z.string().trim().optional(),
  S3_REGION: z.string().trim().optional(),
  S3_ENDPOINT: z.string().trim().optional(),
  S3_FORCE_PATH_STYLE: z.string().trim().optional(),
  S3_PREFIX: z.string().trim().optional(),
  /** Scratch space for delta computation (snapshots are sorted on disk, not in memory). */
  WORK_DIR: z.string().trim().min(1).optional(),
  /** The file-drop sink writes change sets under this directory, per partner and school. */
  FILE_DROP_DIR: z.string().trim().min(1).default('data/file-drop'),
  /** A change set that deletes or changes more than this share of the rows is held for review. */
  DELTA_HOLD_SHARE: z.coerce.number().min(0).max(1).default(0.3),
  /** Upload chunks an agent may send ahead of the last acknowledged one. */
  INGEST_CREDITS: z.coerce.number().int().min(1).max(256).default(32),
  /** Webhook attempts before a change set is dead-lettered, the first retry delay, the timeout. */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10),
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(5_000),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
  /**
   * A waiting webhook or file change set untouched this long is checked by the sweep: if its send
   * job is gone from Redis, it is queued again.
   */
  DELIVERY_STALL_SECONDS: z.coerce.number().min(1).max(86_400).default(120),
  /** Allow http:// webhook URLs (development and the demo); production requires https. */
  WEBHOOK_ALLOW_HTTP: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .optional(),
  /** How long /health/ready waits for each dependency. */
  READY_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2_000),
});

export type CloudEnv = z.input<typeof CloudEnvSchema>;

export interface CloudConfig {
  env: 'development' | 'test' | 'production';
  host: string;
  port: number;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  roles: ReadonlySet<Role>;
  secret: string;
  logLevel: string;
  corsOrigin: string;
  shutdownTimeoutMs: number;
  readyTimeoutMs: number;
  publicUrl: string;
  auth: {
    accessTokenTtlSeconds: number;
    refreshTokenTtlDays: number;
    maxFailedLogins: number;
    lockoutMs: number;
    passwordHashCost: number;
  };
  rateLimits: { perIp: number; perPrincipal: number; authPerIp: number };
  agents: { heartbeatIntervalMs: number; authTimeoutMs: number; jobTtlMs: number };
  objectStore: { env: Record<string, string | undefined> };
  workDir: string;
  fileDropDir: string;
  delivery: {
    holdShare: number;
    ingestCredits: number;
    webhookMaxAttempts: number;
    webhookRetryBaseMs: number;
    webhookTimeoutMs: number;
    webhookAllowHttp: boolean;
    stallMs: number;
  };
  runs: {
    maxInFlight: number;
    maxAttempts: number;
    retryBaseMs: number;
    runNowLimit: number;
    runNowWindowSeconds: number;
    runNowDeadlineMs: number;
    uploadGraceMs: number;
    sweepIntervalMs: number;
  };
  previewMisPath: string | null;
}
