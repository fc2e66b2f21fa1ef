// End-to-end throughput of the pipeline: a 1,000,000-row attendance extract read from PostgreSQL by
// a real agent process, streamed (compressed, encrypted, credit-controlled) to the control plane,
// stored, decoded, verified and diffed; beside the anchor, the same rows read with the bare `pg`
// driver through a cursor with the same type parsing (dates and timestamps stay strings). Then a
// rerun with no change: bytes sent agent → cloud and time.
//
//   pnpm build && node bench/pipeline/run.mjs [rows]
//
// Needs PostgreSQL and Redis (local defaults). Creates and drops its own databases.
//
// BENCH_REPEATS=n   full loads to measure, each right after its own anchor (default 3)
// BENCH_WARMUP=0    no unmeasured warm-up full load before them
// BENCH_THREADS=1   CPU seconds per thread of the control plane and the agent, per run
// BENCH_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=…'   extra node flags for the agent
// BENCH_MARKS=1     prints each run's start and end on the V8 profiler's clock (µs), to cut a
//                   `node --cpu-prof` profile of this process to one run
// BENCH_LOG=info    the control plane's and the agent's logs
//
// This process hosts the control plane and re-runs itself with the control plane's Node.js flags
// (`start` in apps/cloud/package.json); the agent gets the flags docs/school-guide.md recommends.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

// The control plane runs in this process: give it the Node.js flags it is started with in
// production (`start` of apps/cloud/package.json, the same as the Dockerfile's CMD and `pnpm demo`),
// re-running this script with them if they are missing. The anchor runs here too, with the same.
const CONTROL_PLANE_FLAGS = JSON.parse(readFileSync(join(ROOT, 'apps/cloud/package.json'), 'utf8'))
  .scripts.start.split(/\s+/)
  .filter((word) => word.startsWith('--'));
if (!CONTROL_PLANE_FLAGS.every((flag) => process.execArgv.includes(flag))) {
  const again = spawnSync(
    process.execPath,
    [...process.execArgv, ...CONTROL_PLANE_FLAGS, import.meta.filename, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(again.status ?? 1);
}
const ROWS = Number(process.argv[2] ?? 1_000_000);
/** Full loads to measure, each beside its own anchor (BENCH_REPEATS, default 3). */
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
/** One unmeasured full load first (BENCH_WARMUP=0: none). */
const WARMUP = process.env.BENCH_WARMUP !== '0';
const SERVER = process.env.BENCH_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const stamp = `${process.pid}`;
const misDb = `ks_bench_mis_${stamp}`;
const cloudDb = `ks_bench_cloud_${stamp}`;
const work = mkdtempSync(join(tmpdir(), 'ks-bench-pipeline-'));

const { applyMigrations, createDatabase, dropDatabase, withDatabase } = await import(
  join(ROOT, 'packages/db/dist/migrator.js')
);
const requireMis = createRequire(join(ROOT, 'packages/mis-connectors/package.json'));
const pg = requireMis('pg');
const Cursor = requireMis('pg-cursor');
const { pgTypeParsers } = await import(
  join(ROOT, 'packages/mis-connectors/dist/postgres/postgres.connector.js')
);

const misUrl = withDatabase(SERVER, misDb);
const cloudUrl = withDatabase(SERVER, cloudDb);

const EXTRACT = `keystage: extract/v1
name: bench-attendance
description: Every attendance mark (benchmark).
mis: POSTGRES
datasets:
  - name: marks
    description: Session marks.
    key: [pupil_id, mark_date, period]
    columns:
      - { name: pupil_id, type: integer, description: Pupil, category: identity }
      - { name: mark_date, type: date, description: Day, category: education }
      - { name: period, type: string, description: AM or PM, category: education }
      - { name: code, type: string, description: Attendance code, category: education }
      - { name: minutes_late, type: integer, nullable: true, description: Minutes late, category: education }
      - { name: recorded_at, type: timestamp, description: When it was recorded, category: none }
      - { name: comment, type: string, nullable: true, description: Comment, category: education }
    sql: |
      SELECT pupil_id, mark_date, period, code, minutes_late, recorded_at, comment
        FROM marks
       ORDER BY pupil_id, mark_date, period
delivery: { format: ndjson, target: pull }
`;

const log = (...a) => process.stdout.write(`${a.join(' ')}\n`);
const { createMessage, encodeMessage } = await import(join(ROOT, 'packages/protocol/dist/index.js'));
/** Bytes of one `chunk.reuse` frame, as the agent sends it. */
const REUSE_FRAME_BYTES = Buffer.byteLength(
  encodeMessage(
    createMessage('chunk.reuse', {
      runId: '00000000-0000-4000-8000-000000000000',
      seq: 123,
      byteLength: 65_536,
      plainSha256: 'f'.repeat(64),
    }),
  ),
);
/** CPU seconds used so far by a process (user + system), from /proc (in USER_HZ, 100 on Linux). */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}
/** CPU seconds per thread name of a process (BENCH_THREADS=1). */
function threadsOf(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      out[`${comm}#${tid}`] = (Number(f[11]) + Number(f[12])) / 100;
    } catch {}
  }
  return out;
}
function threadDiff(a, b) {
  const by = {};
  for (const [k, v] of Object.entries(b)) {
    by[k] = (by[k] ?? 0) + v - (a[k] ?? 0);
  }
  return Object.entries(by)
    .filter(([, v]) => v > 0.02)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
}
/**
 * CPU seconds used so far by PostgreSQL server processes: the MIS's and the control plane's own
 * database (one server here), so the gateway's statements count here too. A backend that ends
 * (the agent's connection closes with its job) keeps the figure it last had: each process seen
 * is remembered, so sampling often (the run's poll does, every 50 ms) loses at most the last
 * 50 ms of one that ends.
 */
const postgresSeen = new Map();
function postgresCpu() {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres')
        postgresSeen.set(pid, Math.max(postgresSeen.get(pid) ?? 0, cpuOf(pid)));
    } catch {}
  }
  let total = 0;
  for (const cpu of postgresSeen.values()) total += cpu;
  return total;
}
const rss = () => `${Math.round(process.memoryUsage().rss / 1e6)} MB`;

async function setupMis() {
  await createDatabase(misUrl, { replace: true });
  const client = new pg.Client({ connectionString: misUrl });
  await client.connect();
  const pupils = Math.ceil(ROWS / 380);
  await client.query(`CREATE TABLE marks (
    pupil_id int NOT NULL, mark_date date NOT NULL, period char(2) NOT NULL, code char(1) NOT NULL,
    minutes_late int, recorded_at timestamptz NOT NULL, comment text,
    PRIMARY KEY (pupil_id, mark_date, period))`);
  await client.query(
    `INSERT INTO marks
     SELECT p, DATE '2025-09-01' + (d / 2), CASE WHEN d % 2 = 0 THEN 'AM' ELSE 'PM' END,
            (ARRAY['/','\\','L','N','M','I'])[1 + (p * 7 + d) % 6],
            CASE WHEN (p + d) % 17 = 0 THEN (p + d) % 30 ELSE NULL END,
            TIMESTAMPTZ '2025-09-01 08:40:00+00' + make_interval(days => d / 2, mins => p % 50),
            CASE WHEN (p + d) % 41 = 0 THEN 'parent phoned: ' || p ELSE NULL END
       FROM generate_series(1, $1::int) p, generate_series(0, 379) d
      LIMIT $2`,
    [pupils, ROWS],
  );
  // Settle the table (hint bits, visibility map, dirty buffers) so neither side pays for the load.
  await client.query('VACUUM (FREEZE, ANALYZE) marks');
  await client.query('CHECKPOINT');
  await client.end();
}

/** One bare-driver read of the whole result through a cursor, `batch` rows per fetch. */
async function anchorOnce(batch) {
  const client = new pg.Client({ connectionString: misUrl, types: pgTypeParsers(pg.types) });
  await client.connect();
  const t0 = performance.now();
  const cursor = client.query(
    new Cursor(
      'SELECT pupil_id, mark_date, period, code, minutes_late, recorded_at, comment FROM marks ORDER BY pupil_id, mark_date, period',
      [],
      { rowMode: 'array', types: pgTypeParsers(pg.types) },
    ),
  );
  let n = 0;
  for (;;) {
    const rows = await cursor.read(batch);
    if (rows.length === 0) break;
    n += rows.length;
  }
  const ms = performance.now() - t0;
  await cursor.close();
  await client.end();
  return { n, ms, batch };
}

/**
 * The anchor: the fastest of three bare reads, with the driver's default-sized fetches (500) and
 * with the agent's (2,000) — whichever the machine favours, so the agent's own tuning is not counted
 * as pipeline speed.
 */
async function anchor() {
  const reads = [];
  for (let i = 0; i < 3; i++) reads.push(await anchorOnce(500), await anchorOnce(2000));
  const best = reads.reduce((a, b) => (a.ms < b.ms ? a : b));
  return { ...best, rate: best.n / (best.ms / 1000) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Runs an agent command (asynchronously: the control plane lives in this process). */
function agentCli(dataDir, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      join(ROOT, 'apps/agent/dist/cli.js'),
      '--data-dir',
      dataDir,
      ...args,
    ]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (status) => resolve({ status, stderr: out, stdout: out }));
  });
}

async function main() {
  log(`pipeline bench: ${ROWS.toLocaleString('en-GB')} attendance marks; node ${process.version}`);
  const t = performance.now();
  await setupMis();
  log(`  MIS table ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  await createDatabase(cloudUrl, { replace: true });
  await applyMigrations({ databaseUrl: cloudUrl, migrationsDir: join(ROOT, 'prisma/migrations') });
  const { startServer } = await import(join(ROOT, 'apps/cloud/dist/bootstrap.js'));
  const { loadConfig } = await import(join(ROOT, 'apps/cloud/dist/config/config.js'));
  const server = await startServer(
    loadConfig({
      DATABASE_URL: cloudUrl,
      KEYSTAGE_SECRET: 'bench-pipeline-secret-'.padEnd(48, 'b'),
      PORT: '0',
      LOG_LEVEL: process.env.BENCH_LOG ?? 'warn',
      REDIS_PREFIX: `bench-pipeline-${stamp}`,
      OBJECT_STORE_DIR: join(work, 'objects'),
      WORK_DIR: join(work, 'tmp'),
      DELTA_HOLD_SHARE: '1',
      RUN_SWEEP_INTERVAL_MS: '2000',
      RUN_NOW_LIMIT: '100',
    }),
  );
  const mod = async (path, name) => server.app.get((await import(join(ROOT, path)))[name]);
  const prisma = (await mod('apps/cloud/dist/database/prisma.provider.js', 'PrismaProvider')).client;
  const SYSTEM = { type: 'SYSTEM', id: null, requestId: null };
  const school = await prisma.school.create({
    data: { urn: '900001', laEstab: '999/0001', name: 'Bench School', misType: 'POSTGRES' },
  });
  const partner = await prisma.partner.create({ data: { slug: 'bench', name: 'Bench' } });
  const version = await (
    await mod('apps/cloud/dist/extracts/extracts.service.js', 'ExtractsService')
  ).publish(partner.id, EXTRACT, SYSTEM);
  const agreements = await mod('apps/cloud/dist/agreements/agreements.service.js', 'AgreementsService');
  const asked = await agreements.request(
    partner.id,
    {
      schoolId: school.id,
      extractVersionIds: [version.id],
      purpose: 'bench',
      lawfulBasis: 'public_task',
      retentionDays: 1,
    },
    SYSTEM,
  );
  await agreements.approve(school.id, asked.id, 'bench', SYSTEM);
  const { token } = await (
    await mod('apps/cloud/dist/agents/agents.service.js', 'AgentsService')
  ).createEnrolmentToken(school.id, 1, SYSTEM);
  const dataDir = join(work, 'agent');
  const enrol = await agentCli(dataDir, [
    'enrol',
    '--url',
    server.url,
    '--token',
    token,
    '--mis-kind',
    'POSTGRES',
  ]);
  if (enrol.status !== 0) throw new Error(enrol.stderr);
  const creds = await agentCli(dataDir, [
    'credentials',
    'set',
    '--kind',
    'POSTGRES',
    '--location',
    misUrl,
    '--no-password',
  ]);
  if (creds.status !== 0) throw new Error(creds.stderr || creds.stdout);
  const agent = spawn(
    process.execPath,
    [
      // As docs/school-guide.md recommends for the agent's service.
      '--max-semi-space-size=64',
      '--single-threaded-gc',
      ...(process.env.BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      join(ROOT, 'apps/agent/dist/cli.js'),
      '--data-dir',
      dataDir,
      'run',
    ],
    {
      stdio: ['ignore', process.env.BENCH_LOG ? 'inherit' : 'ignore', 'inherit'],
    },
  );
  const runs = await mod('apps/cloud/dist/runs/runs.service.js', 'RunsService');
  const store = await mod('apps/cloud/dist/results/result-store.js', 'ResultStore');
  await new Promise((r) => setTimeout(r, 1500));

  async function runOnce(label) {
    if (process.env.BENCH_MARKS) log(`    mark ${label.trim()} start ${process.hrtime.bigint() / 1000n}`);
    const cpu0 = { agent: cpuOf(agent.pid), cloud: cpuOf(process.pid), pg: postgresCpu() };
    const threads0 = process.env.BENCH_THREADS ? [threadsOf(process.pid), threadsOf(agent.pid)] : null;
    const started = await runs.runNow(
      partner.id,
      { schoolId: school.id, extractId: version.extractId },
      SYSTEM,
    );
    let run;
    let atUpload = null;
    // Polled with one small query (the runs API reads five tables: polling it would load the
    // control plane being measured).
    for (;;) {
      run = await prisma.run.findUnique({
        where: { id: started.id },
        select: { state: true, uploadedAt: true },
      });
      const pgNow = postgresCpu();
      if (!atUpload && run.uploadedAt) {
        atUpload = { agent: cpuOf(agent.pid), cloud: cpuOf(process.pid), pg: pgNow };
      }
      if (['PROCESSED', 'DELIVERED', 'FAILED', 'MISSED'].includes(run.state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    run = await runs.get(started.id, {});
    if (run.state === 'FAILED' || run.state === 'MISSED')
      throw new Error(`${label}: ${run.state} ${run.errorMessage}`);
    const seconds = (run.processedAt.getTime() - run.dispatchedAt.getTime()) / 1000;
    const upload = (run.uploadedAt.getTime() - run.dispatchedAt.getTime()) / 1000;
    // What crossed agent → cloud for the result: sealed chunk bytes the agent sent, plus one small
    // `chunk.reuse` frame per chunk the control plane took from its own copy (protocol 1.2).
    const sealed = run.datasets.reduce((n, d) => n + (d.byteCount ?? 0), 0);
    const reusedBytes = run.datasets.reduce((n, d) => n + (d.reusedBytes ?? 0), 0);
    const reusedChunks = run.datasets.reduce((n, d) => n + (d.reusedChunks ?? 0), 0);
    const chunks = run.datasets.reduce((n, d) => n + (d.chunkCount ?? 0), 0);
    const bytes = sealed - reusedBytes + reusedChunks * REUSE_FRAME_BYTES;
    const rate = run.rowCount / seconds;
    log(
      `  ${label}: ${run.rowCount.toLocaleString('en-GB')} rows; dispatch → processed ${seconds.toFixed(2)} s ` +
        `(upload ${upload.toFixed(2)} s, ingest+delta ${(seconds - upload).toFixed(2)} s) = ${(rate / 1e6).toFixed(3)} M rows/s; ` +
        `${(bytes / 1e6).toFixed(3)} MB sent agent → cloud (${reusedChunks} of ${chunks} chunks reused); changes +${run.insertCount} ~${run.updateCount} -${run.deleteCount}; cloud RSS ${rss()}`,
    );
    // Where the control plane's processing time went (the run-processed audit entry, written just
    // after the run turns PROCESSED).
    let processed;
    for (let i = 0; i < 50 && !processed; i++) {
      processed = await prisma.auditEvent.findFirst({
        where: { action: 'run.processed', targetId: started.id },
        select: { details: true },
      });
      if (!processed) await new Promise((r) => setTimeout(r, 100));
    }
    if (process.env.BENCH_MARKS) log(`    mark ${label.trim()} end ${process.hrtime.bigint() / 1000n}`);
    const cpu = {
      agent: cpuOf(agent.pid) - cpu0.agent,
      cloud: cpuOf(process.pid) - cpu0.cloud,
      pg: postgresCpu() - cpu0.pg,
    };
    if (atUpload) {
      log(
        `    CPU during the upload (±0.1 s): agent ${(atUpload.agent - cpu0.agent).toFixed(2)} s, control plane ${(atUpload.cloud - cpu0.cloud).toFixed(2)} s, PostgreSQL ${(atUpload.pg - cpu0.pg).toFixed(2)} s`,
      );
    }
    log(
      `    CPU: agent ${cpu.agent.toFixed(2)} s, control plane ${cpu.cloud.toFixed(2)} s, PostgreSQL ${cpu.pg.toFixed(2)} s ` +
        `(${((cpu.agent + cpu.cloud + cpu.pg) / seconds).toFixed(2)} cores busy on average)`,
    );
    if (threads0) {
      log(`    control plane threads: ${threadDiff(threads0[0], threadsOf(process.pid))}`);
      log(`    agent threads: ${threadDiff(threads0[1], threadsOf(agent.pid))}`);
    }
    const timings = processed?.details?.timings;
    const changeSets = await prisma.delivery.findMany({
      where: { runId: started.id },
      select: { byteSize: true, objectKey: true, contentEncoding: true },
    });
    if (timings) {
      const changeBytes = changeSets.reduce((n, d) => n + Number(d.byteSize ?? 0), 0);
      log(
        `    processing: decode ${timings.decodeMs} ms (${processed.details.decodedAhead ?? 0} dataset(s) decoded during the upload), delta ${timings.deltaMs} ms, ` +
          `encode ${timings.encodeMs} ms, store ${timings.storeMs} ms; change set ${
            changeSets.some((d) => d.byteSize === null)
              ? 'kept as its snapshot'
              : `${(changeBytes / 1e6).toFixed(1)} MB`
          }`,
      );
    }
    // A full load's change set is written out when it is read: read it as a partner's pull would
    // (not part of dispatch → processed; shown so that the cost is not hidden).
    for (const d of changeSets.filter((c) => c.contentEncoding === 'snapshot')) {
      const t0 = performance.now();
      let n = 0;
      for await (const part of await store.getContent(school.id, d.objectKey, d.contentEncoding))
        n += part.length;
      log(
        `    change set written out as read: ${(n / 1e6).toFixed(1)} MB of NDJSON in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
      );
    }
    return { rate, seconds, bytes };
  }

  // Full loads, each right after its own anchor (the machine's speed drifts; a pair shares it).
  // Between them the delta state and the chunk digests are dropped, so each is a first load.
  const fulls = [];
  if (WARMUP) {
    // The agent and the control plane are long-lived: one full load first, not measured, so that
    // the measured ones run warm (compiled hot paths), as the anchor's best-of-six reads do.
    await runOnce('warm-up       ');
  }
  for (let i = 0; i < REPEATS; i++) {
    if (i > 0 || WARMUP) {
      await prisma.deltaState.deleteMany({});
      await prisma.runChunk.deleteMany({});
    }
    const a = await anchor();
    log(
      `  anchor: bare pg cursor (same type parsing, best of 3 × fetches of 500 and 2,000): ${(a.rate / 1e6).toFixed(3)} M rows/s (${a.ms.toFixed(0)} ms, fetches of ${a.batch})`,
    );
    const f = await runOnce(`full run ${i + 1}    `);
    fulls.push({ ...f, ratio: f.rate / a.rate });
  }
  /** The median pair: the no-change rerun is compared with it. */
  const full = [...fulls].sort((a, b) => a.ratio - b.ratio)[Math.floor((fulls.length - 1) / 2)];
  const again = await runOnce('no-change run ');
  // 1 % of the marks change (spread over every chunk, as a day's corrections would be).
  const client = new pg.Client({ connectionString: misUrl });
  await client.connect();
  const changed = await client.query(
    `UPDATE marks SET code = CASE code WHEN 'L' THEN 'N' ELSE 'L' END WHERE (pupil_id * 380 + (mark_date - DATE '2025-09-01')) % 100 = 7`,
  );
  await client.end();
  log(`  (updated ${changed.rowCount.toLocaleString('en-GB')} marks in the MIS)`);
  await runOnce('1 % changed   ');
  log('');
  log(
    `  end-to-end vs anchor: median ${(median(fulls.map((f) => f.ratio)) * 100).toFixed(0)} % of ${REPEATS} pairs ` +
      `(${fulls.map((f) => `${(f.ratio * 100).toFixed(0)} %`).join(', ')}; target ≥ 50 %)`,
  );
  log(
    `  no-change rerun: ${((again.bytes / full.bytes) * 100).toFixed(0)} % of the bytes (target ≤ 5 %), ${((again.seconds / full.seconds) * 100).toFixed(0)} % of the time`,
  );
  agent.kill('SIGTERM');
  await server.stop();
}

try {
  await main();
} finally {
  await dropDatabase(cloudUrl).catch(() => undefined);
  await dropDatabase(misUrl).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
