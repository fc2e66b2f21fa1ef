import { join } from 'node:path';
import { generateToSqlite } from '@keystage/demo-mis';
import { libraryDocumentText } from '@keystage/extract-spec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentChannel } from '../apps/cloud/src/agents/agent-channel.js';
import { AgentsService } from '../apps/cloud/src/agents/agents.service.js';
import { AgreementsService } from '../apps/cloud/src/agreements/agreements.service.js';
import { ApiKeysService } from '../apps/cloud/src/api-keys/api-keys.service.js';
import { type RunningServer, startServer } from '../apps/cloud/src/bootstrap.js';
import { loadConfig } from '../apps/cloud/src/config/config.js';
import { PrismaProvider } from '../apps/cloud/src/database/prisma.provider.js';
import { ExtractsService } from '../apps/cloud/src/extracts/extracts.service.js';
import { RunDispatcher } from '../apps/cloud/src/runs/run-dispatcher.js';
import { RunsRepository } from '../apps/cloud/src/runs/runs.repository.js';
import { agent, tempDataDir } from './support/agent.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { json } from './support/http.js';
import { killAll, type Spawned, uniquePrefix } from './support/process.js';

// The run lifecycle end to end: a real control plane (all roles, in this process so the test can
// read the database), a real agent process over a real socket, the demo MIS in SQLite.
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: null };
let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaProvider['client'];
let agentProc: Spawned | undefined;
let dataDir: string;
let misPath: string;
let key: string;
let partnerId: string;
let schoolId: string;
let agreementId: string;
const extractIds: Record<string, string> = {};

/** An extract whose SQL the demo MIS cannot run (a permanent failure). */
const BROKEN = `keystage: extract/v1
name: broken
description: Reads a table that does not exist.
mis: DEMO_SQLITE
datasets:
  - name: things
    description: Nothing.
    key: [id]
    columns:
      - { name: id, type: integer, description: An id, category: none }
    sql: SELECT thing_id AS id FROM no_such_table
delivery: { format: ndjson, target: webhook }
schedule:
  windows:
    - { days: [mon, tue, wed, thu, fri, sat, sun], from: "02:00", to: "03:00" }
`;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await json(res) };
}

async function waitForRun(runId: string, states: string[], timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last: { state?: string } = {};
  while (Date.now() < deadline) {
    const r = await api('GET', `/partners/${partnerId}/runs/${runId}`);
    last = r.body;
    if (states.includes(r.body.state)) return r.body;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(
    `run ${runId} did not reach ${states.join('/')}: ${JSON.stringify(last)}\nagent:\n${agentProc?.output()}`,
  );
}

function startAgent() {
  agentProc = agent(dataDir, ['run'], { KEYSTAGE_AGENT_HEARTBEAT_MS: '500' });
  return agentProc.waitFor(/"authenticated"/);
}

beforeAll(async () => {
  db = await createTestDatabase('runs');
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'runs-test-secret-'.padEnd(48, 'r'),
      PORT: '0',
      LOG_LEVEL: process.env.KS_LOG ?? 'silent',
      REDIS_PREFIX: uniquePrefix('runs'),
      AGENT_HEARTBEAT_INTERVAL_MS: '1000',
      RUN_SWEEP_INTERVAL_MS: '300',
      RUN_NOW_LIMIT: '4',
      RUN_NOW_DEADLINE_MINUTES: '0.1',
      RUN_RETRY_BASE_SECONDS: '0.2',
    }),
  );
  prisma = server.app.get(PrismaProvider).client;
  const school = await prisma.school.create({
    data: { urn: '300001', laEstab: '873/6001', name: 'Runs School', misType: 'DEMO_SQLITE' },
  });
  schoolId = school.id;
  const partner = await prisma.partner.create({ data: { slug: 'runs-partner', name: 'Runs Partner' } });
  partnerId = partner.id;
  const extracts = server.app.get(ExtractsService);
  const versions: string[] = [];
  for (const [name, text] of [
    ['school-library', libraryDocumentText('school-library')],
    ['absence-alerts', libraryDocumentText('absence-alerts')],
    ['broken', BROKEN],
  ] as const) {
    const v = await extracts.publish(partnerId, text, SYSTEM);
    versions.push(v.id);
    extractIds[name] = v.extractId;
  }
  const agreements = server.app.get(AgreementsService);
  const asked = await agreements.request(
    partnerId,
    {
      schoolId,
      extractVersionIds: versions,
      purpose: 'runs test',
      lawfulBasis: 'public_task',
      retentionDays: 7,
    },
    SYSTEM,
  );
  agreementId = asked.id;
  await agreements.approve(schoolId, asked.id, 'ok', SYSTEM);
  ({ key } = await server.app
    .get(ApiKeysService)
    .create(partnerId, { name: 'test', scopes: ['runs:read', 'runs:write', 'agreements:write'] }, SYSTEM));

  const { token } = await server.app.get(AgentsService).createEnrolmentToken(schoolId, 1, SYSTEM);
  dataDir = tempDataDir('runs');
  const enrol = agent(dataDir, ['enrol', '--url', server.url, '--token', token, '--mis-kind', 'DEMO_SQLITE']);
  expect((await enrol.exited()).code).toBe(0);
  misPath = join(dataDir, '..', 'school.sqlite');
  await generateToSqlite(misPath, { preset: 'tiny', seed: 11 });
  const configure = agent(dataDir, [
    'credentials',
    'set',
    '--kind',
    'DEMO_SQLITE',
    '--location',
    misPath,
    '--no-password',
  ]);
  expect((await configure.exited()).code).toBe(0);
  await startAgent();
}, 90_000);

afterAll(async () => {
  killAll();
  await server?.stop();
  await db?.drop();
});

describe('schedules', () => {
  it('approval creates a schedule per extract, each with its next run planned inside its window', async () => {
    const { body } = await api('GET', `/partners/${partnerId}/schedules`);
    expect(body).toHaveLength(3);
    const planned = await api('GET', `/partners/${partnerId}/runs?state=scheduled&limit=200`);
    const byExtract = new Map<string, { dueAt: string; deadlineAt: string; trigger: string }>(
      planned.body.items.map((r: { extract: { id: string } }) => [r.extract.id, r]),
    );
    expect(byExtract.size).toBe(3);
    const library = byExtract.get(extractIds['school-library']!)!;
    expect(library.trigger).toBe('SCHEDULED');
    // school-library: every day 03:00–05:00 Europe/London.
    const local = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/London',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).format(new Date(library.dueAt));
    expect(local >= '03:00' && local < '05:00').toBe(true);
    expect(new Date(library.dueAt) > new Date()).toBe(true);
  });

  it('an override re-plans at once; a bad one is refused with reasons', async () => {
    const extractId = extractIds['school-library']!;
    const before = await api('GET', `/partners/${partnerId}/runs?state=scheduled&extractId=${extractId}`);
    expect(before.body.items).toHaveLength(1);
    const bad = await api('PUT', `/partners/${partnerId}/agreements/${agreementId}/schedules/${extractId}`, {
      schedule: { windows: [{ days: ['mon'], from: '10:00', to: '10:00' }], frequency: 'PT1M' },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('schedule.invalid');
    expect(JSON.stringify(bad.body.details)).toMatch(/windows/);
    const ok = await api('PUT', `/partners/${partnerId}/agreements/${agreementId}/schedules/${extractId}`, {
      schedule: { windows: [{ days: ['sun'], from: '22:00', to: '23:00' }] },
    });
    expect(ok.status).toBe(200);
    const after = await api(
      'GET',
      `/partners/${partnerId}/runs?extractId=${extractId}&state=scheduled,cancelled`,
    );
    const old = after.body.items.find((r: { id: string }) => r.id === before.body.items[0].id);
    expect(old.state).toBe('CANCELLED');
    expect(old.errorCode).toBe('schedule.changed');
    const fresh = after.body.items.find((r: { state: string }) => r.state === 'SCHEDULED');
    expect(new Date(fresh.dueAt).getUTCDay()).toBe(0);
  });
});

describe('run now', () => {
  it('moves through dispatched → running → uploaded → processed with timestamps, counts and audit', async () => {
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['school-library'],
    });
    expect(started.status).toBe(201);
    expect(started.body.trigger).toBe('MANUAL');
    const run = await waitForRun(started.body.id, ['PROCESSED', 'DELIVERED', 'FAILED']);
    expect(run.state).not.toBe('FAILED');
    for (const stamp of ['dispatchedAt', 'startedAt', 'uploadedAt', 'processedAt']) {
      expect(run[stamp], stamp).toBeTruthy();
    }
    expect(run.agentId).toBeTruthy();
    expect(run.attempt).toBe(0);
    expect(run.datasets.length).toBeGreaterThan(0);
    expect(run.datasets.every((d: { state: string }) => d.state === 'UPLOADED')).toBe(true);
    expect(run.rowCount).toBeGreaterThan(0);
    expect(run.rowCount).toBe(run.datasets.reduce((n: number, d: { rowCount: number }) => n + d.rowCount, 0));
    // The audit entry follows the state change: give it a moment.
    let audit: { action: string }[] = [];
    for (let i = 0; i < 50 && audit.length < 5; i++) {
      audit = await prisma.auditEvent.findMany({
        where: { targetId: run.id },
        orderBy: { seq: 'asc' },
        select: { action: true },
      });
      if (audit.length < 5) await new Promise((r) => setTimeout(r, 100));
    }
    // Then `run.delivered` once its change sets are out (the file drop may already have done it).
    expect(audit.map((a) => a.action).slice(0, 5)).toEqual([
      'run.scheduled',
      'run.dispatched',
      'run.running',
      'run.uploaded',
      'run.processed',
    ]);
    expect(audit.slice(5).map((a) => a.action)).toEqual(audit.length > 5 ? ['run.delivered'] : []);
  });

  it('a rerun with no change sends no chunk again: the control plane reuses its copies (protocol 1.2)', async () => {
    const snapshots = () =>
      prisma.deltaState.findMany({
        where: { schoolId },
        orderBy: { datasetName: 'asc' },
        select: { datasetName: true, snapshotKey: true, runId: true },
      });
    const before = await snapshots();
    expect(before.length).toBeGreaterThan(0);
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['school-library'],
    });
    const run = await waitForRun(started.body.id, ['PROCESSED', 'DELIVERED', 'FAILED']);
    expect(run.state).not.toBe('FAILED');
    expect(run.datasets.length).toBeGreaterThan(0);
    for (const d of run.datasets) {
      expect(d.chunkCount, d.name).toBeGreaterThan(0);
      expect(d.reusedChunks, d.name).toBe(d.chunkCount);
      expect(d.reusedBytes, d.name).toBe(d.byteCount);
    }
    // Nothing changed — known without decoding: the delta state moves to this run but keeps the
    // snapshot it had (every chunk was the last result's).
    expect([run.insertCount, run.updateCount, run.deleteCount]).toEqual([0, 0, 0]);
    const after = await snapshots();
    expect(after.map((d) => d.snapshotKey)).toEqual(before.map((d) => d.snapshotKey));
    expect(after.every((d) => d.runId === run.id)).toBe(true);
  });

  const brokenRuns: string[] = [];
  it('is rate-limited per extract and school', async () => {
    const extractId = extractIds.broken!;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await api('POST', `/partners/${partnerId}/runs`, { schoolId, extractId });
      statuses.push(res.status);
      if (res.status === 201) brokenRuns.push(res.body.id);
    }
    expect(statuses[4]).toBe(429);
    expect(statuses.slice(0, 4)).toEqual([201, 201, 201, 201]);
    expect(statuses[4]).toBe(429);
  });

  it('a permanent failure (SQL error in the MIS) fails at once and says it is not retried', async () => {
    const run = await waitForRun(brokenRuns[0]!, ['FAILED']);
    // All of them fail the same way (and none holds the school's slot for the tests below).
    for (const id of brokenRuns.slice(1)) await waitForRun(id, ['FAILED']);
    expect(run.errorCode).toBe('mis.query_failed');
    expect(run.errorMessage).toMatch(/not retried/);
    expect(run.attempt).toBe(1);
  });

  it('refuses runs of extracts the school has not agreed to, and of other partners', async () => {
    const other = await prisma.partner.create({ data: { slug: 'other-partner', name: 'Other' } });
    const res = await api('POST', `/partners/${other.id}/runs`, {
      schoolId,
      extractId: extractIds['school-library'],
    });
    expect(res.status).toBe(403);
    const unknown = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: '00000000-0000-4000-8000-000000000000',
    });
    expect(unknown.status).toBe(404);
  });

  it('cancel stops a run; a finished run cannot be cancelled', async () => {
    agentProc?.child.kill('SIGKILL');
    await agentProc?.exited();
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['absence-alerts'],
    });
    const cancelled = await api('POST', `/partners/${partnerId}/runs/${started.body.id}/cancel`, {
      reason: 'changed my mind',
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('CANCELLED');
    const again = await api('POST', `/partners/${partnerId}/runs/${started.body.id}/cancel`, {});
    expect(again.status).toBe(409);
  });

  it('an offer racing a cancel leaves nothing in the agent’s queue (a stale offer would keep it busy)', async () => {
    // The agent is offline (killed above): the run waits, dispatched, its first dataset offered.
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['absence-alerts'],
    });
    await waitForRun(started.body.id, ['DISPATCHED']);
    const repo = server.app.get(RunsRepository);
    const channel = server.app.get(AgentChannel);
    const stale = (await repo.find(started.body.id))!;
    const agentId = stale.agentId!;
    // DISPATCHED is recorded before the offer is queued: let the dispatch finish queuing it first
    // (a cancel landing between the two finds nothing to take back; the agent's next connect drops
    // such an offer — see dropStaleOffers — but this test asks for an empty queue at once).
    const queued = Date.now() + 5_000;
    while ((await channel.pendingIds(agentId)).length === 0 && Date.now() < queued) {
      await new Promise((res) => setTimeout(res, 20));
    }
    await api('POST', `/partners/${partnerId}/runs/${started.body.id}/cancel`, {});
    expect(await channel.pendingIds(agentId)).toEqual([]);
    // The dispatcher still holds the row it read before the cancel, with the job not yet offered.
    const beforeOffer = { ...stale, jobs: stale.jobs.map((j) => ({ ...j, state: 'PENDING' as const })) };
    await server.app.get(RunDispatcher).offerNext(beforeOffer);
    expect(await channel.pendingIds(agentId)).toEqual([]);
  });

  it('an agent offline past the deadline → missed, with the reason', async () => {
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['absence-alerts'],
    });
    const run = await waitForRun(started.body.id, ['MISSED'], 30_000);
    expect(run.errorCode).toBe('run.agent_offline');
    expect(run.errorMessage).toMatch(/offline/);
    expect(run.dispatchedAt).toBeTruthy();
    expect(run.startedAt).toBeNull();
  });

  it('an offline agent gets a waiting run when it reconnects', async () => {
    const started = await api('POST', `/partners/${partnerId}/runs`, {
      schoolId,
      extractId: extractIds['school-library'],
    });
    await waitForRun(started.body.id, ['DISPATCHED']);
    await startAgent();
    const run = await waitForRun(started.body.id, ['PROCESSED', 'DELIVERED']);
    expect(run.startedAt).toBeTruthy();
  });
});

describe('listing', () => {
  it('filters by state, school, extract and time, and pages with a cursor', async () => {
    const all = await api('GET', `/partners/${partnerId}/runs?limit=200`);
    expect(all.body.items.length).toBeGreaterThan(6);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await api(
        'GET',
        `/partners/${partnerId}/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((r) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.body.items.map((r: { id: string }) => r.id));
    const failed = await api('GET', `/partners/${partnerId}/runs?state=FAILED`);
    expect(failed.body.items.every((r: { state: string }) => r.state === 'FAILED')).toBe(true);
    const future = await api('GET', `/partners/${partnerId}/runs?from=2099-01-01T00:00:00Z`);
    expect(future.body.items).toHaveLength(0);
    const bad = await api('GET', `/partners/${partnerId}/runs?state=sideways`);
    expect(bad.status).toBe(400);
    const badCursor = await api('GET', `/partners/${partnerId}/runs?cursor=nonsense`);
    expect(badCursor.status).toBe(400);
  });
});
