#!/usr/bin/env node
/**
 * Benchmark: generate a demo MIS preset (default `large`: 2,000 pupils, 3 years, ≈2.3 M
 * session marks) into SQLite and into PostgreSQL, each in its own child process so that
 * the peak RSS is per target. Optionally MariaDB too.
 *
 *   pnpm --filter @keystage/demo-mis run build
 *   node bench/demo-mis.mjs [--preset large] [--seed 1] [--targets sqlite,postgres[,mysql]]
 *                           [--pg-server postgres://postgres@127.0.0.1:5432/postgres]
 *                           [--mysql-server mysql://root@127.0.0.1:3306]
 *
 * Target (issue 3): under 60 s and under 1 GiB peak RSS per target on a 2-core machine.
 * The database servers' own memory is not counted: only the generating process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'packages/demo-mis/dist/index.js');

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'large' },
    seed: { type: 'string', default: '1' },
    targets: { type: 'string', default: 'sqlite,postgres' },
    'pg-server': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    'mysql-server': { type: 'string', default: 'mysql://root@127.0.0.1:3306' },
    child: { type: 'string' },
    url: { type: 'string' },
  },
});

const LIMIT_SECONDS = 60;
const LIMIT_BYTES = 1024 ** 3;

function fail(message) {
  process.stderr.write(`bench/demo-mis: ${message}\n`);
  process.exit(1);
}

async function child(target) {
  const { generate } = await import(pathToFileURL(dist).href);
  const started = performance.now();
  const targets =
    target === 'sqlite'
      ? { sqlite: values.url }
      : target === 'postgres'
        ? { postgres: values.url }
        : { mysql: values.url };
  const result = await generate({ preset: values.preset, seed: Number(values.seed), targets });
  const seconds = (performance.now() - started) / 1000;
  const report = {
    target,
    rows: result.totalRows,
    marks: result.counts.att_mark_normalised,
    seconds,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    fileBytes: target === 'sqlite' ? statSync(values.url).size : null,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

async function withPgDatabase(name, fn) {
  const { default: pg } = await import(
    pathToFileURL(join(root, 'packages/demo-mis/node_modules/pg/lib/index.js')).href
  );
  const admin = new pg.Client({ connectionString: values['pg-server'] });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(values['pg-server']);
  url.pathname = `/${name}`;
  try {
    return fn(url.toString());
  } finally {
    const c = new pg.Client({ connectionString: values['pg-server'] });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

function runChild(target, url) {
  const r = spawnSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--child',
      target,
      '--url',
      url,
      '--preset',
      values.preset,
      '--seed',
      values.seed,
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  if (r.status !== 0) fail(`${target} run failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function main() {
  if (!existsSync(dist)) fail('build first: pnpm --filter @keystage/demo-mis run build');
  if (values.child) {
    await child(values.child);
    return;
  }
  const results = [];
  for (const target of values.targets.split(',').map((t) => t.trim())) {
    if (target === 'sqlite') {
      const file = join(tmpdir(), `keystage-bench-demo-mis-${process.pid}.sqlite`);
      try {
        results.push(runChild('sqlite', file));
      } finally {
        rmSync(file, { force: true });
      }
    } else if (target === 'postgres') {
      results.push(await withPgDatabase('keystage_bench_demo_mis', (url) => runChild('postgres', url)));
    } else if (target === 'mysql') {
      const url = `${values['mysql-server'].replace(/\/$/, '')}/keystage_bench_demo_mis`;
      results.push(runChild('mysql', url));
      const { default: mysql } = await import(
        pathToFileURL(join(root, 'packages/demo-mis/node_modules/mysql2/promise.js')).href
      );
      const u = new URL(url);
      const c = await mysql.createConnection({
        host: u.hostname,
        port: Number(u.port || 3306),
        user: u.username || 'root',
      });
      await c.query('DROP DATABASE IF EXISTS keystage_bench_demo_mis');
      await c.end();
    } else {
      fail(`unknown target ${target} (sqlite, postgres, mysql)`);
    }
  }
  const mib = (b) => `${(b / 1024 ** 2).toFixed(0)} MiB`;
  const out = (s) => process.stdout.write(`${s}\n`);
  out(
    `demo-mis bench: preset ${values.preset}, seed ${values.seed}, node ${process.version}, ${cpus().length} cores, ${mib(totalmem())} RAM`,
  );
  out('| target | rows | session marks | time | peak RSS | file | within 60 s / 1 GiB |');
  out('|---|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const ok = r.seconds < LIMIT_SECONDS && r.peakRssBytes < LIMIT_BYTES;
    out(
      `| ${r.target} | ${r.rows.toLocaleString('en-GB')} | ${r.marks.toLocaleString('en-GB')} | ${r.seconds.toFixed(1)} s | ${mib(r.peakRssBytes)} | ${r.fileBytes === null ? '–' : mib(r.fileBytes)} | ${ok ? 'yes' : 'NO'} |`,
    );
  }
}

main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
