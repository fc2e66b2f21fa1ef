import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPrismaClient } from '@keystage/db';
import { generateToSqlite } from '@keystage/demo-mis';
import { libraryDocumentText } from '@keystage/extract-spec';
import { parseSchedule, planNext } from '@keystage/schedule';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentsService } from '../apps/cloud/src/agents/agents.service.js';
import { AgreementsService } from '../apps/cloud/src/agreements/agreements.service.js';
import { ApiKeysService } from '../apps/cloud/src/api-keys/api-keys.service.js';
import { startServer } from '../apps/cloud/src/bootstrap.js';
import { loadConfig } from '../apps/cloud/src/config/config.js';
import { DeliveryService } from '../apps/cloud/src/deliveries/delivery.service.js';
import { type Received, WebhookReceiver } from '../apps/cloud/src/demo-partner.js';
import { ExtractsService } from '../apps/cloud/src/extracts/extracts.service.js';
import { agent, tempDataDir } from './support/agent.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { json } from './support/http.js';
import { killAll, type Spawned, spawnProcess, uniquePrefix } from './support/process.js';

// Faults in the run pipeline, with real processes: control planes started as `apps/cloud/dist/main.js`
// with their own roles, a real agent process, the demo MIS in SQLite, the partner's webhook receiver.
// Each scenario gets its own database, Redis prefix, object store and school; PostgreSQL is read
// directly to follow runs (the API node may be the process that is killed). Run after `pnpm build`.
const MAIN = resolve(import.meta.dirname, '../apps/cloud/dist/main.js');
const DEMO_MIS = resolve(import.meta.dirname, '../packages/demo-mis/dist/cli.js');
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: null };
const work = mkdtempSync(join(tmpdir(), 'ks-faults-'));
const misTemplate = join(work, 'template.sqlite');
const TERMINAL = ['DELIVERED', 'FAILED', 'MISSED', 'CANCELLED'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Prisma = ReturnType<typeof createPrismaClient>;

beforeAll(async () => {
  await generateToSqlite(misTemplate, { preset: 'tiny', seed: 29 });
}, 60_000);

afterAll(() => {
  killAll();
});

// ─── Extract documents ──────────────────────────────────────────────────────

/** A window 11–12 hours from now, so that no scheduled run of these extracts falls due in the test. */
function farWindow(): string {
  const hour = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/London',
    hour: '2-digit',
    hourCycle: 'h23',
  }).format(new Date(Date.now() + 12 * 3600_000));
  return `{ days: [mon, tue, wed, thu, fri, sat, sun], from: "${hour}:00", to: "${hour}:30" }`;
}

/** The label the bulk extract gives row `n` (computed by SQLite, checked here). */
const labelOf = (n: number) => `row-${n}-${(n * 7919) % 100_003}-abcdefghijklmnopqrstuvwxyz`;

/** `rows` synthetic rows from a recursive CTE: an upload of many chunks, checkable row by row. */
function bulkExtract(name: string, rows: number, options: { delta?: string; schedule?: string } = {}) {
  return `keystage: extract/v1
name: ${name}
description: ${rows} synthetic rows.
mis: DEMO_SQLITE
datasets:
  - name: rows
    description: One row per number.
    key: [n]
    delta: ${options.delta ?? 'changes_and_deletions'}
    columns:
      - { name: n, type: integer, description: The number, category: none }
      - { name: label, type: string, description: A label made from it, category: none }
    sql: >-
      WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ${rows})
      SELECT n, 'row-' || n || '-' || ((n * 7919) % 100003) || '-abcdefghijklmnopqrstuvwxyz' AS label FROM c
delivery: { format: ndjson, target: webhook }
schedule:
${options.schedule ?? `  windows:\n    - ${farWindow()}`}
`;
}

/** The library's parent-messaging extract (pupils, contacts, staff; webhook), on a far schedule. */
function messagingExtract(name: string) {
  return libraryDocumentText('parent-messaging')
    .replace(/^name: parent-messaging$/m, `name: ${name}`)
    .replace(/\nschedule:[\s\S]*$/, `\nschedule:\n  windows:\n    - ${farWindow()}\n`);
}

// ─── Helpers ────────────────────────────────────────────────────────────────

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

/** Polls until `probe` returns something truthy; after the timeout fails with `describeState()`. */
async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
  describeState: () => Promise<string> | string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await describeState()}`);
    await sleep(50);
  }
}

interface Node {
  label: string;
  url: string;
  port: number;
  proc: Spawned;
}

/** One fault scenario: a database, a Redis prefix, an object store, a school with an agent, a partner. */
class Scenario {
  readonly prefix: string;
  readonly secret = `faults-secret-${randomUUID()}`;
  readonly dir: string;
  readonly objectsDir: string;
  readonly misPath: string;
  readonly dataDir: string;
  readonly statementLog: string;
  readonly procs: Spawned[] = [];
  readonly nodes: Node[] = [];
  readonly received: Received[] = [];
  readonly receiver: WebhookReceiver;
  prisma!: Prisma;
  db!: TestDatabase;
  partnerId = '';
  schoolId = '';
  agentId = '';
  key = '';
  extractIds: Record<string, string> = {};
  agentProc: Spawned | undefined;

  /** The Redis all the scenario's processes share (a private one may replace it before seeding). */
  redisUrl = 'redis://127.0.0.1:6379';

  constructor(readonly name: string) {
    this.prefix = uniquePrefix(`faults-${name}`);
    this.dir = join(work, name);
    mkdirSync(this.dir, { recursive: true });
    this.objectsDir = join(this.dir, 'objects');
    this.misPath = join(this.dir, 'school.sqlite');
    this.dataDir = tempDataDir(`faults-${name}`);
    this.statementLog = join(this.dir, 'statements.log');
    this.receiver = new WebhookReceiver(join(this.dir, 'partner'), (r) => this.received.push(r));
  }

  /** The scenario's database (migrated: a copy of the test template) and its copy of the demo MIS. */
  async createDatabase(): Promise<void> {
    this.db = await createTestDatabase(`faults_${this.name}`);
    this.prisma = createPrismaClient(this.db.url);
    copyFileSync(misTemplate, this.misPath);
  }

  /**
   * Seeds everything through the services of an in-process control plane with the api role only
   * (stopped afterwards): the extracts published, approved by the school, an API key, the webhook,
   * the agent enrolled and its MIS configured. `chooseSchoolId` may pick the school's id once the
   * extracts exist (the scheduler places runs by school and extract).
   */
  async seed(
    extracts: Record<string, string>,
    chooseSchoolId?: (extractIds: Record<string, string>) => string,
  ): Promise<void> {
    const seeder = await startServer(
      loadConfig({
        DATABASE_URL: this.db.url,
        KEYSTAGE_SECRET: this.secret,
        PORT: '0',
        LOG_LEVEL: process.env.KS_LOG ?? 'silent',
        REDIS_URL: this.redisUrl,
        REDIS_PREFIX: this.prefix,
        KEYSTAGE_ROLES: 'api',
        OBJECT_STORE_DIR: this.objectsDir,
        WEBHOOK_ALLOW_HTTP: 'true',
      }),
    );
    try {
      const app = seeder.app;
      const partner = await this.prisma.partner.create({
        data: { slug: `faults-${this.name}`, name: `Faults ${this.name}` },
      });
      this.partnerId = partner.id;
      const versions: string[] = [];
      for (const [name, text] of Object.entries(extracts)) {
        const v = await app.get(ExtractsService).publish(partner.id, text, SYSTEM);
        versions.push(v.id);
        this.extractIds[name] = v.extractId;
      }
      const school = await this.prisma.school.create({
        data: {
          ...(chooseSchoolId ? { id: chooseSchoolId(this.extractIds) } : {}),
          urn: String(400_000 + Math.floor(Math.random() * 99_999)),
          laEstab: '873/7001',
          name: `Faults School ${this.name}`,
          misType: 'DEMO_SQLITE',
        },
      });
      this.schoolId = school.id;
      const agreements = app.get(AgreementsService);
      const asked = await agreements.request(
        partner.id,
        {
          schoolId: school.id,
          extractVersionIds: versions,
          purpose: 'fault tests',
          lawfulBasis: 'public_task',
          retentionDays: 7,
        },
        SYSTEM,
      );
      await agreements.approve(school.id, asked.id, 'ok', SYSTEM);
      ({ key: this.key } = await app
        .get(ApiKeysService)
        .create(
          partner.id,
          { name: 'faults', scopes: ['runs:read', 'runs:write', 'deliveries:read'] },
          SYSTEM,
        ));
      const hook = await app.get(DeliveryService).setWebhook(partner.id, await this.receiver.start(), SYSTEM);
      this.receiver.secrets = [hook.secret!];
      const { token } = await app.get(AgentsService).createEnrolmentToken(school.id, 1, SYSTEM);
      const enrol = agent(this.dataDir, [
        'enrol',
        '--url',
        seeder.url,
        '--token',
        token,
        '--mis-kind',
        'DEMO_SQLITE',
      ]);
      const [, agentId] = await enrol.waitFor(/enrolled as agent ([0-9a-f-]{36})/);
      this.agentId = agentId!;
      expect((await enrol.exited()).code).toBe(0);
      const configure = agent(this.dataDir, [
        'credentials',
        'set',
        '--kind',
        'DEMO_SQLITE',
        '--location',
        this.misPath,
        '--no-password',
      ]);
      expect((await configure.exited()).code).toBe(0);
    } finally {
      await seeder.stop();
    }
  }

  /** Starts `apps/cloud/dist/main.js` with the given roles, sharing the scenario's database and Redis. */
  async startNode(label: string, roles: string, port: number, env: Record<string, string> = {}) {
    const proc = spawnProcess([MAIN], {
      DATABASE_URL: this.db.url,
      KEYSTAGE_SECRET: this.secret,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      REDIS_URL: this.redisUrl,
      REDIS_PREFIX: this.prefix,
      KEYSTAGE_ROLES: roles,
      OBJECT_STORE_DIR: this.objectsDir,
      WORK_DIR: join(this.dir, `work-${label}`),
      FILE_DROP_DIR: join(this.dir, 'file-drop'),
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_RETRY_BASE_MS: '200',
      AGENT_HEARTBEAT_INTERVAL_MS: '1000',
      RUN_SWEEP_INTERVAL_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '5000',
      ...env,
    });
    this.procs.push(proc);
    const [, url] = await proc.waitFor(/listening on (http:\/\/\S+)/, 45_000);
    const node = { label, url: url!, port, proc };
    this.nodes.push(node);
    return node;
  }

  /** Points the enrolled agent at a control plane (as if it had enrolled there) and starts it. */
  async startAgent(cloudUrl: string) {
    const file = join(this.dataDir, 'agent.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { cloudUrl: string };
    state.cloudUrl = cloudUrl;
    writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    const proc = agent(this.dataDir, ['run'], {
      KEYSTAGE_AGENT_HEARTBEAT_MS: '500',
      KEYSTAGE_AGENT_STATEMENT_LOG: this.statementLog,
    });
    this.procs.push(proc);
    this.agentProc = proc;
    await proc.waitFor(/"authenticated"/, 30_000);
    return proc;
  }

  async api(base: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        'x-api-key': this.key,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await json(res) };
  }

  async runNow(base: string, extract: string): Promise<string> {
    const res = await this.api(base, 'POST', `/partners/${this.partnerId}/runs`, {
      schoolId: this.schoolId,
      extractId: this.extractIds[extract],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  }

  run(runId: string) {
    return this.prisma.run.findUniqueOrThrow({
      where: { id: runId },
      include: { jobs: { orderBy: { position: 'asc' } }, deliveries: true },
    });
  }

  /** What the processes said, for a failure message. */
  async explain(runId?: string): Promise<string> {
    const run = runId ? await this.run(runId).catch(() => null) : null;
    const tail = (p: Spawned) => p.output().split('\n').slice(-25).join('\n');
    return [
      run ? `run: ${JSON.stringify(run, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 1)}` : '',
      ...this.nodes.map((n) => `--- node ${n.label} (exit ${n.proc.child.exitCode}):\n${tail(n.proc)}`),
      ...(this.agentProc ? [`--- agent:\n${tail(this.agentProc)}`] : []),
    ].join('\n');
  }

  async waitForRun(runId: string, states: string[], timeoutMs = 60_000) {
    return until(
      `run ${runId} to be ${states.join('/')}`,
      async () => {
        const run = await this.run(runId);
        if (states.includes(run.state)) return run;
        if (TERMINAL.includes(run.state)) {
          throw new Error(
            `run ${runId} ended ${run.state}: ${run.errorMessage}\n${await this.explain(runId)}`,
          );
        }
        return null;
      },
      timeoutMs,
      () => this.explain(runId),
    );
  }

  /** Waits until the run's (first) upload has some chunks stored, and returns how many. */
  midUpload(runId: string) {
    return until(
      `run ${runId} to be uploading`,
      async () => {
        const run = await this.run(runId);
        const job = run.jobs[0]!;
        return run.state === 'RUNNING' && job.state === 'RUNNING' && job.nextSeq > 0 ? job.nextSeq : null;
      },
      60_000,
      () => this.explain(runId),
    );
  }

  /** Waits for a node's journal line about a run (written just after the state change it reports). */
  logged(node: Node, runId: string, msg: string) {
    return node.proc.waitFor(new RegExp(`"runId":"${runId}".*"msg":"${msg}"`), 15_000);
  }

  /** Audit entries of the run, by action. */
  async audit(runId: string): Promise<Map<string, number>> {
    const rows = await this.prisma.auditEvent.findMany({
      where: { targetId: runId },
      select: { action: true },
    });
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(r.action, (counts.get(r.action) ?? 0) + 1);
    return counts;
  }

  /** Webhook POSTs received per idempotency key (duplicates included). */
  receivedCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.received) counts.set(r.key, (counts.get(r.key) ?? 0) + 1);
    return counts;
  }

  /** Every delivery of the run reached the receiver exactly once, and nothing else of the run did. */
  async expectDeliveredOnce(runId: string) {
    const deliveries = await this.prisma.delivery.findMany({ where: { runId } });
    expect(deliveries.length).toBeGreaterThan(0);
    const counts = this.receivedCounts();
    for (const d of deliveries) {
      expect(d.state, d.idempotencyKey).toBe('DELIVERED');
      expect(d.idempotencyKey).toBe(`${runId}.${d.datasetName}`);
      expect(counts.get(d.idempotencyKey), d.idempotencyKey).toBe(1);
    }
    const ofRun = [...counts.keys()].filter((k) => k.startsWith(`${runId}.`));
    expect(ofRun.sort()).toEqual(deliveries.map((d) => d.idempotencyKey).sort());
    expect(this.received.filter((r) => r.duplicate)).toEqual([]);
    return deliveries;
  }

  /** The NDJSON change set the receiver wrote for a key: every change, after the header line. */
  changes(key: string): { op: string; key: Record<string, unknown>; row?: Record<string, unknown> }[] {
    const file = this.received.find((r) => r.key === key)!.file;
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(1)
      .map((l) => JSON.parse(l));
  }

  /** The bulk extract's change set holds exactly rows 1…n, as inserts, each once. */
  expectBulkRows(key: string, n: number) {
    const changes = this.changes(key);
    const seen = new Uint8Array(n + 1);
    const wrong: unknown[] = [];
    for (const c of changes) {
      const k = Number(c.row?.n);
      const ok = c.op === 'insert' && Number.isInteger(k) && k >= 1 && k <= n && !seen[k];
      if (ok && c.row!.label === labelOf(k)) seen[k] = 1;
      else if (wrong.push(c) >= 5) break;
    }
    expect(wrong, 'changes that are not exactly one insert per row').toEqual([]);
    expect(changes).toHaveLength(n);
  }

  /** Lines in the agent's statement log per job: how often the MIS was really queried. */
  statements(): Map<string, number> {
    const counts = new Map<string, number>();
    let text = '';
    try {
      text = readFileSync(this.statementLog, 'utf8');
    } catch {
      return counts;
    }
    for (const m of text.matchAll(/ run=([0-9a-f-]{36}) /g)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    return counts;
  }

  async close() {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    await Promise.all(this.procs.map((p) => p.exited().catch(() => undefined)));
    await this.receiver.stop();
    await this.prisma?.$disconnect();
    await this.db?.drop();
  }
}

async function kill(proc: Spawned, signal: NodeJS.Signals = 'SIGKILL') {
  proc.child.kill(signal);
  return proc.exited(15_000);
}

// ─── 1. Two gateway processes ───────────────────────────────────────────────

describe('two gateway processes', () => {
  const s = new Scenario('gateways');
  let a: Node;
  let b: Node;
  beforeAll(async () => {
    await s.createDatabase();
    const [portA, portB] = [await freePort(), await freePort()];
    [a, b] = await Promise.all([
      s.startNode('A', 'api,worker,gateway', portA),
      s.startNode('B', 'gateway', portB),
      s.seed({ messaging: messagingExtract('gw-messaging') }),
    ]);
    await s.startAgent(b.url);
  }, 120_000);
  afterAll(() => s.close());

  it('a run started through A’s API reaches the agent connected to B and is delivered once', async () => {
    const [connected] = await b.proc.waitFor(/.*"msg":"agent connected".*/);
    expect(connected).toContain(`"agentId":"${s.agentId}"`);
    expect(a.proc.output()).not.toMatch(/"msg":"agent connected"/);
    const runId = await s.runNow(a.url, 'messaging');
    const run = await s.waitForRun(runId, ['DELIVERED'], 60_000);
    expect(run.agentId).toBe(s.agentId);
    expect(run.jobs.length).toBe(3);
    expect(run.jobs.every((j) => j.state === 'UPLOADED' && j.agentId === s.agentId)).toBe(true);
    await s.expectDeliveredOnce(runId);
    // B took the agent's side of the run (accept, chunks, completion); A dispatched and processed it.
    await s.logged(a, runId, 'run delivered');
    const lines = (n: Node, msg: string) =>
      n.proc
        .output()
        .split('\n')
        .filter((l) => l.includes(runId) && l.includes(`"msg":"${msg}"`));
    expect(lines(b, 'run running')).toHaveLength(1);
    expect(lines(b, 'run uploaded')).toHaveLength(1);
    expect(lines(a, 'run running')).toHaveLength(0);
    expect(lines(a, 'run uploaded')).toHaveLength(0);
    expect(lines(a, 'run processed')).toHaveLength(1);
    expect(lines(a, 'run delivered')).toHaveLength(1);
    expect([...lines(a, 'run dispatched'), ...lines(b, 'run dispatched')]).toHaveLength(1);
    expect(s.agentProc!.output()).toContain(`"url":"ws://127.0.0.1:${b.port}/agent"`);
  }, 90_000);
});

// ─── 2. Kill the worker while a run is running ──────────────────────────────

describe('the worker killed while a run is running', () => {
  const ROWS = 100_000;
  const s = new Scenario('worker');
  let g: Node;
  let w: Node;
  beforeAll(async () => {
    await s.createDatabase();
    const [portG, portW] = [await freePort(), await freePort()];
    [g, w] = await Promise.all([
      s.startNode('G', 'api,gateway', portG),
      s.startNode('W', 'worker', portW),
      s.seed({ bulk: bulkExtract('worker-bulk', ROWS) }),
    ]);
    await s.startAgent(g.url);
  }, 120_000);
  afterAll(() => s.close());

  it('a new worker processes the run the gateway finished ingesting; delivered exactly once', async () => {
    const runId = await s.runNow(g.url, 'bulk');
    await s.midUpload(runId);
    // Held mid-upload (the agent paused) so that the kill lands while the run is RUNNING.
    s.agentProc!.child.kill('SIGSTOP');
    try {
      expect((await s.run(runId)).state).toBe('RUNNING');
      await kill(w.proc);
    } finally {
      s.agentProc!.child.kill('SIGCONT');
    }
    // The gateway finishes the ingest on its own; with no worker, nothing processes the run …
    await s.waitForRun(runId, ['UPLOADED']);
    await sleep(1500);
    const waiting = await s.run(runId);
    expect(waiting.state).toBe('UPLOADED');
    expect(waiting.deliveries).toEqual([]);
    // … until a worker is back: it picks up the processing job the gateway queued.
    const w2 = await s.startNode('W2', 'worker', await freePort());
    const run = await s.waitForRun(runId, ['DELIVERED']);
    expect(run.attempt).toBe(0);
    const [delivery] = await s.expectDeliveredOnce(runId);
    expect(delivery!.attempts).toBe(1);
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
    // The journal follows the state change: wait for the last entry, then count them all.
    const audit = await until('the run.delivered audit entry', async () => {
      const counts = await s.audit(runId);
      return counts.has('run.delivered') ? counts : null;
    });
    for (const action of ['run.running', 'run.uploaded', 'run.processed', 'run.delivered']) {
      expect(audit.get(action), action).toBe(1);
    }
    expect((await s.audit(delivery!.id)).get('delivery.delivered')).toBe(1);
    await s.logged(w2, runId, 'run processed');
    expect(s.statements().get(run.jobs[0]!.id)).toBe(1);
  }, 90_000);
});

// ─── 3. Restart Redis ───────────────────────────────────────────────────────

describe('Redis restarted', () => {
  /** RunsRepository's DISPATCH_LOCK: claiming runs waits for it while the test holds it. */
  const DISPATCH_LOCK = 72_001;
  const EVERY_5_MIN = parseSchedule({ frequency: 'PT5M' });
  const s = new Scenario('redis');
  let redisPort: number;
  let redis: Spawned;
  let node: Node;

  async function startRedis() {
    redis = spawnProcess(
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {},
      'redis-server',
    );
    s.procs.push(redis);
    await redis.waitFor(/Ready to accept connections/, 15_000);
  }

  /**
   * A school id that makes the every-5-minutes schedule's next run fall due 25–35 s from now: the
   * scheduler places a school's runs in their slot by a stable hash of the school and extract ids.
   */
  function schoolDueSoon(extractId: string): string {
    if (!EVERY_5_MIN.ok) throw new Error('schedule');
    for (let i = 0; i < 50_000; i++) {
      const id = randomUUID();
      const next = planNext(EVERY_5_MIN.schedule, { after: new Date(), seed: `${id}:${extractId}` });
      const inMs = next!.dueAt.getTime() - Date.now();
      if (inMs > 25_000 && inMs < 35_000) return id;
    }
    throw new Error('no school id places the run 25–35 s from now');
  }

  beforeAll(async () => {
    redisPort = await freePort();
    s.redisUrl = `redis://127.0.0.1:${redisPort}`;
    await Promise.all([startRedis(), s.createDatabase()]);
    const port = await freePort();
    [node] = await Promise.all([
      s.startNode('N', 'api,gateway,worker', port, {
        RUN_SWEEP_INTERVAL_MS: '500',
        RUN_RETRY_BASE_SECONDS: '0.5',
      }),
      s.seed(
        {
          now: bulkExtract('redis-now', 500, { delta: 'none' }),
          every5: bulkExtract('redis-every5', 300, { schedule: '  frequency: PT5M' }),
        },
        (ids) => schoolDueSoon(ids.every5!),
      ),
    ]);
    await s.startAgent(node.url);
  }, 120_000);
  afterAll(() => s.close());

  it('a dispatch cut short and a lost timer are re-created from PostgreSQL; nothing runs twice', async () => {
    const scheduled = await s.prisma.run.findFirstOrThrow({
      where: { schoolId: s.schoolId, extractVersion: { extractId: s.extractIds.every5 }, state: 'SCHEDULED' },
    });
    expect(scheduled.trigger).toBe('SCHEDULED');
    // A manual run is claimed while Redis goes away: the test holds the dispatch lock until Redis is
    // down, so the claim (PostgreSQL) succeeds and offering the job (Redis) fails.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let locked!: () => void;
    const holding = new Promise<void>((r) => {
      locked = r;
    });
    const lock = s.prisma.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK})`;
        locked();
        await released;
      },
      { timeout: 60_000 },
    );
    let nowRun: string;
    try {
      await holding;
      nowRun = await s.runNow(node.url, 'now');
      await until('a dispatch to wait for the lock', async () => {
        const [row] = await s.prisma.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks
           WHERE locktype = 'advisory' AND objid = ${DISPATCH_LOCK} AND NOT granted`;
        return row!.n > 0;
      });
      // The scheduled run's timer is a delayed job in Redis, still ahead.
      expect(scheduled.dueAt.getTime() - Date.now()).toBeGreaterThan(3_000);
      await kill(redis);
    } finally {
      release();
      await lock;
    }
    // Redis is down: the manual run goes back to waiting (a retry), it is not failed for good.
    const retrying = await until(
      'the manual run to be retried',
      async () => {
        const r = await s.run(nowRun);
        expect(r.state, r.errorMessage ?? '').not.toBe('FAILED');
        return r.state === 'SCHEDULED' && r.attempt > 0 ? r : null;
      },
      15_000,
      () => s.explain(nowRun),
    );
    expect(retrying.attempt).toBe(1);
    expect(retrying.errorCode).toBe('run.dispatch_failed');
    // Redis comes back empty: the delayed timers, the sweep's own timer — all gone.
    await startRedis();
    await s.waitForRun(nowRun, ['DELIVERED'], 30_000);
    await s.waitForRun(scheduled.id, ['DELIVERED'], scheduled.dueAt.getTime() - Date.now() + 30_000);
    expect(node.proc.output()).toMatch(/the run sweep was missing from Redis/);
    // The agent gets its runs back whether its socket stayed up (presence restored at the next
    // heartbeat flush) or it reconnected while Redis was away: the runs above are what counts.
    const now = await s.run(nowRun);
    const slot = await s.run(scheduled.id);
    expect(now.attempt).toBe(1);
    expect(slot.attempt).toBe(0);
    expect((await s.audit(nowRun)).get('run.dispatched')).toBe(2);
    expect((await s.audit(scheduled.id)).get('run.dispatched')).toBe(1);
    expect(slot.dispatchedAt!.getTime()).toBeGreaterThanOrEqual(slot.dueAt.getTime());
    // The MIS was queried once per dataset, each change set received once.
    for (const run of [now, slot]) {
      for (const job of run.jobs) expect(s.statements().get(job.id), job.id).toBe(1);
      await s.expectDeliveredOnce(run.id);
    }
    // Scheduling goes on: the next slot is planned (just after the run ends), no slot got two runs.
    const next = await until('the next slot to be planned', () =>
      s.prisma.run.findFirst({ where: { scheduleId: scheduled.scheduleId, state: 'SCHEDULED' } }),
    );
    expect(next.dueAt.getTime()).toBeGreaterThan(slot.dueAt.getTime());
    const ofSchedule = await s.prisma.run.findMany({ where: { scheduleId: scheduled.scheduleId } });
    const slots = ofSchedule.map((r) => r.occurrenceId);
    expect(new Set(slots).size).toBe(slots.length);
    expect(ofSchedule.filter((r) => r.state === 'DELIVERED')).toHaveLength(1);
  }, 120_000);
});

// ─── 4 and 5. Kill the agent, then the control plane, mid-upload ────────────

describe('a crash mid-upload', () => {
  const ROWS = 250_000;
  const s = new Scenario('ingest');
  let node: Node;
  let port: number;
  beforeAll(async () => {
    await s.createDatabase();
    port = await freePort();
    [node] = await Promise.all([
      s.startNode('N', 'api,gateway,worker', port),
      s.seed({ a: bulkExtract('bulk-a', ROWS), b: bulkExtract('bulk-b', ROWS) }),
    ]);
    await s.startAgent(node.url);
  }, 120_000);
  afterAll(() => s.close());

  it('agent killed: the restarted agent is offered the job again, uploads afresh, delivered once', async () => {
    const runId = await s.runNow(node.url, 'a');
    await s.midUpload(runId);
    const first = s.agentProc!;
    first.child.kill('SIGSTOP');
    const killedAt = await s.run(runId);
    await kill(first);
    expect(killedAt.state).toBe('RUNNING');
    const stored = killedAt.jobs[0]!;
    expect(stored.state).toBe('RUNNING');
    expect(stored.nextSeq).toBeGreaterThan(0);
    await s.startAgent(node.url);
    const run = await s.waitForRun(runId, ['DELIVERED']);
    const job = run.jobs[0]!;
    expect(job.rowCount).toBe(ROWS);
    expect(job.chunkCount).toBeGreaterThan(stored.nextSeq);
    // The restarted agent took the job again with a new data key and sent everything afresh.
    expect(job.wrappedKey).not.toBe(stored.wrappedKey);
    expect(s.statements().get(job.id)).toBe(2);
    expect(run.attempt).toBe(0);
    const [delivery] = await s.expectDeliveredOnce(runId);
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
  }, 90_000);

  it('control plane killed: restarted on the same address, the agent resumes, delivered once', async () => {
    const runId = await s.runNow(node.url, 'b');
    await s.midUpload(runId);
    await kill(node.proc);
    const killedAt = await s.run(runId);
    expect(killedAt.state).toBe('RUNNING');
    expect(killedAt.jobs[0]!.state).toBe('RUNNING');
    node = await s.startNode('N2', 'api,gateway,worker', port);
    const run = await s.waitForRun(runId, ['DELIVERED']);
    const job = run.jobs[0]!;
    expect(job.rowCount).toBe(ROWS);
    // The agent process kept the job and resumed where the control plane's record stood: same data
    // key, the MIS queried once.
    expect(s.agentProc!.child.exitCode).toBeNull();
    expect(s.agentProc!.output()).toMatch(/"msg":"disconnected; reconnecting"/);
    expect(job.wrappedKey).toBe(killedAt.jobs[0]!.wrappedKey);
    expect(s.statements().get(job.id)).toBe(1);
    expect(run.attempt).toBe(0);
    const [delivery] = await s.expectDeliveredOnce(runId);
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
  }, 90_000);
});

// ─── 6 and 7. The partner's webhook down; held change sets ──────────────────

describe('webhook outages and held change sets', () => {
  const ROWS = 1000;
  const s = new Scenario('webhook');
  let node: Node;
  let port: number;
  const env = { DELTA_HOLD_SHARE: '0', WEBHOOK_MAX_ATTEMPTS: '10' };
  beforeAll(async () => {
    await s.createDatabase();
    port = await freePort();
    [node] = await Promise.all([
      s.startNode('N', 'api,gateway,worker', port, env),
      s.seed({
        full: bulkExtract('webhook-full', ROWS, { delta: 'none' }),
        held: messagingExtract('held-messaging'),
      }),
    ]);
    await s.startAgent(node.url);
  }, 120_000);
  afterAll(() => s.close());

  const deliveryOf = (runId: string) => s.prisma.delivery.findFirst({ where: { runId } });

  it('receiver down for a few attempts, then up → delivered exactly once', async () => {
    s.receiver.down = true;
    const runId = await s.runNow(node.url, 'full');
    const failing = await until(
      'three refused attempts',
      async () => {
        const d = await deliveryOf(runId);
        return d && d.attempts >= 3 ? d : null;
      },
      30_000,
      () => s.explain(runId),
    );
    expect(failing.state).toBe('FAILED');
    expect(failing.lastError).toMatch(/HTTP 503/);
    expect((await s.run(runId)).state).toBe('PROCESSED');
    s.receiver.down = false;
    const run = await s.waitForRun(runId, ['DELIVERED'], 30_000);
    expect(run.deliveredAt).toBeTruthy();
    const [delivery] = await s.expectDeliveredOnce(runId);
    expect(delivery!.attempts).toBeGreaterThanOrEqual(4);
    expect(delivery!.lastError).toBeNull();
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
  }, 60_000);

  it('receiver down past the last attempt → dead letter; redelivered by hand → delivered once', async () => {
    await kill(node.proc, 'SIGTERM');
    node = await s.startNode('N2', 'api,gateway,worker', port, { ...env, WEBHOOK_MAX_ATTEMPTS: '2' });
    s.receiver.down = true;
    const runId = await s.runNow(node.url, 'full');
    const dead = await until(
      'the change set to be dead-lettered',
      async () => {
        const d = await deliveryOf(runId);
        return d?.state === 'DEAD_LETTER' ? d : null;
      },
      45_000,
      () => s.explain(runId),
    );
    expect(dead.attempts).toBe(2);
    await sleep(1000);
    expect((await deliveryOf(runId))!.attempts).toBe(2);
    expect((await s.run(runId)).state).toBe('PROCESSED');
    expect(s.receivedCounts().get(dead.idempotencyKey)).toBeUndefined();
    expect(node.proc.output()).toMatch(/ALERT: delivery dead-lettered/);
    s.receiver.down = false;
    const res = await s.api(node.url, 'POST', `/partners/${s.partnerId}/deliveries/${dead.id}/redeliver`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await s.waitForRun(runId, ['DELIVERED'], 30_000);
    const [delivery] = await s.expectDeliveredOnce(runId);
    expect(delivery!.attempts).toBe(3);
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
  }, 60_000);

  it('a change set whose send job Redis lost is queued again by the sweep and arrives once', async () => {
    await kill(node.proc, 'SIGTERM');
    // Retries a minute apart: the job waits in Redis's delayed set when Redis loses it.
    node = await s.startNode('N3', 'api,gateway,worker', port, {
      ...env,
      WEBHOOK_RETRY_BASE_MS: '60000',
      DELIVERY_STALL_SECONDS: '1',
      RUN_SWEEP_INTERVAL_MS: '500',
    });
    s.receiver.down = true;
    const runId = await s.runNow(node.url, 'full');
    const failed = await until(
      'a failed first attempt',
      async () => {
        const d = await deliveryOf(runId);
        return d?.state === 'FAILED' ? d : null;
      },
      30_000,
      () => s.explain(runId),
    );
    expect(failed.sendJobId).toMatch(/^send-/);
    // Backing off, its job alive in Redis: the sweep leaves it alone (no second series).
    await sleep(2500);
    const waiting = (await deliveryOf(runId))!;
    expect(waiting.sendJobId).toBe(failed.sendJobId);
    expect(waiting.attempts).toBe(1);
    // Redis loses the deliveries queue (a restart without persistence).
    const { Queue } = createRequire(resolve(import.meta.dirname, '../apps/cloud/package.json'))('bullmq') as {
      Queue: new (
        name: string,
        options: { connection: { url: string }; prefix: string },
      ) => { obliterate(o: { force: boolean }): Promise<void>; close(): Promise<void> };
    };
    const queue = new Queue('deliveries', { connection: { url: s.redisUrl }, prefix: s.prefix });
    await queue.obliterate({ force: true });
    await queue.close();
    s.receiver.down = false;
    await s.waitForRun(runId, ['DELIVERED'], 30_000);
    const [delivery] = await s.expectDeliveredOnce(runId);
    expect(delivery!.sendJobId).not.toBe(failed.sendJobId);
    expect(delivery!.attempts).toBe(2);
    s.expectBulkRows(delivery!.idempotencyKey, ROWS);
    expect(node.proc.output()).toMatch(/change sets queued again: their send jobs were gone from Redis/);
  }, 90_000);

  it('a change set over the hold threshold is held until released, then arrives once', async () => {
    const first = await s.runNow(node.url, 'held');
    await s.waitForRun(first, ['DELIVERED']);
    const full = await s.expectDeliveredOnce(first);
    expect(full.every((d) => d.fullLoad && d.holdReason === null)).toBe(true);
    execFileSync(process.execPath, [DEMO_MIS, 'mutate', '--db', s.misPath, '--quiet']);
    const second = await s.runNow(node.url, 'held');
    await s.waitForRun(second, ['PROCESSED']);
    const deliveries = await s.prisma.delivery.findMany({ where: { runId: second } });
    const held = deliveries.filter((d) => d.state === 'HELD');
    expect(held.length).toBeGreaterThan(0);
    for (const d of held) expect(d.holdReason).toMatch(/over the 0\.0% threshold/);
    // Nothing held goes out, and the run waits for it.
    await sleep(1500);
    const counts = s.receivedCounts();
    for (const d of held) expect(counts.get(d.idempotencyKey), d.idempotencyKey).toBeUndefined();
    expect((await s.run(second)).state).toBe('PROCESSED');
    for (const d of held) {
      const res = await s.api(node.url, 'POST', `/partners/${s.partnerId}/deliveries/${d.id}/release`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    await s.waitForRun(second, ['DELIVERED'], 30_000);
    const delivered = await s.expectDeliveredOnce(second);
    expect(delivered.filter((d) => d.holdReason !== null)).toHaveLength(held.length);
    expect(delivered.every((d) => !d.fullLoad)).toBe(true);
  }, 90_000);
});
