import { createPrismaClient, type PrismaClient } from '@keystage/db';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/db.js';
import { json } from '../../../test/support/http.js';
import { type RunningServer, startServer } from './bootstrap.js';
import { loadConfig } from './config/config.js';
import { JobName, QueueName } from './queues/queue-registry.js';

// Real PostgreSQL (a database cloned from the migrated template) and real Redis.
let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaClient;

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    DATABASE_URL: db.url,
    KEYSTAGE_SECRET: 'test-secret-'.padEnd(40, 'x'),
    PORT: '0',
    LOG_LEVEL: 'silent',
    // Each app gets its own queues: test files run in parallel on one Redis.
    REDIS_PREFIX: `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...extra,
  });
}

beforeAll(async () => {
  db = await createTestDatabase('cloud_app');
  server = await startServer(config());
  prisma = createPrismaClient(db.url);
});

afterAll(async () => {
  await server?.stop();
  await prisma?.$disconnect();
  await db?.drop();
});

describe('control plane skeleton', () => {
  it('answers liveness', async () => {
    const res = await fetch(`${server.url}/health/live`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: 'ok' });
  });

  it('answers readiness with PostgreSQL and Redis up', async () => {
    const res = await fetch(`${server.url}/health/ready`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.status).toBe('ready');
    expect(body.checks.postgres.status).toBe('up');
    expect(body.checks.redis.status).toBe('up');
  });

  it('maps unknown routes to the error shape with a correlation id, echoing x-request-id', async () => {
    const res = await fetch(`${server.url}/no/such/route`, { headers: { 'x-request-id': 'req-12345678' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('req-12345678');
    const body = await json(res);
    expect(body).toEqual({
      code: 'route.not_found',
      message: expect.any(String),
      details: null,
      correlationId: 'req-12345678',
    });
  });

  it('makes up a request id when the caller sends none or a malformed one', async () => {
    const res = await fetch(`${server.url}/nope`, { headers: { 'x-request-id': 'bad id <script>' } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await json(res)).correlationId).toBe(id);
  });

  it('rejects malformed JSON without echoing it, and oversized bodies with 413', async () => {
    const bad = await fetch(`${server.url}/health/live`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"upn": "A123456789012", oops',
    });
    expect(bad.status).toBe(400);
    const body = await json(bad);
    expect(body.code).toBe('request.invalid');
    expect(JSON.stringify(body)).not.toContain('A123456789012');

    const big = await fetch(`${server.url}/health/live`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: 'y'.repeat(2 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect((await json(big)).code).toBe('request.too_large');
  });

  it('publishes the OpenAPI document and its UI', async () => {
    const doc = await fetch(`${server.url}/api/docs/openapi.json`);
    expect(doc.status).toBe(200);
    const openapi = await json(doc);
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready']));
    const ui = await fetch(`${server.url}/api/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
  });

  it('runs queue jobs in the worker role: the maintenance job prunes expired enrolment tokens', async () => {
    const school = await prisma.school.create({
      data: { urn: '100001', laEstab: '873/4001', name: 'Test School', misType: 'DEMO_SQLITE' },
    });
    const old = new Date(Date.now() - 30 * 24 * 3600_000);
    await prisma.enrolmentToken.createMany({
      data: [
        { schoolId: school.id, tokenHash: 'a'.repeat(64), expiresAt: old },
        { schoolId: school.id, tokenHash: 'b'.repeat(64), expiresAt: old, usedAt: old },
        { schoolId: school.id, tokenHash: 'c'.repeat(64), expiresAt: new Date(Date.now() + 3600_000) },
      ],
    });
    const queue = server.app.get<Queue>(getQueueToken(QueueName.maintenance));
    const job = await queue.add(JobName.pruneEnrolmentTokens, {});
    const deadline = Date.now() + 15_000;
    while (!(await job.isCompleted()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await job.getState(), String((await queue.getJob(job.id!))?.failedReason)).toBe('completed');
    const left = await prisma.enrolmentToken.findMany({ orderBy: { tokenHash: 'asc' } });
    expect(left.map((t) => t.tokenHash[0])).toEqual(['b', 'c']);
  });
});

describe('readiness when a dependency is down', () => {
  it('answers 503 and names Redis', async () => {
    const broken = await startServer(
      config({ REDIS_URL: 'redis://127.0.0.1:1', READY_TIMEOUT_MS: '500', KEYSTAGE_ROLES: 'api' }),
    );
    try {
      const res = await fetch(`${broken.url}/health/ready`);
      expect(res.status).toBe(503);
      const body = await json(res);
      expect(body.status).toBe('not_ready');
      expect(body.checks.postgres.status).toBe('up');
      expect(body.checks.redis.status).toBe('down');
      expect(body.checks.redis.error).toBeTruthy();
    } finally {
      await broken.stop();
    }
  });

  it('answers 503 and names PostgreSQL', async () => {
    const broken = await startServer(
      config({
        DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none',
        READY_TIMEOUT_MS: '1000',
        KEYSTAGE_ROLES: 'api',
      }),
    );
    try {
      const res = await fetch(`${broken.url}/health/ready`);
      expect(res.status).toBe(503);
      const body = await json(res);
      expect(body.checks.postgres.status).toBe('down');
      expect(body.checks.redis.status).toBe('up');
    } finally {
      await broken.stop();
    }
  });
});
