import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { sign } from '@keystage/crypto';
import {
  authSigningInput,
  createMessage,
  encodeChunkFrame,
  encodeMessage,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
} from '@keystage/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { IDENTITY_FILE } from '../apps/agent/src/state.js';
import { agent, tempDataDir } from './support/agent.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { json } from './support/http.js';
import { killAll, type Spawned, spawnProcess, uniquePrefix } from './support/process.js';

// Real processes over real sockets: the control plane (built), the agent (built), both killed and
// restarted as an operator would.
const MAIN = resolve(import.meta.dirname, '../apps/cloud/dist/main.js');
const CLI = resolve(import.meta.dirname, '../apps/cloud/dist/cli.js');
const PASSWORD = 'support password for tests';

let db: TestDatabase;
let port: number;
let cloud: Spawned;
let base: string;
let token: string;
let schoolId: string;
let env: Record<string, string>;

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });
}

async function startCloud(): Promise<Spawned> {
  const p = spawnProcess([MAIN], env);
  await p.waitFor(/listening on/);
  return p;
}

async function api(path: string, init: { method?: string; body?: unknown } = {}) {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, body: await json(res) };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  db = await createTestDatabase('agent_link');
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    DATABASE_URL: db.url,
    KEYSTAGE_SECRET: 'agent-link-test-secret-'.padEnd(48, 'z'),
    PORT: String(port),
    LOG_LEVEL: 'warn',
    REDIS_PREFIX: uniquePrefix('link'),
    PASSWORD_HASH_COST: '10',
    AGENT_HEARTBEAT_INTERVAL_MS: '1000',
  };
  await promisify(execFile)(
    process.execPath,
    [CLI, 'users', 'create-support', '--email', 'ops@keystage.test'],
    {
      env: { ...process.env, ...env, KEYSTAGE_NEW_PASSWORD: PASSWORD },
    },
  );
  cloud = await startCloud();
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'ops@keystage.test', password: PASSWORD }),
  });
  token = (await json(login)).accessToken;
  const school = await api('/schools', {
    method: 'POST',
    body: { urn: '300001', laEstab: '873/6001', name: 'Link School', misType: 'DEMO_SQLITE' },
  });
  expect(school.status).toBe(201);
  schoolId = school.body.id;
}, 60_000);

afterAll(async () => {
  killAll();
  await db?.drop();
});

async function enrolled(name: string) {
  const t = await api(`/schools/${schoolId}/enrolment-tokens`, { method: 'POST', body: {} });
  expect(t.status).toBe(201);
  const dir = tempDataDir(name);
  const enrol = agent(dir, ['enrol', '--url', base, '--token', t.body.token, '--mis-kind', 'DEMO_SQLITE']);
  const [, agentId] = await enrol.waitFor(/enrolled as agent ([0-9a-f-]{36})/);
  expect((await enrol.exited()).code).toBe(0);
  return { dir, agentId: agentId!, token: t.body.token as string };
}

async function agentView(agentId: string) {
  const list = await api(`/schools/${schoolId}/agents`);
  return list.body.find((a: { id: string }) => a.id === agentId);
}

describe('agent ↔ control plane link', () => {
  it('enrols, connects, is listed online with its heartbeat; reconnects after the control plane is killed; stops when revoked', async () => {
    const { dir, agentId, token: used } = await enrolled('life');
    // The token was single-use.
    const again = agent(tempDataDir('again'), ['enrol', '--url', base, '--token', used]);
    expect((await again.exited()).code).toBe(1);
    expect(again.output()).toMatch(/enrolment refused \(400\): enrolment token is not valid/);

    const run = agent(dir, ['run'], { KEYSTAGE_AGENT_HEARTBEAT_MS: '1000' });
    await run.waitFor(/"authenticated"/);
    const online = await until('online with heartbeat', async () => {
      const a = await agentView(agentId);
      return a?.online && a.lastHeartbeat ? a : undefined;
    });
    expect(online).toMatchObject({
      status: 'ACTIVE',
      version: '0.1.0',
      misKind: 'DEMO_SQLITE',
      supervised: false,
    });
    expect(online.lastHeartbeat).toMatchObject({ queueDepth: 0, credentialsReady: false });
    expect(online.lastHeartbeat.freeDiskBytes).toBeGreaterThan(0);

    cloud.child.kill('SIGKILL');
    await cloud.exited();
    await run.waitFor(/disconnected; reconnecting/);
    const before = (run.output().match(/"authenticated"/g) ?? []).length;
    cloud = await startCloud();
    await until('re-authenticated', async () =>
      (run.output().match(/"authenticated"/g) ?? []).length > before ? true : undefined,
    );
    await until('online again', async () => ((await agentView(agentId))?.online ? true : undefined));

    const revoke = await api(`/schools/${schoolId}/agents/${agentId}/revoke`, {
      method: 'POST',
      body: { reason: 'laptop stolen' },
    });
    expect(revoke.status).toBe(200);
    const { code } = await run.exited(15_000);
    expect(code).toBe(3);
    expect(run.output()).toMatch(
      /refused this agent \(agent\.revoked\): this agent was revoked: laptop stolen/,
    );
    expect((await agentView(agentId)).status).toBe('REVOKED');

    // Restarting a revoked agent does not bring it back.
    const rerun = agent(dir, ['run']);
    expect((await rerun.exited(15_000)).code).toBe(3);
    const status = agent(dir, ['status']);
    await status.exited();
    expect(status.output()).toMatch(/refused\s+agent\.revoked/);
  }, 90_000);

  it('re-enrolling replaces the old agent, whose connection is refused as unknown', async () => {
    const first = await enrolled('replace');
    const run = agent(first.dir, ['run']);
    await run.waitFor(/"authenticated"/);
    const second = await enrolled('replace2');
    expect((await run.exited(15_000)).code).toBe(3);
    expect(run.output()).toMatch(/agent\.unknown/);
    const agents = (await api(`/schools/${schoolId}/agents`)).body;
    expect(agents.find((a: { id: string }) => a.id === first.agentId).status).toBe('REPLACED');
    expect(agents.find((a: { id: string }) => a.id === second.agentId).status).toBe('ACTIVE');
  }, 60_000);

  it('a second connection with the same identity replaces the first', async () => {
    const { dir } = await enrolled('twice');
    const one = agent(dir, ['run']);
    await one.waitFor(/"authenticated"/);
    const two = agent(dir, ['run']);
    await two.waitFor(/"authenticated"/);
    expect((await one.exited(15_000)).code).toBe(3);
    expect(one.output()).toMatch(/session\.replaced/);
    two.child.kill('SIGINT');
    expect((await two.exited()).code).toBe(0);
  }, 60_000);
});

describe('bad input at the gateway door', () => {
  function raw(): Promise<{ ws: WebSocket; messages: unknown[]; closed: Promise<number> }> {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/agent`);
      const messages: unknown[] = [];
      const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
      ws.on('message', (d) => messages.push(JSON.parse(String(d))));
      ws.on('open', () => ok({ ws, messages, closed }));
      ws.on('error', fail);
    });
  }
  const hello = (agentId: string, protocolVersion = '1.0') => {
    const m = createMessage('hello', { agentId, agentVersion: '9.9.9', os: 'linux x64', misKind: 'SIMS' });
    return JSON.stringify({ ...JSON.parse(encodeMessage(m)), protocolVersion });
  };
  const waitFor = async (messages: unknown[], n: number) =>
    until(`${n} messages`, async () => (messages.length >= n ? true : undefined), 5_000);

  it('refuses a wrong protocol major with the supported range', async () => {
    const c = await raw();
    c.ws.send(hello('00000000-0000-4000-8000-000000000000', '2.0'));
    await waitFor(c.messages, 1);
    expect(c.messages[0]).toMatchObject({
      type: 'refused',
      body: {
        code: 'protocol.version_unsupported',
        retryable: false,
        supported: { min: '1.0', max: PROTOCOL_VERSION },
      },
    });
    expect(await c.closed).toBe(1008);
  });

  it('refuses an unknown agent id', async () => {
    const c = await raw();
    c.ws.send(hello('00000000-0000-4000-8000-000000000000'));
    await waitFor(c.messages, 1);
    expect(c.messages[0]).toMatchObject({ type: 'refused', body: { code: 'agent.unknown' } });
  });

  it('answers garbage and wrong types with typed errors, then closes a peer that keeps at it; the gateway survives', async () => {
    const c = await raw();
    c.ws.send('not json at all');
    c.ws.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: true });
    c.ws.send(
      JSON.stringify({ id: 'x', type: 'heartbeat', protocolVersion: '1.0', body: { agentVersion: 5 } }),
    );
    c.ws.send(
      JSON.stringify({
        id: '00000000-0000-4000-8000-000000000001',
        protocolVersion: '1.0',
        type: 'no.such.type',
        sentAt: new Date().toISOString(),
        body: {},
      }),
    );
    await waitFor(c.messages, 4);
    const codes = (c.messages as { body: { code: string } }[]).map((m) => m.body.code);
    expect(codes).toEqual([
      'protocol.malformed',
      'protocol.malformed',
      'protocol.malformed',
      'protocol.unknown_type',
    ]);
    for (let i = 0; i < 10; i++) c.ws.send('{');
    expect(await c.closed).toBe(1008);
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
  });

  it('closes a connection that sends an oversized frame (1009) and keeps serving others', async () => {
    const c = await raw();
    c.ws.send('x'.repeat(MAX_FRAME_BYTES + 10));
    expect(await c.closed).toBe(1009);
    const d = await raw();
    d.ws.send(hello('00000000-0000-4000-8000-000000000000'));
    await waitFor(d.messages, 1);
    expect(d.messages[0]).toMatchObject({ type: 'refused' });
  });

  it('takes a chunk as a binary frame only once authenticated, and only as chunk.data with exactly its bytes', async () => {
    const { dir, agentId } = await enrolled('binary');
    const c = await raw();
    c.ws.send(hello(agentId, PROTOCOL_VERSION));
    await waitFor(c.messages, 1);
    const { nonce } = (c.messages[0] as { body: { nonce: string } }).body;
    const identity = readFileSync(join(dir, IDENTITY_FILE), 'utf8').trim();
    const signature = sign(authSigningInput({ nonce, agentId, protocolVersion: PROTOCOL_VERSION }), identity);
    c.ws.send(encodeMessage(createMessage('auth', { agentId, signature })));
    await waitFor(c.messages, 2);
    expect(c.messages[1]).toMatchObject({ type: 'auth.ok', protocolVersion: PROTOCOL_VERSION });
    const bytes = Buffer.from('sealed chunk bytes');
    const header = createMessage('chunk.data', {
      runId: '00000000-0000-4000-8000-00000000c0de',
      seq: 0,
      byteLength: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    const frame = encodeChunkFrame(header, bytes);
    // Not a chunk frame; one byte short of its byteLength; chunk.data as text (no bytes).
    c.ws.send(Buffer.from([0, 0, 0, 9, 1, 2]), { binary: true });
    c.ws.send(frame.subarray(0, frame.length - 1), { binary: true });
    c.ws.send(encodeMessage(header));
    await waitFor(c.messages, 5);
    expect(c.messages.slice(2)).toMatchObject([
      { type: 'error', body: { code: 'protocol.malformed' } },
      {
        type: 'error',
        replyTo: header.id,
        body: { code: 'protocol.malformed', message: expect.stringMatching(/byteLength/) },
      },
      {
        type: 'error',
        replyTo: header.id,
        body: { code: 'protocol.malformed', message: expect.stringMatching(/binary frame/) },
      },
    ]);
    // A well-formed one reaches the run lifecycle, which knows no such run.
    c.ws.send(frame, { binary: true });
    await waitFor(c.messages, 6);
    expect(c.messages[5]).toMatchObject({ type: 'error', replyTo: header.id, body: { code: 'run.unknown' } });
    c.ws.close();
  });

  it('refuses an authentication signed with the wrong key', async () => {
    const { agentId } = await enrolled('wrongkey');
    const c = await raw();
    c.ws.send(hello(agentId));
    await waitFor(c.messages, 1);
    expect(c.messages[0]).toMatchObject({ type: 'challenge' });
    c.ws.send(
      encodeMessage(createMessage('auth', { agentId, signature: Buffer.alloc(64, 7).toString('base64') })),
    );
    await waitFor(c.messages, 2);
    expect(c.messages[1]).toMatchObject({ type: 'refused', body: { code: 'auth.failed' } });
  });
});
