// End-to-end throughput of the pipeline: a 1,000,000-row attendance extract read from PostgreSQL by
// a real agent process, streamed (compressed, encrypted, credit-controlled) to the control plane,
// stored, decoded, verified and diffed; beside the anchor, the same rows read with the bare `pg`
// driver through a cursor with the same type parsing (dates and timestamps stay strings). Then a
// rerun with no change: bytes sent agent → cloud and time.
//
//   pnpm build && node bench/pipeline/run.mjs [rows]
//
// Needs PostgreSQL and Redis (local defaults). Creates and drops its own databases.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const ROWS = Number(process.argv[2] ?? 1_000_000);
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
  await client.query('ANALYZE marks');
  await client.end();
}

async function anchor() {
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
    const rows = await cursor.read(500);
    if (rows.length === 0) break;
    n += rows.length;
  }
  const ms = performance.now() - t0;
  await cursor.close();
  await client.end();
  return { n, ms };
}

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

  // Anchor: bare pg, best of 3.
  const anchors = [];
  for (let i = 0; i < 3; i++) anchors.push(await anchor());
  const best = anchors.reduce((a, b) => (a.ms < b.ms ? a : b));
  const anchorRate = best.n / (best.ms / 1000);
  log(
    `  anchor: bare pg cursor (batch 500, same type parsing): ${(anchorRate / 1e6).toFixed(3)} M rows/s (${best.ms.toFixed(0)} ms)`,
  );

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
    [join(ROOT, 'apps/agent/dist/cli.js'), '--data-dir', dataDir, 'run'],
    {
      stdio: ['ignore', process.env.BENCH_LOG ? 'inherit' : 'ignore', 'inherit'],
    },
  );
  const runs = await mod('apps/cloud/dist/runs/runs.service.js', 'RunsService');
  await new Promise((r) => setTimeout(r, 1500));

  async function runOnce(label) {
    const started = await runs.runNow(
      partner.id,
      { schoolId: school.id, extractId: version.extractId },
      SYSTEM,
    );
    let run;
    for (;;) {
      run = await runs.get(started.id, {});
      if (['PROCESSED', 'DELIVERED', 'FAILED', 'MISSED'].includes(run.state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
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
    const timings = processed?.details?.timings;
    if (timings) {
      log(
        `    processing: decode ${timings.decodeMs} ms, delta ${timings.deltaMs} ms, ` +
          `encode ${timings.encodeMs} ms, store ${timings.storeMs} ms`,
      );
    }
    return { rate, seconds, bytes };
  }

  const full = await runOnce('full run      ');
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
  log(`  end-to-end vs anchor: ${((full.rate / anchorRate) * 100).toFixed(0)} % (target ≥ 50 %)`);
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
