#!/usr/bin/env node
/**
 * Benchmark: the agents' WebSocket gateway beside a bare `ws` server (the anchor), in one run.
 *
 *   pnpm build            # or at least: packages crypto, protocol, db; apps cloud, agent
 *   node bench/gateway/run.mjs [--sizes 5000,15000] [--window-s 30] [--interval-ms 30000]
 *                              [--dispatches 2000] [--concurrency 1,10] [--agent-idle-s 10]
 *                              [--json results.json] [--profile-dir dir]
 *
 * Needs PostgreSQL (127.0.0.1:5432, user postgres, trust) and Redis (127.0.0.1:6379). The bench
 * creates and migrates its own database, uses its own Redis key prefix, and removes both at the end.
 * Everything runs on loopback; every phase is bounded; the run stops by itself (≈ 6–8 minutes).
 *
 * Processes (the servers' RSS and CPU are measured from /proc, so each is alone in its process):
 *   - bare-server.mjs    the anchor: accept, ack heartbeats, echo pushes (permessage-deflate off)
 *   - cloud-server.mjs   the control plane, all roles (api, gateway, worker), built code
 *   - clients.mjs ×2     simulated agents, ≤ 7,500 sockets each (hard open-file limit: 20,000)
 *   - apps/agent         a real agent process (`enrol`, then `run`) for its idle RSS
 *
 * Measured, for each server: RSS per connected agent at each size (RSS after − RSS before, after a
 * forced GC, divided by the number of agents); CPU of the server process (utime+stime from /proc)
 * while every agent sends the real `heartbeat` once per interval, spread evenly; the round trip of a
 * ≈ 2 KB push and the agent's answer (gateway: `offerJob` → `job.reject` on `gateway.events`).
 * Targets (issue 5): ≤ 2× the anchor's memory per connection and heartbeat CPU, dispatch
 * p99 ≤ 10 ms, agent idle RSS < 60 MB.
 */
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigningKeyPair } from '../../packages/crypto/dist/index.js';
import { applyMigrations, dropDatabase } from '../../packages/db/dist/migrator.js';
import { CLK_TCK, cloudRequire, cpuTicks, ROOT, requester, sleep, statusKb } from './common.mjs';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5000,15000' },
    'window-s': { type: 'string', default: '30' },
    'interval-ms': { type: 'string', default: '30000' },
    dispatches: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '1,10' },
    'agent-idle-s': { type: 'string', default: '10' },
    'pg-server': { type: 'string', default: 'postgresql://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    only: { type: 'string', default: 'bare,gateway' },
    json: { type: 'string' },
    'profile-dir': { type: 'string' },
  },
});

const SIZES = opts.sizes
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const MAX_N = SIZES[SIZES.length - 1];
const HALF = Math.ceil(MAX_N / 2);
const WINDOW_S = Number(opts['window-s']);
const INTERVAL_MS = Number(opts['interval-ms']);
const DISPATCHES = Number(opts.dispatches);
// Dispatch is measured at each of these numbers of offers in flight; the last one is the "moderate"
// load the p99 target is judged at (1 shows the unloaded round trip).
const CONCURRENCIES = opts.concurrency.split(',').map(Number);
const CONCURRENCY = CONCURRENCIES[CONCURRENCIES.length - 1];
const AGENT_IDLE_S = Number(opts['agent-idle-s']);
const TARGETS = opts.only.split(',');
const HARD_LIMIT_MS = 15 * 60_000;
const SQL_LENGTH = 1_250; // → a job.offer frame of ≈ 2 KB once signed and wrapped
const PUSH_PAD = 1_900; // → an anchor push frame of ≈ 2 KB
if (HALF > 9_000) throw new Error('at most 18,000 agents: two client processes under the fd limit');

const mb = (kbs) => kbs.map((k) => (k / 1024).toFixed(1)).join(', ');
const log = (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const pg = cloudRequire('pg');
const { Redis } = cloudRequire('ioredis');

const tag = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const dbName = `bench_gateway_${tag}`;
const dbUrl = (() => {
  const u = new URL(opts['pg-server']);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const redisPrefix = `bench-gw-${tag}`;
const tmp = mkdtempSync(join(tmpdir(), 'ks-bench-gateway-'));
const children = new Set();
let admin; // pg client on the server's maintenance database (monitoring only)

// ─── child processes ─────────────────────────────────────────────────────────

function start(script, args, { env = {}, gc = false, name }) {
  const child = fork(join(ROOT, 'bench/gateway', script), args, {
    execArgv: gc ? ['--expose-gc'] : [],
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let tail = '';
  const keep = (d) => {
    tail = (tail + d.toString('utf8')).slice(-6_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const call = requester(child, name);
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${tail}`)), 60_000);
    child.on('message', (m) => {
      if (m?.ready) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${tail}`));
    });
  });
  return { child, call, ready, tail: () => tail, name };
}

async function stopChild(c, cmd = 'stop') {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise((r) => c.child.once('exit', r));
  if (cmd) await c.call(cmd, {}, 30_000).catch(() => undefined);
  else c.child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!done) c.child.kill('SIGKILL');
}

// ─── database: migrate, enrol MAX_N agents directly ──────────────────────────

async function setupDatabase() {
  log(`database ${dbName}: create and migrate`);
  await applyMigrations({
    databaseUrl: dbUrl,
    migrationsDir: join(ROOT, 'prisma/migrations'),
    createDatabase: true,
  });
  log(`generating ${MAX_N} Ed25519 key pairs (one per agent)`);
  const agents = [];
  const rows = { schools: [], urns: [], agentIds: [], keys: [] };
  for (let i = 0; i < MAX_N; i++) {
    const pair = generateSigningKeyPair();
    const schoolId = crypto.randomUUID();
    const agentId = crypto.randomUUID();
    rows.schools.push(schoolId);
    rows.urns.push(String(100_000 + i));
    rows.agentIds.push(agentId);
    rows.keys.push(pair.publicKey);
    agents.push([agentId, pair.privateKey]);
  }
  const file = join(tmp, 'agents.json');
  writeFileSync(file, JSON.stringify(agents));
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    for (let at = 0; at < MAX_N; at += 5_000) {
      const s = (a) => a.slice(at, at + 5_000);
      await db.query(
        `INSERT INTO schools (id, urn, la_estab, name, mis_type, updated_at)
         SELECT id, urn, '873/' || right(urn, 4), 'Bench School ' || urn, 'DEMO_SQLITE', now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, urn)`,
        [s(rows.schools), s(rows.urns)],
      );
      await db.query(
        `INSERT INTO agents (id, school_id, public_key, status, version, os, mis_kind)
         SELECT id, school_id, public_key, 'ACTIVE', '0.1.0', 'linux x64', 'DEMO_SQLITE'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(id, school_id, public_key)`,
        [s(rows.agentIds), s(rows.schools), s(rows.keys)],
      );
    }
    const { rows: n } = await db.query(`SELECT count(DISTINCT public_key)::int AS n FROM agents`);
    log(`enrolled ${n[0].n} agents with distinct public keys`);
  } finally {
    await db.end();
  }
  return file;
}

// ─── measurements ────────────────────────────────────────────────────────────

function redisPid() {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'redis-server') return Number(d);
    } catch {}
  }
  return null;
}

async function pgBackendPids() {
  const { rows } = await admin.query(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [dbName],
  );
  return rows.map((r) => r.pid);
}

/** CPU seconds of the server process, its PostgreSQL backends and redis-server over `seconds`. */
async function cpuWindow(serverPid, seconds, clients) {
  const pgBefore = new Map((await pgBackendPids()).map((p) => [p, cpuTicks(p)]));
  const rPid = redisPid();
  const before = { server: cpuTicks(serverPid), pg: 0, redis: rPid ? cpuTicks(rPid) : 0 };
  const hb0 = await Promise.all(clients.map((c) => c.call('counters')));
  const load0 = loadavg()[0];
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const after = { server: cpuTicks(serverPid), pg: 0, redis: rPid ? cpuTicks(rPid) : 0 };
  // Backends that lived through the window count their difference; new ones (the pool reconnects
  // after idling) count whole; ones that ended during the window are lost (a small undercount).
  const pgAfter = await pgBackendPids();
  for (const p of pgAfter) after.pg += (cpuTicks(p) ?? 0) - (pgBefore.get(p) ?? 0);
  const hb1 = await Promise.all(clients.map((c) => c.call('counters')));
  const pct = (k) => ((after[k] - before[k]) / CLK_TCK / elapsed) * 100;
  const total = (list, k) => list.reduce((a, c) => a + c[k], 0);
  return {
    seconds: elapsed,
    serverPct: pct('server'),
    pgPct: pct('pg'),
    redisPct: pct('redis'),
    pgBackends: pgAfter.length,
    heartbeatsPerSecond: (total(hb1, 'heartbeatsSent') - total(hb0, 'heartbeatsSent')) / elapsed,
    acksPerSecond: (total(hb1, 'acks') - total(hb0, 'acks')) / elapsed,
    loadavg1: [load0, loadavg()[0]],
  };
}

/**
 * RSS after a full GC, once it has settled. V8 shrinks an over-grown heap only some seconds after
 * the process goes quiet (the control plane drops ≈ 30 MB of start-up heap ≈ 7 s after it starts),
 * and malloc hands pages back lazily, so one reading right after a GC can be tens of MB off. GC every
 * second for at least 8 s, then until the last three readings are within 512 kB (at most 20 s).
 */
async function rss(server) {
  const samples = [];
  for (let i = 0; i < 20; i++) {
    await server.call('gc');
    await sleep(1_000);
    samples.push(statusKb(server.child.pid, 'VmRSS'));
    const last = samples.slice(-3);
    if (samples.length >= 8 && Math.max(...last) - Math.min(...last) < 512) break;
  }
  const { memory, connections } = await server.call('stats');
  // V8 keeps heap it has grown into even after a full GC (it shrinks it only once the process is
  // idle), so RSS also moves with heap sizing that does not depend on the number of agents. RSS less
  // that free heap is a steadier second reading.
  const liveKb = samples.at(-1) - (memory.heapTotal - memory.heapUsed) / 1024;
  return { rssKb: samples.at(-1), liveKb, samples, memory, connections };
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

// ─── one server: bare anchor or gateway ──────────────────────────────────────

async function phase(kind, agentsFile) {
  const isGateway = kind === 'gateway';
  const server = isGateway
    ? start('cloud-server.mjs', [], {
        gc: true,
        name: 'cloud',
        env: {
          NODE_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: '0',
          DATABASE_URL: dbUrl,
          REDIS_URL: opts['redis-url'],
          REDIS_PREFIX: redisPrefix,
          KEYSTAGE_ROLES: 'api,gateway,worker',
          KEYSTAGE_SECRET: `bench-gateway-secret-${tag}`.padEnd(48, 'x'),
          LOG_LEVEL: 'warn',
          AGENT_HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS),
        },
      })
    : start('bare-server.mjs', [], { gc: true, name: 'bare' });
  const out = { kind, sizes: {} };
  const clients = [];
  try {
    const { url } = await server.ready;
    const wsUrl = isGateway ? `${url.replace(/^http/, 'ws')}/agent` : url;
    const pid = server.child.pid;
    log(`${kind}: pid ${pid}, ${wsUrl}`);
    await sleep(3_000);
    out.idle = await cpuWindow(pid, 10, []);
    log(`${kind}: idle CPU (no agents) ${out.idle.serverPct.toFixed(2)}% of a core`);

    // Warm-up: load and compile every path once (handshake, heartbeat, dispatch) so one-time costs
    // are not counted per agent; then disconnect and take the baseline.
    const warm = start('clients.mjs', [kind, wsUrl, agentsFile, String(INTERVAL_MS)], { name: 'warm-up' });
    await warm.ready;
    const w = await warm.call('connect', { from: 0, to: 200, inFlight: 50 });
    if (w.ok !== 200)
      throw new Error(`warm-up: only ${w.ok}/200 connected: ${JSON.stringify(await warm.call('counters'))}`);
    await sleep(2_000);
    await server.call(
      'dispatch',
      isGateway
        ? { count: 200, concurrency: CONCURRENCY, sqlLength: SQL_LENGTH }
        : { count: 200, concurrency: CONCURRENCY, bytes: PUSH_PAD },
    );
    if (isGateway) {
      // The simulated fleet shares nothing with the gateway but its enrolled public keys: prove the
      // gateway verifies each challenge signature (agent MAX_N-1 signing with agent 0's key).
      const check = await warm.call('wrongKey', { index: MAX_N - 1, otherIndex: 0 });
      out.signatureCheck = check.refused;
      if (check.refused !== 'auth.failed') throw new Error(`a wrong key was not refused: ${check.refused}`);
      log(`${kind}: a challenge signed with another agent's key is refused (auth.failed)`);
    }
    await warm.call('closeAll');
    await stopChild(warm, null);
    await waitFor(
      'warm-up sockets to close',
      async () => (await server.call('stats')).connections === 0,
      30_000,
    );
    await sleep(2_000);
    out.baseline = await rss(server);
    log(
      `${kind}: baseline RSS ${(out.baseline.rssKb / 1024).toFixed(1)} MB (readings ${mb(out.baseline.samples)})`,
    );

    for (const name of ['A', 'B']) {
      const c = start('clients.mjs', [kind, wsUrl, agentsFile, String(INTERVAL_MS)], {
        name: `clients-${name}`,
      });
      await c.ready;
      clients.push(c);
    }
    let connected = 0;
    for (const n of SIZES) {
      const half = n / 2;
      const from = connected / 2;
      const t0 = performance.now();
      const [a, b] = await Promise.all([
        clients[0].call('connect', { from, to: half }, 300_000),
        clients[1].call('connect', { from: HALF + from, to: HALF + half }, 300_000),
      ]);
      const connectSeconds = (performance.now() - t0) / 1000;
      if (a.failed + b.failed > 0) {
        const counters = await Promise.all(clients.map((c) => c.call('counters')));
        throw new Error(`${kind}: ${a.failed + b.failed} connections failed: ${JSON.stringify(counters)}`);
      }
      connected = n;
      await waitFor(
        `${n} connections on the server`,
        async () => (await server.call('stats')).connections === n,
        30_000,
      );
      log(`${kind}: ${n} agents connected (+${n - from * 2} in ${connectSeconds.toFixed(1)} s)`);
      await sleep(5_000);
      const cpu = await cpuWindow(pid, WINDOW_S, clients);
      const rssNoGc = statusKb(pid, 'VmRSS');
      log(
        `${kind}: ${n} agents, ${cpu.heartbeatsPerSecond.toFixed(0)} heartbeats/s: server ${cpu.serverPct.toFixed(2)}% of a core`,
      );
      const mem = await rss(server);
      if (mem.connections !== n) throw new Error(`${kind}: ${mem.connections} connections, expected ${n}`);
      const perAgentKb = (mem.rssKb - out.baseline.rssKb) / n;
      log(
        `${kind}: RSS ${(mem.rssKb / 1024).toFixed(1)} MB → ${perAgentKb.toFixed(2)} KB per agent (readings ${mb(mem.samples)})`,
      );
      out.sizes[n] = {
        connectSeconds,
        cpu,
        rssKb: mem.rssKb,
        rssNoGcKb: rssNoGc,
        perAgentKb,
        livePerAgentKb: (mem.liveKb - out.baseline.liveKb) / n,
        perAgentNoGcKb: (rssNoGc - out.baseline.rssKb) / n,
        memory: mem.memory,
        heapPerAgentBytes: (mem.memory.heapUsed - out.baseline.memory.heapUsed) / n,
        externalPerAgentBytes:
          (mem.memory.external +
            mem.memory.arrayBuffers -
            out.baseline.memory.external -
            out.baseline.memory.arrayBuffers) /
          n,
      };
    }

    out.dispatches = {};
    for (const concurrency of CONCURRENCIES) {
      const d = await server.call(
        'dispatch',
        isGateway
          ? { count: DISPATCHES, concurrency, sqlLength: SQL_LENGTH }
          : { count: DISPATCHES, concurrency, bytes: PUSH_PAD },
        120_000,
      );
      const counters = await Promise.all(clients.map((c) => c.call('counters')));
      d.frameBytes = Math.max(...counters.map((c) => (isGateway ? c.offerBytes : c.pushBytes)));
      out.dispatches[concurrency] = d;
      out.clientCounters = counters;
      log(
        `${kind}: ${DISPATCHES} dispatches, ${concurrency} in flight, ${connected} agents: p50 ${d.p50.toFixed(2)} / p95 ${d.p95.toFixed(2)} / p99 ${d.p99.toFixed(2)} ms (frame ${d.frameBytes} B, ${d.timeouts} timeouts)`,
      );
    }
    out.dispatch = out.dispatches[CONCURRENCY];

    if (isGateway && opts['profile-dir']) {
      // Not part of the measurements above (the profiler costs CPU): where the time goes.
      const dir = opts['profile-dir'];
      await server.call(
        'profile',
        { seconds: WINDOW_S, file: join(dir, `gateway-heartbeats-${connected}.cpuprofile`) },
        120_000,
      );
      await server.call(
        'profile',
        {
          file: join(dir, 'gateway-dispatch.cpuprofile'),
          dispatchArgs: { count: DISPATCHES, concurrency: CONCURRENCY, sqlLength: SQL_LENGTH },
        },
        120_000,
      );
      log(`gateway: CPU profiles written to ${dir}`);
    }

    if (isGateway) out.agent = await agentIdle(server, url);
    for (const c of clients) await c.call('closeAll').catch(() => undefined);
    return out;
  } catch (err) {
    process.stderr.write(`--- ${server.name} output (tail) ---\n${server.tail()}\n`);
    for (const c of clients) process.stderr.write(`--- ${c.name} (tail) ---\n${c.tail()}\n`);
    throw err;
  } finally {
    for (const c of clients) await stopChild(c, null);
    await stopChild(server);
  }
}

// ─── the real agent, idle ────────────────────────────────────────────────────

function runAgent(args, timeoutMs) {
  const child = spawn(process.execPath, [join(ROOT, 'apps/agent/dist/cli.js'), ...args], {
    env: { PATH: process.env.PATH, HOME: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  exited.then(() => clearTimeout(timer));
  return { child, exited, output: () => output };
}

async function agentIdle(server, url) {
  const { token } = await server.call('enrolmentToken');
  const dataDir = join(tmp, 'agent', 'data');
  const enrol = runAgent(
    ['--data-dir', dataDir, 'enrol', '--url', url, '--token', token, '--mis-kind', 'DEMO_SQLITE'],
    30_000,
  );
  if ((await enrol.exited) !== 0) throw new Error(`agent enrol failed:\n${enrol.output()}`);
  const run = runAgent(['--data-dir', dataDir, 'run'], (AGENT_IDLE_S + 40) * 1000);
  await waitFor('the agent to authenticate', async () => /"authenticated"/.test(run.output()), 30_000);
  log(`agent: enrolled and connected (pid ${run.child.pid}); idle for ${AGENT_IDLE_S} s`);
  await sleep(AGENT_IDLE_S * 1000);
  const result = {
    rssKb: statusKb(run.child.pid, 'VmRSS'),
    hwmKb: statusKb(run.child.pid, 'VmHWM'),
    connectedLines: (run.output().match(/"authenticated"/g) ?? []).length,
  };
  run.child.kill('SIGINT');
  if (!(await Promise.race([run.exited.then(() => true), sleep(5_000).then(() => false)])))
    run.child.kill('SIGKILL');

  // Anchor: an empty Node process on the same runtime.
  const bare = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  children.add(bare);
  bare.once('exit', () => children.delete(bare));
  await sleep(2_000);
  result.bareNodeRssKb = statusKb(bare.pid, 'VmRSS');
  bare.kill('SIGKILL');
  log(
    `agent: idle RSS ${(result.rssKb / 1024).toFixed(1)} MB (an empty node process: ${(result.bareNodeRssKb / 1024).toFixed(1)} MB)`,
  );
  return result;
}

// ─── report ──────────────────────────────────────────────────────────────────

function table(results) {
  const g = results.gateway;
  const b = results.bare;
  const rows = [];
  const row = (what, value, anchor, unit, target, met, digits = 2) => {
    const ratio = anchor ? value / anchor : Number.NaN;
    rows.push([
      what,
      `${value.toFixed(digits)} ${unit}`,
      anchor === undefined ? '—' : `${anchor.toFixed(digits)} ${unit}`,
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—',
      target,
      met === undefined ? '—' : met ? 'met' : 'NOT met',
    ]);
  };
  for (const n of SIZES) {
    if (!g?.sizes[n] || !b?.sizes[n]) continue;
    const gm = g.sizes[n].perAgentKb;
    const bm = b.sizes[n].perAgentKb;
    row(`RSS per agent, ${n} agents`, gm, bm, 'KB', '≤ 2× anchor', gm <= 2 * bm);
  }
  for (const n of SIZES) {
    if (!g?.sizes[n] || !b?.sizes[n]) continue;
    // Informative: live JS objects per connection (after GC), the steadiest memory reading.
    const gh = g.sizes[n].heapPerAgentBytes / 1024;
    const bh = b.sizes[n].heapPerAgentBytes / 1024;
    row(`JS heap per agent, ${n} agents`, gh, bh, 'KB', '—', undefined);
  }
  for (let i = 1; i < SIZES.length; i++) {
    const [lo, hi] = [SIZES[i - 1], SIZES[i]];
    if (!g?.sizes[hi] || !b?.sizes[hi]) continue;
    const marginal = (r) => (r.sizes[hi].rssKb - r.sizes[lo].rssKb) / (hi - lo);
    row(
      `RSS per agent, marginal ${lo}→${hi}`,
      marginal(g),
      marginal(b),
      'KB',
      '≤ 2× anchor',
      marginal(g) <= 2 * marginal(b),
    );
  }
  for (const n of SIZES) {
    if (!g?.sizes[n] || !b?.sizes[n]) continue;
    const gc = g.sizes[n].cpu.serverPct;
    const bc = b.sizes[n].cpu.serverPct;
    row(`Heartbeat CPU, ${n} agents (% of a core)`, gc, bc, '%', '≤ 2× anchor', gc <= 2 * bc);
  }
  for (const c of CONCURRENCIES) {
    const gd = g?.dispatches?.[c];
    const bd = b?.dispatches?.[c];
    if (!gd || !bd) continue;
    for (const p of ['p50', 'p95', 'p99']) {
      row(
        `Dispatch ${p}, ${c} in flight, ${MAX_N} agents`,
        gd[p],
        bd[p],
        'ms',
        p === 'p99' ? '≤ 10 ms' : '—',
        p === 'p99' ? gd.p99 <= 10 : undefined,
      );
    }
  }
  if (g?.agent) {
    row(
      'Agent idle RSS',
      g.agent.rssKb / 1024,
      g.agent.bareNodeRssKb / 1024,
      'MB',
      '< 60 MB',
      g.agent.rssKb / 1024 < 60,
      1,
    );
  }
  const head = ['Measure', 'Gateway / agent', 'Anchor', 'Ratio', 'Target', 'Result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function details(results) {
  const lines = [];
  for (const kind of TARGETS) {
    const r = results[kind];
    if (!r) continue;
    lines.push(
      `${kind}: idle CPU with no agents ${r.idle.serverPct.toFixed(2)}% of a core; baseline RSS ${(r.baseline.rssKb / 1024).toFixed(1)} MB ` +
        `(V8 heap ${(r.baseline.memory.heapUsed / 1048576).toFixed(1)} MB used of ${(r.baseline.memory.heapTotal / 1048576).toFixed(1)} MB)`,
    );
    for (let i = 1; i < SIZES.length; i++) {
      const lo = r.sizes[SIZES[i - 1]];
      const hi = r.sizes[SIZES[i]];
      if (!lo || !hi) continue;
      lines.push(
        `  marginal RSS from ${SIZES[i - 1]} to ${SIZES[i]} agents: ${((hi.rssKb - lo.rssKb) / (SIZES[i] - SIZES[i - 1])).toFixed(2)} KB/agent after GC, ` +
          `${((hi.rssNoGcKb - lo.rssNoGcKb) / (SIZES[i] - SIZES[i - 1])).toFixed(2)} KB/agent before GC`,
      );
    }
    for (const n of SIZES) {
      const s = r.sizes[n];
      if (!s) continue;
      lines.push(
        `  ${n} agents: connect ${s.connectSeconds.toFixed(1)} s; RSS ${(s.rssKb / 1024).toFixed(1)} MB after GC (${s.perAgentKb.toFixed(2)} KB/agent), ` +
          `${(s.rssNoGcKb / 1024).toFixed(1)} MB before GC (${s.perAgentNoGcKb.toFixed(2)} KB/agent); ` +
          `RSS less V8 free heap ${s.livePerAgentKb.toFixed(2)} KB/agent; ` +
          `V8 heap ${(s.memory.heapUsed / 1048576).toFixed(1)} MB used of ${(s.memory.heapTotal / 1048576).toFixed(1)} MB; JS heap ${(s.heapPerAgentBytes / 1024).toFixed(2)} KB/agent, ` +
          `external+arrayBuffers ${(s.externalPerAgentBytes / 1024).toFixed(2)} KB/agent`,
      );
      lines.push(
        `    heartbeats ${s.cpu.heartbeatsPerSecond.toFixed(0)}/s sent, ${s.cpu.acksPerSecond.toFixed(0)}/s acked; server ${s.cpu.serverPct.toFixed(2)}% ` +
          `(net of idle ${(s.cpu.serverPct - r.idle.serverPct).toFixed(2)}%); its PostgreSQL backends (${s.cpu.pgBackends}) ${s.cpu.pgPct.toFixed(2)}%; ` +
          `redis-server (shared) ${s.cpu.redisPct.toFixed(2)}%; load average ${s.cpu.loadavg1.map((x) => x.toFixed(2)).join(' → ')}`,
      );
    }
    for (const [c, d] of Object.entries(r.dispatches ?? {})) {
      lines.push(
        `  dispatch, ${c} in flight: ${d.count} answered, ${d.timeouts} timeouts, ${d.seconds.toFixed(1)} s; frame ${d.frameBytes} B; max ${d.max.toFixed(2)} ms` +
          (d.offerJobReturned
            ? `; offerJob() itself returned after p50 ${d.offerJobReturned.p50.toFixed(2)} / p99 ${d.offerJobReturned.p99.toFixed(2)} ms`
            : ''),
      );
    }
    if (r.agent) {
      lines.push(
        `  agent: idle RSS ${(r.agent.rssKb / 1024).toFixed(1)} MB (peak ${(r.agent.hwmKb / 1024).toFixed(1)} MB); empty node process ${(r.agent.bareNodeRssKb / 1024).toFixed(1)} MB`,
      );
    }
    if (r.signatureCheck)
      lines.push(`  a challenge signed with another agent's key: refused (${r.signatureCheck})`);
  }
  return lines.join('\n');
}

// ─── main ────────────────────────────────────────────────────────────────────

async function cleanup() {
  for (const c of [...children]) c.kill('SIGKILL');
  try {
    await dropDatabase(dbUrl);
  } catch (err) {
    log(`could not drop ${dbName}: ${err.message}`);
  }
  try {
    const redis = new Redis(opts['redis-url'], { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    let cursor = '0';
    let removed = 0;
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      if (keys.length) removed += await redis.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    redis.disconnect();
    log(`removed ${removed} Redis keys under ${redisPrefix}`);
  } catch (err) {
    log(`could not clean Redis: ${err.message}`);
  }
  await admin?.end().catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}

const guard = setTimeout(async () => {
  log(`the benchmark exceeded ${HARD_LIMIT_MS / 60_000} minutes: stopping`);
  await cleanup();
  process.exit(1);
}, HARD_LIMIT_MS);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    log(`${signal}: stopping and cleaning up`);
    clearTimeout(guard);
    await cleanup();
    process.exit(130);
  });
}

let exitCode = 0;
const started = Date.now();
const loadAtStart = loadavg()[0];
try {
  admin = new pg.Client({ connectionString: opts['pg-server'] });
  await admin.connect();
  const agentsFile = await setupDatabase();
  const results = {};
  for (const kind of TARGETS) results[kind] = await phase(kind, agentsFile);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
  const report = [
    '',
    `Gateway benchmark — ${new Date().toISOString()} — ${machine}`,
    `load average (1 min) at start ${loadAtStart.toFixed(2)}, at end ${loadavg()[0].toFixed(2)} (the machine may be shared)`,
    `sizes ${SIZES.join(', ')}; heartbeat every ${INTERVAL_MS / 1000} s per agent, CPU window ${WINDOW_S} s; ${DISPATCHES} dispatches at ${CONCURRENCIES.join(' and ')} in flight`,
    '',
    table(results),
    '',
    details(results),
    '',
    `total ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ].join('\n');
  process.stdout.write(`${report}\n`);
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ machine, results }, null, 2));
} catch (err) {
  process.stderr.write(`bench/gateway: ${err.stack ?? err}\n`);
  exitCode = 1;
} finally {
  clearTimeout(guard);
  await cleanup();
}
process.exit(exitCode);
