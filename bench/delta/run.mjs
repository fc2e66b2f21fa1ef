#!/usr/bin/env node
// Delta engine benchmark: 1,000,000 attendance marks, next run with 1% changed, 0.1% inserted,
// 0.1% deleted. Times building the new snapshot (encoding + hashing + writing, external sort for
// shuffled input) plus the diff against the previous snapshot, consuming every change. Each scenario
// runs in a fresh child process so that its peak RSS (process.resourceUsage().maxRSS) is its own.
//
//   pnpm --filter @keystage/delta build
//   node bench/delta/run.mjs [--rows 1000000] [--scenarios sorted,shuffled,...] [--repeat 1] [--json out.json]
//
// Scenarios: sorted, shuffled, nochange (the engine: build + diff); flow (build, summariseDiff,
// holdDecision, then the diff: the whole delivery path); naive (Map of key → sha1 of JSON); hash
// (one-shot crypto.hash vs createHash per row); gen-sorted, gen-shuffled (producing the input rows
// alone, included in the engine times).

import { spawnSync } from 'node:child_process';
import { createHash, hash } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  baseRow,
  COLUMNS,
  changedRow,
  fate,
  forEachBaseRow,
  forEachNextRow,
  KEY_COLUMNS,
  rowOf,
  shape,
  shuffledNextRun,
} from './data.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DIST = join(here, '../../packages/delta/dist/index.js');
const ALL = ['sorted', 'shuffled', 'nochange', 'flow', 'naive', 'hash', 'gen-sorted', 'gen-shuffled'];
const TARGET_MS = 1500;
const TARGET_RSS_MB = 250;
const BATCH = 1000;

const { values: opts } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    scenarios: { type: 'string', default: ALL.join(',') },
    repeat: { type: 'string', default: '1' },
    json: { type: 'string' },
    child: { type: 'string' },
    dir: { type: 'string' },
  },
});
const rows = Number(opts.rows);

const mb = (bytes) => Math.round(bytes / 1024 / 1024);
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const ms = (t0) => Math.round(performance.now() - t0);
/** User + system CPU of the whole process (all threads) since `c0`, in ms. */
const cpuMs = (c0) => {
  const c = process.cpuUsage(c0);
  return Math.round((c.user + c.system) / 1000);
};

/** Feeds the next run's rows to `sink(batch)` in arrays of BATCH, as the cloud receives them. */
function feedNextRun(s, order, sink) {
  let batch = [];
  const push = (row) => {
    batch.push(row);
    if (batch.length === BATCH) {
      sink(batch);
      batch = [];
    }
  };
  if (order === undefined) forEachNextRow(s, push);
  else for (let k = 0; k < order.length; k++) push(rowOf(s, order[k]));
  if (batch.length > 0) sink(batch);
}

function feedBaseRun(s, sink) {
  let batch = [];
  forEachBaseRow(s, (row) => {
    batch.push(row);
    if (batch.length === BATCH) {
      sink(batch);
      batch = [];
    }
  });
  if (batch.length > 0) sink(batch);
}

async function child(name, dir) {
  const s = shape(rows);
  const prevPath = join(dir, 'previous.ksnap');
  const { SnapshotBuilder, diffSnapshots, holdDecision, summariseDiff } = await import(DIST);
  const options = (path) => ({ columns: COLUMNS, keyColumns: KEY_COLUMNS, tempDir: dir, path });

  if (name === 'prepare') {
    const t0 = performance.now();
    const builder = new SnapshotBuilder(options(prevPath));
    feedBaseRun(s, (batch) => builder.addBatch(batch));
    const done = await builder.finish();
    return { scenario: name, ms: ms(t0), rows: done.rowCount, bytes: done.bytes };
  }

  if (name === 'sorted' || name === 'shuffled' || name === 'nochange' || name === 'flow') {
    const order = name === 'shuffled' ? shuffledNextRun(s) : undefined; // input order, made before timing
    const rssBeforeMb = mb(process.memoryUsage().rss);
    const path = join(dir, `current-${name}.ksnap`);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const builder = new SnapshotBuilder(options(path));
    if (name === 'nochange') feedBaseRun(s, (batch) => builder.addBatch(batch));
    else feedNextRun(s, order, (batch) => builder.addBatch(batch));
    const done = await builder.finish();
    const buildMs = ms(t0);
    const t1 = performance.now();
    let hold;
    if (name === 'flow') hold = holdDecision(await summariseDiff(prevPath, done.path));
    const diff = diffSnapshots(prevPath, done.path);
    const ops = { insert: 0, update: 0, delete: 0 };
    let changedFields = 0;
    for await (const change of diff) {
      ops[change.op]++;
      if (change.op === 'update') changedFields += change.changed.length;
    }
    const diffMs = ms(t1);
    const totalMs = ms(t0);
    const totalCpuMs = cpuMs(c0);
    unlinkSync(path);
    return {
      scenario: name,
      ms: totalMs,
      cpuMs: totalCpuMs,
      buildMs,
      diffMs,
      peakRssMb: peakRssMb(),
      rssBeforeMb,
      rows: done.rowCount,
      bytes: done.bytes,
      sortedInput: done.sortedInput,
      spilledRuns: done.spilledRuns,
      summary: diff.summary,
      changesSeen: ops,
      changedFields,
      hold,
    };
  }

  if (name === 'gen-sorted' || name === 'gen-shuffled') {
    const order = name === 'gen-shuffled' ? shuffledNextRun(s) : undefined;
    let n = 0;
    let x = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    feedNextRun(s, order, (batch) => {
      n += batch.length;
      x ^= batch[batch.length - 1][0];
    });
    return { scenario: name, ms: ms(t0), cpuMs: cpuMs(c0), rows: n, peakRssMb: peakRssMb(), check: x };
  }

  if (name === 'naive') {
    // The anchor: a Map of key → sha1 hex of JSON.stringify(row) per run, diff by map lookups.
    const keyOf = (row) => JSON.stringify([row[0], row[1], row[2]]);
    const digestOf = (row) => createHash('sha1').update(JSON.stringify(row)).digest('hex');
    const previous = new Map();
    feedBaseRun(s, (batch) => {
      for (const row of batch) previous.set(keyOf(row), digestOf(row));
    });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const current = new Map();
    feedNextRun(s, undefined, (batch) => {
      for (const row of batch) current.set(keyOf(row), digestOf(row));
    });
    const buildMs = ms(t0);
    const t1 = performance.now();
    const summary = { inserts: 0, updates: 0, deletes: 0, unchanged: 0 };
    for (const [key, digest] of current) {
      const before = previous.get(key);
      if (before === undefined) summary.inserts++;
      else if (before !== digest) summary.updates++;
      else summary.unchanged++;
    }
    for (const key of previous.keys()) if (!current.has(key)) summary.deletes++;
    return {
      scenario: name,
      ms: ms(t0),
      cpuMs: cpuMs(c0),
      buildMs,
      diffMs: ms(t1),
      peakRssMb: peakRssMb(),
      summary,
    };
  }

  if (name === 'hash') {
    // Per-row hashing alone, over the JSON of each row (≈ 45 bytes), 1M calls per variant.
    const parts = [];
    let total = 0;
    for (let i = 0; i < s.baseRows; i++) {
      const row = fate(i) === 'change' ? changedRow(s, i) : baseRow(s, i);
      const b = Buffer.from(JSON.stringify(row));
      parts.push(b);
      total += b.length;
    }
    const all = Buffer.concat(parts, total);
    const offsets = new Uint32Array(parts.length + 1);
    for (let i = 0; i < parts.length; i++) offsets[i + 1] = offsets[i] + parts[i].length;
    parts.length = 0;
    const variants = {
      'crypto.hash sha256 → binary string': (v) => hash('sha256', v, 'binary'),
      'crypto.hash sha256 → hex': (v) => hash('sha256', v, 'hex'),
      'crypto.hash sha256 → Buffer': (v) => hash('sha256', v, 'buffer'),
      'createHash sha256 → Buffer': (v) => createHash('sha256').update(v).digest(),
      'crypto.hash sha1 → hex': (v) => hash('sha1', v, 'hex'),
      'createHash sha1 → hex': (v) => createHash('sha1').update(v).digest('hex'),
    };
    const results = {};
    for (let round = 0; round < 2; round++) {
      for (const [label, fn] of Object.entries(variants)) {
        let x = 0;
        const t0 = performance.now();
        for (let i = 0; i < s.baseRows; i++) x ^= fn(all.subarray(offsets[i], offsets[i + 1])).length;
        if (round === 1) results[label] = { ms: ms(t0), check: x }; // round 0 warms up
      }
    }
    return { scenario: name, rows: s.baseRows, avgBytes: Math.round(total / s.baseRows), results };
  }
  throw new Error(`unknown scenario ${name}`);
}

function runChild(name, dir) {
  const self = fileURLToPath(import.meta.url);
  const res = spawnSync(process.execPath, [self, '--child', name, '--dir', dir, '--rows', String(rows)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`scenario ${name} failed (exit ${res.status})`);
  return JSON.parse(res.stdout.trim().split('\n').pop());
}

function print(line = '') {
  process.stdout.write(`${line}\n`);
}

if (opts.child) {
  const result = await child(opts.child, opts.dir);
  print(JSON.stringify(result));
} else {
  const scenarios = opts.scenarios.split(',').filter(Boolean);
  const repeat = Number(opts.repeat);
  const dir = mkdtempSync(join(tmpdir(), 'keystage-delta-bench-'));
  const out = { node: process.version, rows, date: new Date().toISOString(), runs: [] };
  try {
    const prep = runChild('prepare', dir);
    print(
      `previous snapshot: ${prep.rows} rows, ${mb(prep.bytes)} MB, built in ${prep.ms} ms (not timed below)`,
    );
    for (let r = 0; r < repeat; r++) {
      for (const name of scenarios) {
        const res = runChild(name, dir);
        out.runs.push(res);
        if (name === 'hash') {
          print(`hash (${res.rows} rows, ≈ ${res.avgBytes} B each):`);
          for (const [label, v] of Object.entries(res.results)) {
            print(
              `  ${label.padEnd(36)} ${String(v.ms).padStart(5)} ms  ${Math.round((v.ms * 1e6) / res.rows)} ns/row`,
            );
          }
        } else {
          const parts = [`${name.padEnd(12)} ${String(res.ms).padStart(5)} ms`, `cpu ${res.cpuMs} ms`];
          if (res.buildMs !== undefined) parts.push(`(build ${res.buildMs} + diff ${res.diffMs})`);
          if (res.peakRssMb !== undefined) parts.push(`peak RSS ${res.peakRssMb} MB`);
          if (res.rssBeforeMb !== undefined) parts.push(`(${res.rssBeforeMb} MB before)`);
          if (res.summary) {
            const sm = res.summary;
            parts.push(`+${sm.inserts} ~${sm.updates} -${sm.deletes} =${sm.unchanged}`);
          }
          if (res.spilledRuns !== undefined) parts.push(`sorted=${res.sortedInput} runs=${res.spilledRuns}`);
          print(parts.join('  '));
        }
      }
    }
    print();
    print('scenario      median ms (min–max)   median cpu ms   max peak RSS');
    for (const name of scenarios.filter((n) => n !== 'hash')) {
      const runs = out.runs.filter((r) => r.scenario === name);
      const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
      const times = runs.map((r) => r.ms);
      const rss = Math.max(...runs.map((r) => r.peakRssMb ?? 0));
      const engine = ['sorted', 'shuffled', 'nochange', 'flow'].includes(name);
      const verdict = engine
        ? `${med(times) <= TARGET_MS ? 'time met' : 'time NOT met'}, ${rss <= TARGET_RSS_MB ? 'memory met' : 'memory NOT met'}`
        : '';
      print(
        `${name.padEnd(12)} ${String(med(times)).padStart(6)} (${Math.min(...times)}–${Math.max(...times)})`.padEnd(
          38,
        ) +
          `${String(med(runs.map((r) => r.cpuMs))).padStart(8)}        ${String(rss).padStart(4)} MB   ${verdict}`,
      );
    }
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
