import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decryptChunk,
  generateSigningKeyPair,
  sha256Hex,
  signEnvelope,
  unwrapKeyForRecipient,
} from '@keystage/crypto';
import { generateToMysql, generateToPostgres, generateToSqlite, openMis } from '@keystage/demo-mis';
import { createMessage, encodeMessage } from '@keystage/protocol';
import { ResultDecoder } from '@keystage/result-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentGateway, type AgentMessageEvent } from '../apps/cloud/src/agents/agent-gateway.js';
import { AgentsService } from '../apps/cloud/src/agents/agents.service.js';
import { PlatformKeysService } from '../apps/cloud/src/agents/platform-keys.service.js';
import { type RunningServer, startServer } from '../apps/cloud/src/bootstrap.js';
import { loadConfig } from '../apps/cloud/src/config/config.js';
import { agent, tempDataDir } from './support/agent.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { killAll, type Spawned, uniquePrefix } from './support/process.js';

// A real control plane (in this process, so the test can reach its gateway to send crafted jobs) and
// a real agent process over a real socket.
let db: TestDatabase;
let server: RunningServer;
let agentProc: Spawned;
let agentId: string;
let dataDir: string;
let misPath: string;
let urnSeq = 0;
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: null };
const events: AgentMessageEvent[] = [];
const chunks = new Map<string, Buffer[]>();
const reuses: { runId: string; seq: number; plainSha256: string }[] = [];
let binaryChunks = 0;

beforeAll(async () => {
  db = await createTestDatabase('agent_jobs');
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'agent-jobs-test-'.padEnd(48, 'k'),
      PORT: '0',
      LOG_LEVEL: process.env.KS_LOG ?? 'silent',
      REDIS_PREFIX: uniquePrefix('jobs'),
      AGENT_HEARTBEAT_INTERVAL_MS: '1000',
    }),
  );
  const gateway = server.app.get(AgentGateway);
  for (const type of ['job.accept', 'job.reject', 'run.complete', 'run.failed']) {
    gateway.events.on(type, (e: AgentMessageEvent) => events.push(e));
  }
  // These tests drive the agent with hand-made jobs the run lifecycle does not know: this stand-in
  // for the cloud's ingest grants credits, keeps the chunks and acknowledges outcomes.
  gateway.setMessageHandler({
    connected: async () => undefined,
    handle: async (e, reply) => {
      const m = e.message;
      if (m.type === 'job.accept') reply('chunk.ack', { runId: m.body.runId, nextSeq: 0, credits: 64 });
      else if (m.type === 'chunk.reuse') {
        // This stand-in keeps no earlier results: it always asks for the bytes.
        reuses.push(m.body);
        const stored = chunks.get(m.body.runId)?.length ?? 0;
        reply('chunk.ack', { runId: m.body.runId, nextSeq: stored, credits: 64, reuse: false });
      } else if (m.type === 'chunk' || m.type === 'chunk.data') {
        // This agent and gateway speak 1.3: chunks come as binary frames (`chunk.data` + bytes).
        binaryChunks += m.type === 'chunk.data' ? 1 : 0;
        const list = chunks.get(m.body.runId) ?? [];
        const bytes = m.type === 'chunk.data' ? e.payload! : Buffer.from(m.body.payload, 'base64');
        if (m.body.seq === list.length) list.push(bytes);
        chunks.set(m.body.runId, list);
        reply('chunk.ack', { runId: m.body.runId, nextSeq: list.length, credits: 64 });
      } else if (m.type === 'run.complete' || m.type === 'run.failed') {
        reply('run.ack', {
          runId: m.body.runId,
          outcome: m.type === 'run.complete' ? 'completed' : 'failed',
        });
      }
    },
  });
  const { PrismaProvider } = await import('../apps/cloud/src/database/prisma.provider.js');
  const prisma = server.app.get(PrismaProvider).client;
  const school = await prisma.school.create({
    data: { urn: '200001', laEstab: '873/5001', name: 'Jobs School', misType: 'DEMO_SQLITE' },
  });
  const { token } = await server.app.get(AgentsService).createEnrolmentToken(school.id, 1, SYSTEM);
  dataDir = tempDataDir('jobs');
  const enrol = agent(dataDir, ['enrol', '--url', server.url, '--token', token, '--mis-kind', 'DEMO_SQLITE']);
  const [, id] = await enrol.waitFor(/enrolled as agent ([0-9a-f-]{36})/);
  agentId = id!;
  expect((await enrol.exited()).code).toBe(0);
  misPath = join(dataDir, '..', 'school.sqlite');
  await generateToSqlite(misPath, { preset: 'tiny', seed: 7 });
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
  agentProc = agent(dataDir, ['run'], {
    KEYSTAGE_AGENT_STATEMENT_LOG: join(dataDir, '..', 'statements.log'),
    KEYSTAGE_AGENT_HEARTBEAT_MS: '500',
  });
  await agentProc.waitFor(/"authenticated"/);
}, 60_000);

afterAll(async () => {
  killAll();
  await server?.stop();
  await db?.drop();
});

async function rejection(runId: string) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const e = events.find(
      (x) => x.message.type === 'job.reject' && (x.message.body as { runId: string }).runId === runId,
    );
    if (e) return e.message.body as { code: string; message: string };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no job.reject for ${runId}; agent output:\n${agentProc.output()}`);
}

function spec(overrides: Record<string, unknown> = {}) {
  const sql = 'SELECT 1 AS one';
  return {
    runId: randomUUID(),
    extractVersionId: randomUUID(),
    datasetName: 'test',
    sql,
    sqlSha256: createHash('sha256').update(sql).digest('hex'),
    parameters: [],
    deadline: new Date(Date.now() + 60_000).toISOString(),
    resultKey: { alg: 'X25519', keyId: 'a'.repeat(64), publicKey: 'AAAA' },
    ...overrides,
  };
}

async function sendSigned(job: unknown) {
  const frame = encodeMessage(createMessage('job.offer', { job } as never));
  expect(await server.app.get(AgentGateway).send(agentId, frame)).toBe(true);
}

describe('the agent refuses jobs it must not run, and says why', () => {
  it('a job signed by another key → job.bad_signature', async () => {
    const forger = generateSigningKeyPair();
    const job = spec();
    await sendSigned(signEnvelope(job, forger.privateKey, { kind: 'job' }));
    expect((await rejection(job.runId)).code).toBe('job.bad_signature');
  });

  it('a job tampered with after signing → job.bad_signature', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    const job = spec();
    const signed = signEnvelope(job, key.privateKeyObject, { kind: 'job' });
    const tampered = {
      ...signed,
      payload: {
        ...signed.payload,
        sql: 'SELECT password FROM sys_user',
        sqlSha256: createHash('sha256').update('SELECT password FROM sys_user').digest('hex'),
      },
    };
    await sendSigned(tampered);
    expect((await rejection(job.runId)).code).toBe('job.bad_signature');
  });

  it('an unsigned job → job.bad_signature', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    const job = spec();
    const { signature: _s, ...unsigned } = signEnvelope(job, key.privateKeyObject, { kind: 'job' });
    await sendSigned({ ...unsigned, signature: Buffer.alloc(64).toString('base64') });
    expect((await rejection(job.runId)).code).toBe('job.bad_signature');
  });

  it('an expired job → job.expired', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    const job = spec();
    await sendSigned(
      signEnvelope(job, key.privateKeyObject, {
        kind: 'job',
        ttlMs: 1_000,
        now: new Date(Date.now() - 10 * 60_000),
      }),
    );
    expect((await rejection(job.runId)).code).toBe('job.expired');
  });

  it('a replayed job → job.replayed', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    const job = spec({ sqlSha256: '0'.repeat(64) });
    const signed = signEnvelope(job, key.privateKeyObject, { kind: 'job' });
    await sendSigned(signed);
    expect((await rejection(job.runId)).code).toBe('job.hash_mismatch');
    events.length = 0;
    await sendSigned(signed);
    expect((await rejection(job.runId)).code).toBe('job.replayed');
  });

  it('a job whose SQL does not match its approved hash → job.hash_mismatch', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    const job = spec({ sql: 'SELECT 2' });
    await sendSigned(signEnvelope(job, key.privateKeyObject, { kind: 'job' }));
    expect((await rejection(job.runId)).code).toBe('job.hash_mismatch');
  });

  it('none of them reached the MIS', () => {
    const log = join(dataDir, '..', 'statements.log');
    expect(existsSync(log) ? readFileSync(log, 'utf8') : '').toBe('');
    expect(readdirSync(dataDir)).toContain('seen-jobs.json');
  });
});

async function outcome(runId: string) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const e = events.find(
      (x) =>
        (x.message.type === 'run.complete' ||
          x.message.type === 'run.failed' ||
          x.message.type === 'job.reject') &&
        (x.message.body as { runId: string }).runId === runId,
    );
    if (e) return e.message;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no outcome for ${runId}; agent output:\n${agentProc.output()}`);
}

/**
 * Offers a job (under a fresh run id each try) until the agent takes it or refuses it for another
 * reason than `job.busy` — the answer while it is still finishing its last run (after the outcome
 * the stand-in acknowledged), which the real dispatcher meets by offering again. Returns the run id.
 */
async function offerUntilTaken(make: (runId: string) => Parameters<AgentGateway['offerJob']>[1]) {
  const gateway = server.app.get(AgentGateway);
  for (let attempt = 0; attempt < 100; attempt++) {
    const runId = randomUUID();
    await gateway.offerJob(agentId, make(runId));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const answer = events.find(
        (e) =>
          (e.message.type === 'job.accept' || e.message.type === 'job.reject') &&
          (e.message.body as { runId: string }).runId === runId,
      );
      if (answer?.message.type === 'job.accept') return runId;
      if (answer) {
        if ((answer.message.body as { code: string }).code !== 'job.busy') return runId;
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`no answer to ${runId}; agent output:\n${agentProc.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the agent stayed busy');
}

describe('the agent runs signed, read-only jobs against the MIS', () => {
  it('runs a valid job: accepts with a wrapped data key, streams, and reports the row count and digest', async () => {
    const sql =
      'SELECT p.person_id, p.surname, s.unique_pupil_no FROM sims.sims_person p JOIN sims.stud_student s ON s.person_id = p.person_id WHERE s.current_ncyear >= :year ORDER BY p.person_id';
    const runId = await offerUntilTaken((id) => ({
      runId: id,
      extractVersionId: randomUUID(),
      datasetName: 'pupils',
      sql,
      sqlSha256: createHash('sha256').update(sql).digest('hex'),
      parameters: [{ name: 'year', type: 'integer', value: 0 }],
      deadline: new Date(Date.now() + 60_000).toISOString(),
    }));
    const before = binaryChunks;
    const done = await outcome(runId);
    expect(done.type, JSON.stringify(done.body)).toBe('run.complete');
    // Its chunks came as binary frames (1.3), every one of them.
    expect(binaryChunks - before).toBe(chunks.get(runId)?.length);
    expect(binaryChunks - before).toBeGreaterThan(0);
    const accept = events.find(
      (e) => e.message.type === 'job.accept' && (e.message.body as { runId: string }).runId === runId,
    );
    const wrapped =
      (accept?.message.body as { dataKey?: { wrapped: string } } | undefined)?.dataKey?.wrapped ?? '';
    expect(wrapped.length).toBeGreaterThan(100);

    // The same query read directly: the agent saw exactly these rows.
    const mis = await openMis(misPath);
    const rows = await mis.all(
      sql.replace(':year', '0').replaceAll('sims.', `${mis.table('x').split('.')[0]}.`),
    );
    await mis.close();
    const body = done.body as {
      rowCount: number;
      chunkCount: number;
      byteCount: number;
      resultSha256: string;
    };
    expect(body.rowCount).toBe(rows.length);
    expect(body.rowCount).toBeGreaterThan(10);
    // Only the control plane's result key opens the data key; the chunks decode to exactly those rows.
    const resultKey = await server.app.get(PlatformKeysService).active('result-wrapping');
    const dataKey = unwrapKeyForRecipient(Buffer.from(wrapped, 'base64'), resultKey.privateKeyObject, runId);
    const decoder = new ResultDecoder({ runId, dataKey });
    const received: unknown[][] = [];
    for (const [seq, bytes] of (chunks.get(runId) ?? []).entries()) {
      const opened = decoder.open(seq, bytes, createHash('sha256').update(bytes).digest('hex'));
      if (opened.status === 'opened') received.push(...opened.rows);
    }
    expect(decoder.finish(body).columns).toEqual(['person_id', 'surname', 'unique_pupil_no']);
    expect(received).toEqual(rows.map((r) => Object.values(r)));
    // Nothing readable crossed the wire: no surname appears in any chunk.
    const surname = String(rows[0]!.surname);
    for (const bytes of chunks.get(runId) ?? []) expect(bytes.includes(Buffer.from(surname))).toBe(false);
    expect(readFileSync(join(dataDir, '..', 'statements.log'), 'utf8')).toContain(runId);
  });

  it('offers unchanged chunks as chunk.reuse, and sends their bytes when the control plane cannot reuse them', async () => {
    const resultKey = await server.app.get(PlatformKeysService).active('result-wrapping');
    const sql = 'SELECT person_id, surname FROM sims.sims_person ORDER BY person_id';
    const job = (runId: string) => ({
      runId,
      extractVersionId: randomUUID(),
      datasetName: 'people',
      sql,
      sqlSha256: createHash('sha256').update(sql).digest('hex'),
      parameters: [],
      deadline: new Date(Date.now() + 60_000).toISOString(),
    });
    const dataKeyOf = (runId: string) => {
      const accept = events.find(
        (e) => e.message.type === 'job.accept' && (e.message.body as { runId: string }).runId === runId,
      );
      const wrapped = (accept!.message.body as { dataKey: { wrapped: string } }).dataKey.wrapped;
      return unwrapKeyForRecipient(Buffer.from(wrapped, 'base64'), resultKey.privateKeyObject, runId);
    };
    const first = await offerUntilTaken(job);
    const firstDone = await outcome(first);
    expect(firstDone.type).toBe('run.complete');
    const key = dataKeyOf(first);
    const digests = (chunks.get(first) ?? []).map((bytes, seq) =>
      sha256Hex(decryptChunk(bytes, key, { runId: first, seq })),
    );
    expect(digests.length).toBeGreaterThan(0);

    const second = await offerUntilTaken((id) => ({ ...job(id), reuse: { chunks: digests } }));
    const secondDone = await outcome(second);
    expect(secondDone.type).toBe('run.complete');
    // The agent recognised chunk 0 as unchanged (same plaintext under a new data key) …
    expect(reuses.filter((r) => r.runId === second)).toEqual([
      expect.objectContaining({ seq: 0, plainSha256: digests[0] }),
    ]);
    // … and, told `reuse: false`, sent every chunk's bytes: the same result as the first run.
    expect(chunks.get(second)).toHaveLength(digests.length);
    const body = (m: typeof firstDone) => m.body as { resultSha256: string; rowCount: number };
    expect(body(secondDone).resultSha256).toBe(body(firstDone).resultSha256);
    expect(body(secondDone).rowCount).toBe(body(firstDone).rowCount);
  });

  it('refuses SQL that is not one read-only statement, even correctly signed and hashed', async () => {
    const key = await server.app.get(PlatformKeysService).active('job-signing');
    for (const sql of [
      'DELETE FROM sims.sims_person',
      'SELECT 1; DROP TABLE sims.sims_person',
      "SELECT load_extension('x')",
    ]) {
      const job = spec({ sql, sqlSha256: createHash('sha256').update(sql).digest('hex') });
      await sendSigned(signEnvelope(job, key.privateKeyObject, { kind: 'job' }));
      const r = await rejection(job.runId);
      expect(r.code, sql).toBe('job.sql_not_read_only');
    }
    expect(readFileSync(join(dataDir, '..', 'statements.log'), 'utf8')).not.toMatch(/DELETE|DROP/);
  });

  it('can be cancelled from the cloud mid-run', async () => {
    const gateway = server.app.get(AgentGateway);
    const sql =
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) SELECT x FROM c';
    const runId = await offerUntilTaken((id) => ({
      runId: id,
      extractVersionId: randomUUID(),
      datasetName: 'endless',
      sql,
      sqlSha256: createHash('sha256').update(sql).digest('hex'),
      parameters: [],
      deadline: new Date(Date.now() + 120_000).toISOString(),
    }));
    const deadline = Date.now() + 10_000;
    while (
      !events.some(
        (e) => e.message.type === 'job.accept' && (e.message.body as { runId: string }).runId === runId,
      ) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    await gateway.cancelJob(agentId, runId, 'test cancel');
    const done = await outcome(runId);
    expect(done.type).toBe('run.failed');
    expect(done.body).toMatchObject({ code: 'run.cancelled' });
  });
});

describe('MIS credentials stay on this machine, encrypted', () => {
  it('credentials test connects to each real database and reports its version and readable areas', async () => {
    const { withDatabase, createDatabase, dropDatabase } = await import('@keystage/db/migrator');
    const pgUrl = withDatabase(db.url, `${new URL(db.url).pathname.slice(1)}_mis`);
    await createDatabase(pgUrl, { replace: true });
    const mysqlDb = `ks_agent_mis_${process.pid}`;
    const mysqlUrl = `mysql://root@127.0.0.1:3306/${mysqlDb}`;
    try {
      await generateToPostgres(pgUrl, { preset: 'tiny', seed: 7 });
      await generateToMysql(mysqlUrl, { preset: 'tiny', seed: 7 });
      const cases: [string, string, RegExp][] = [
        ['DEMO_SQLITE', misPath, /Server:\s+SQLite 3\./],
        ['POSTGRES', pgUrl, /Server:\s+PostgreSQL 1\d/],
        ['MYSQL', mysqlUrl, /Server:\s+.*MariaDB/i],
      ];
      for (const [kind, location, version] of cases) {
        const dir = tempDataDir(`ct-${kind}`);
        const { cpSync } = await import('node:fs');
        cpSync(dataDir, dir, { recursive: true });
        const set = agent(dir, [
          'credentials',
          'set',
          '--kind',
          kind,
          '--location',
          location,
          '--no-password',
        ]);
        expect((await set.exited()).code, set.output()).toBe(0);
        const test = agent(dir, ['credentials', 'test']);
        expect((await test.exited()).code, test.output()).toBe(0);
        expect(test.output()).toMatch(version);
        expect(test.output()).toMatch(/Readable tables:\s+\d+/);
      }
      // A wrong location is one clear line, not a stack trace.
      const dir = tempDataDir('ct-bad');
      const { cpSync } = await import('node:fs');
      cpSync(dataDir, dir, { recursive: true });
      await agent(dir, [
        'credentials',
        'set',
        '--kind',
        'POSTGRES',
        '--location',
        'postgresql://postgres@127.0.0.1:1/none',
        '--no-password',
      ]).exited();
      const bad = agent(dir, ['credentials', 'test']);
      expect((await bad.exited()).code).toBe(1);
      expect(bad.output().trim().split('\n')).toHaveLength(1);
      expect(bad.output()).toMatch(/cannot use the MIS/);
    } finally {
      await dropDatabase(pgUrl);
      const mysql = await openMis(`mysql://root@127.0.0.1:3306/${mysqlDb}`).catch(() => undefined);
      await mysql?.run(`DROP DATABASE IF EXISTS ${mysqlDb}`);
      await mysql?.close();
    }
  }, 60_000);

  const PASSWORD = 'Tr0ub4dor&3-mis-password';

  async function enrolNew(name: string) {
    const { PrismaProvider } = await import('../apps/cloud/src/database/prisma.provider.js');
    const prisma = server.app.get(PrismaProvider).client;
    const school = await prisma.school.create({
      data: {
        urn: String(200100 + ++urnSeq),
        laEstab: '873/5002',
        name: `Creds ${name}`,
        misType: 'POSTGRES',
      },
    });
    const { token } = await server.app.get(AgentsService).createEnrolmentToken(school.id, 1, SYSTEM);
    const dir = tempDataDir(name);
    const enrol = agent(dir, ['enrol', '--url', server.url, '--token', token, '--mis-kind', 'POSTGRES']);
    const [, id] = await enrol.waitFor(/enrolled as agent ([0-9a-f-]{36})/);
    await enrol.exited();
    return { dir, agentId: id!, schoolId: school.id };
  }

  function filesContaining(dir: string, needle: string): string[] {
    const hits: string[] = [];
    const forms = [
      Buffer.from(needle),
      Buffer.from(Buffer.from(needle).toString('base64')),
      Buffer.from(Buffer.from(needle).toString('hex')),
    ];
    for (const name of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, name));
      if (forms.some((f) => bytes.includes(f))) hits.push(name);
    }
    return hits;
  }

  it('stores the password encrypted (0600 files in a 0700 directory); clear removes it', async () => {
    const { dir } = await enrolNew('store');
    const set = agent(
      dir,
      ['credentials', 'set', '--kind', 'POSTGRES', '--location', 'postgresql://reader@127.0.0.1:5432/sims'],
      {},
      `${PASSWORD}\n`,
    );
    expect((await set.exited()).code, set.output()).toBe(0);
    expect(filesContaining(dir, PASSWORD)).toEqual([]);
    const { statSync } = await import('node:fs');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(dir))
      expect((statSync(join(dir, name)).mode & 0o777).toString(8)).toBe('600');
    expect(readdirSync(dir)).toEqual(
      expect.arrayContaining(['credentials.enc', 'credentials.key', 'identity.key']),
    );

    const inUrl = agent(
      dir,
      ['credentials', 'set', '--kind', 'POSTGRES', '--location', 'postgresql://reader:secret@host/db'],
      {},
      'x\n',
    );
    expect((await inUrl.exited()).code).toBe(2);
    expect(inUrl.output()).toMatch(/put no password in --location/);

    const clear = agent(dir, ['credentials', 'clear']);
    expect((await clear.exited()).code).toBe(0);
    expect(readdirSync(dir)).not.toContain('credentials.enc');
    expect(readdirSync(dir)).not.toContain('credentials.key');
  });

  it('diagnostics and status carry no password, no private key and no MIS location details', async () => {
    const { dir } = await enrolNew('diag');
    const set = agent(
      dir,
      [
        'credentials',
        'set',
        '--kind',
        'POSTGRES',
        '--location',
        'postgresql://reader@mis.school.internal:5432/sims',
      ],
      {},
      `${PASSWORD}\n`,
    );
    expect((await set.exited()).code).toBe(0);
    const diag = agent(dir, ['diagnostics']);
    expect((await diag.exited()).code).toBe(0);
    const bundle = JSON.parse(diag.output());
    expect(bundle).toMatchObject({
      agentVersion: '0.1.0',
      mis: { kind: 'POSTGRES', host: 'mis.school.internal:5432' },
    });
    const privateKey = readFileSync(join(dir, 'identity.key'), 'utf8').trim();
    for (const secret of [PASSWORD, privateKey, 'reader@']) expect(diag.output()).not.toContain(secret);
    const status = agent(dir, ['status']);
    await status.exited();
    expect(status.output()).toMatch(/credentials stored \(encrypted\)/);
    expect(status.output()).not.toContain(PASSWORD);
  });

  it('supervised mode keeps the password in memory only, and the control plane shows the agent as supervised', async () => {
    const { dir, agentId } = await enrolNew('supervised');
    const configure = agent(dir, [
      'credentials',
      'set',
      '--kind',
      'POSTGRES',
      '--location',
      'postgresql://reader@127.0.0.1:5432/sims',
      '--no-password',
    ]);
    expect((await configure.exited()).code).toBe(0);
    const run = agent(dir, ['run', '--supervised'], { KEYSTAGE_AGENT_HEARTBEAT_MS: '1000' }, `${PASSWORD}\n`);
    await run.waitFor(/"authenticated"/);
    const { AgentsRepository } = await import('../apps/cloud/src/agents/agents.repository.js');
    const deadline = Date.now() + 15_000;
    let row = await server.app.get(AgentsRepository).findById(agentId);
    while (!row?.supervised && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      row = await server.app.get(AgentsRepository).findById(agentId);
    }
    expect(row?.supervised).toBe(true);
    expect((row?.lastHeartbeat as { credentialsReady?: boolean } | undefined)?.credentialsReady).toBe(true);
    expect(filesContaining(dir, PASSWORD)).toEqual([]);
    expect(run.output()).not.toContain(PASSWORD);
    run.child.kill('SIGINT');
    expect((await run.exited()).code).toBe(0);
  });
});
