import 'reflect-metadata';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { Redis } from 'ioredis';
import { Logger, PinoLogger } from 'nestjs-pino';
import pg from 'pg';
import { AppModule } from './app.module.js';
import { AllExceptionsFilter } from './common/all-exceptions.filter.js';
import { describeError } from './common/describe-error.js';
import { ConfigError, describeEndpoint } from './config/config.js';
import type { CloudConfig } from './config/config.schema.js';
import { HealthService } from './health/health.service.js';
import { StartupError } from './startup-error.js';

/** A failure to start that the operator can fix; printed as one line, never with a stack. */
export { StartupError };

const VERSION = '0.1.0';

/** Connects to PostgreSQL and Redis before anything else, so a bad URL fails with a clear line. */
export async function preflight(config: CloudConfig): Promise<void> {
  const client = new pg.Client({ connectionString: config.databaseUrl, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new StartupError(
      `cannot reach PostgreSQL at ${describeEndpoint(config.databaseUrl)} (DATABASE_URL): ${describeError(err)}`,
    );
  }
  try {
    const { rows } = await client.query<{ t: string | null }>(
      `SELECT to_regclass('public._prisma_migrations') AS t`,
    );
    if (!rows[0]?.t) {
      throw new StartupError(
        `the database at ${describeEndpoint(config.databaseUrl)} (DATABASE_URL) has no Keystage schema: run \`pnpm db:migrate\``,
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }

  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new StartupError(
      `cannot reach Redis at ${describeEndpoint(config.redisUrl)} (REDIS_URL): ${describeError(err)}`,
    );
  } finally {
    redis.disconnect();
  }
}

export interface AppOptions {
  /** Extra modules (tests mount probes here). */
  imports?: (Type | DynamicModule)[];
}

export async function createApp(
  config: CloudConfig,
  options: AppOptions = {},
): Promise<NestExpressApplication> {
  const root = AppModule.forRoot(config);
  root.imports = [...(root.imports ?? []), ...(options.imports ?? [])];
  const app = await NestFactory.create<NestExpressApplication>(root, {
    bufferLogs: true,
    abortOnError: false,
    // Body size is bounded; larger bodies get 413.
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.useBodyParser('json', { limit: '1mb' });
  app.useGlobalFilters(new AllExceptionsFilter(await app.resolve(PinoLogger)));
  app.disable('x-powered-by');
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // The API docs page (Swagger UI) uses inline styles and data: images.
          'style-src': ["'self'", "'unsafe-inline'"],
          'img-src': ["'self'", 'data:'],
        },
      },
    }),
  );
  app.enableCors({ origin: config.corsOrigin, credentials: true });
  if (config.roles.has('api')) {
    const document = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Keystage control plane')
        .setDescription('Partners, schools, extracts, agreements, runs and deliveries.')
        .setVersion(VERSION)
        .addBearerAuth()
        .build(),
    );
    SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
  }
  return app;
}

export interface RunningServer {
  app: INestApplication;
  url: string;
  /** Drains requests, closes queues and connections; resolves when done. */
  stop(): Promise<void>;
}

export async function startServer(config: CloudConfig, options: AppOptions = {}): Promise<RunningServer> {
  const app = await createApp(config, options);
  await app.listen(config.port, config.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const health = app.get(HealthService);
  let stopping: Promise<void> | undefined;
  return {
    app,
    url,
    stop: () => {
      stopping ??= (async () => {
        health.markShuttingDown();
        await app.close();
      })();
      return stopping;
    },
  };
}

/**
 * Runs a server until SIGINT/SIGTERM, then shuts down within SHUTDOWN_TIMEOUT_MS. A second signal
 * exits at once. Configuration and connection problems end the process with one line on stderr.
 */
export async function runUntilSignalled(
  getConfig: () => CloudConfig | Promise<CloudConfig>,
  onStarted?: (server: RunningServer, config: CloudConfig) => void | Promise<void>,
): Promise<void> {
  let server: RunningServer;
  let config: CloudConfig;
  try {
    config = await getConfig();
    await preflight(config);
    server = await startServer(config);
  } catch (err) {
    exitWithError(err);
  }
  const logger = server.app.get(Logger);
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`keystage: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    signalled = true;
    logger.log({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out, exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    server.stop().then(
      () => {
        clearTimeout(timer);
        process.stderr.write('keystage: stopped\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`keystage: error while stopping: ${describeError(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await onStarted?.(server, config);
}

export function exitWithError(err: unknown): never {
  const message =
    err instanceof ConfigError || err instanceof StartupError
      ? err.message
      : `failed to start: ${describeError(err)}`;
  process.stderr.write(`keystage: ${message}\n`);
  process.exit(1);
}
