import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type CloudConfig, CloudEnvSchema } from './config.schema.js';

export const CLOUD_CONFIG = Symbol('CLOUD_CONFIG');

/** A configuration problem, with a one-line message that names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const SECRET_VARS = ['DATABASE_URL', 'REDIS_URL', 'KEYSTAGE_SECRET'] as const;

/** Resolves `<NAME>_FILE` indirections for secrets (Docker/Kubernetes secrets mount files). */
function resolveFileVars(env: Record<string, string | undefined>, problems: string[]) {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_VARS) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name} and ${name}_FILE are both set: use one`);
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  // An empty variable means "not set", so defaults apply and required ones are reported missing.
  for (const [k, v] of Object.entries(out)) if (v === '') delete out[k];
  return out;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): CloudConfig {
  const problems: string[] = [];
  const resolved = resolveFileVars(env, problems);
  const parsed = CloudEnvSchema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? 'environment');
      const missing = issue.code === 'invalid_type' && resolved[name] === undefined;
      problems.push(missing ? `${name} is required but not set` : `${name} ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    roles: new Set(e.KEYSTAGE_ROLES),
    secret: e.KEYSTAGE_SECRET,
    logLevel: e.LOG_LEVEL,
    corsOrigin: e.CORS_ORIGIN,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    readyTimeoutMs: e.READY_TIMEOUT_MS,
    publicUrl: (e.PUBLIC_URL ?? `http://${e.HOST === '0.0.0.0' ? '127.0.0.1' : e.HOST}:${e.PORT}`).replace(
      /\/$/,
      '',
    ),
    auth: {
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
      maxFailedLogins: e.AUTH_MAX_FAILED_LOGINS,
      lockoutMs: Math.round(e.AUTH_LOCKOUT_SECONDS * 1000),
      passwordHashCost: e.PASSWORD_HASH_COST,
    },
    previewMisPath: e.PREVIEW_MIS_PATH ?? null,
    agents: {
      heartbeatIntervalMs: e.AGENT_HEARTBEAT_INTERVAL_MS,
      authTimeoutMs: e.AGENT_AUTH_TIMEOUT_MS,
      jobTtlMs: e.JOB_TTL_SECONDS * 1000,
    },
    objectStore: {
      env: {
        OBJECT_STORE: e.OBJECT_STORE,
        OBJECT_STORE_DIR: resolve(e.OBJECT_STORE_DIR),
        S3_BUCKET: e.S3_BUCKET,
        S3_REGION: e.S3_REGION ?? process.env.AWS_REGION,
        S3_ENDPOINT: e.S3_ENDPOINT,
        S3_FORCE_PATH_STYLE: e.S3_FORCE_PATH_STYLE,
        S3_PREFIX: e.S3_PREFIX,
      },
    },
    workDir: resolve(e.WORK_DIR ?? join(tmpdir(), 'keystage-work')),
    fileDropDir: resolve(e.FILE_DROP_DIR),
    delivery: {
      holdShare: e.DELTA_HOLD_SHARE,
      ingestCredits: e.INGEST_CREDITS,
      webhookMaxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      webhookRetryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
      webhookAllowHttp: e.WEBHOOK_ALLOW_HTTP ?? e.NODE_ENV !== 'production',
      stallMs: e.DELIVERY_STALL_SECONDS * 1000,
    },
    runs: {
      maxInFlight: e.RUNS_MAX_IN_FLIGHT,
      maxAttempts: e.RUN_MAX_ATTEMPTS,
      retryBaseMs: Math.round(e.RUN_RETRY_BASE_SECONDS * 1000),
      runNowLimit: e.RUN_NOW_LIMIT,
      runNowWindowSeconds: e.RUN_NOW_WINDOW_SECONDS,
      runNowDeadlineMs: Math.round(e.RUN_NOW_DEADLINE_MINUTES * 60_000),
      uploadGraceMs: Math.round(e.RUN_UPLOAD_GRACE_MINUTES * 60_000),
      sweepIntervalMs: e.RUN_SWEEP_INTERVAL_MS,
    },
    rateLimits: {
      perIp: e.RATE_LIMIT_PER_IP,
      perPrincipal: e.RATE_LIMIT_PER_PRINCIPAL,
      authPerIp: e.RATE_LIMIT_AUTH_PER_IP,
    },
  };
}

/** host:port of a URL for messages, never its credentials. */
export function describeEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? '6379' : '5432')}`;
  } catch {
    return '(unparseable URL)';
  }
}
