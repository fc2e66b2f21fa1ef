#!/usr/bin/env node
/**
 * Benchmark: randomised schedule placement (@keystage/schedule) for a simulated fleet.
 *
 *   pnpm --filter @keystage/schedule build
 *   node bench/schedule/plan.mjs [--schools 24000] [--extracts 10] [--day YYYY-MM-DD]
 *                                [--ids uuid|sequential] [--redis-url redis://127.0.0.1:6379]
 *                                [--no-redis] [--json results.json]
 *
 * Plans every (school, extract) of the fleet twice: a nightly 01:00–05:00 window (P1D) and an
 * every-30-minutes 08:00–16:00 window (PT30M), over one ordinary weekday (default: the first
 * Wednesday at least two days ahead, so every job is still in the future). For each it prints:
 *   - the per-minute load inside the window (runs due in each minute): peak / mean, target ≤ 1.15;
 *   - the planning time: planNext for every schedule, and planOccurrences over the whole day;
 *   - the Redis memory used when the next occurrence of every schedule is a BullMQ delayed job with
 *     the idempotent job id `${scheduleId}.${occurrenceId}` (INFO memory used_memory before and
 *     after), and that adding the same jobs again (a restart re-planning) adds none.
 * Redis: its own key prefix `bench-schedule-<pid>`; the queues are obliterated and any key left
 * under the prefix is deleted at the end, also on error or Ctrl-C.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { parseSchedule, planNext, planOccurrences } from '../../packages/schedule/dist/index.js';

const { values: opts } = parseArgs({
  options: {
    schools: { type: 'string', default: '24000' },
    extracts: { type: 'string', default: '10' },
    day: { type: 'string' },
    ids: { type: 'string', default: 'uuid' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'no-redis': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const SCHOOLS = Number(opts.schools);
const EXTRACTS = Number(opts.extracts);
const DAY = opts.day ?? nextWednesday();
const PREFIX = `bench-schedule-${process.pid}`;
const BATCH = 1000;
const TARGET = 1.15;

const SCENARIOS = [
  {
    name: 'nightly P1D 01:00–05:00',
    key: 'nightly',
    spec: {
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '01:00', to: '05:00' }],
      frequency: 'P1D',
    },
    window: ['01:00', '05:00'],
  },
  {
    name: 'every 30 min PT30M 08:00–16:00',
    key: 'half-hourly',
    spec: {
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '16:00' }],
      frequency: 'PT30M',
    },
    window: ['08:00', '16:00'],
  },
];

const write = (line = '') => process.stdout.write(`${line}\n`);

/** The first Wednesday at least two days from now (UTC date; an ordinary weekday). */
function nextWednesday() {
  const d = new Date(Date.now() + 2 * 86_400_000);
  while (d.getUTCDay() !== 3) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** Deterministic UUID-shaped ids, so that runs are comparable; or `school-N` / `extract-M`. */
function idOf(kind, n) {
  if (opts.ids === 'sequential') return `${kind}-${n}`;
  const h = createHash('sha256').update(`${kind}-${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The instant of a London wall-clock time on DAY (via Intl, independent of the package). */
function londonInstant(day, hhmm) {
  const guess = Date.parse(`${day}T${hhmm}:00Z`);
  const offsetAt = (ms) => {
    const name = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeZoneName: 'longOffset' })
      .formatToParts(new Date(ms))
      .find((p) => p.type === 'timeZoneName').value; // GMT or GMT+01:00
    const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
    return m ? (m[1] === '+' ? 1 : -1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000 : 0;
  };
  return guess - offsetAt(guess - offsetAt(guess));
}

function fleet() {
  const schools = Array.from({ length: SCHOOLS }, (_, i) => idOf('school', i + 1));
  const extracts = Array.from({ length: EXTRACTS }, (_, j) => idOf('extract', j + 1));
  const schedules = [];
  for (const school of schools) {
    for (const extract of extracts) {
      schedules.push({ id: idOf('schedule', schedules.length + 1), seed: `${school}:${extract}` });
    }
  }
  return schedules;
}

function ms(t) {
  return `${t.toFixed(0)} ms`;
}

function plan(scenario, schedules) {
  const parsed = parseSchedule(scenario.spec);
  if (!parsed.ok) throw new Error(`bad scenario ${scenario.name}: ${JSON.stringify(parsed.problems)}`);
  const schedule = parsed.schedule;
  const dayStart = londonInstant(DAY, '00:00');
  const dayEnd = dayStart + 24 * 3_600_000; // DAY is an ordinary day, not a DST change
  const windowStart = londonInstant(DAY, scenario.window[0]);
  const windowEnd = londonInstant(DAY, scenario.window[1]);
  const minutes = (windowEnd - windowStart) / 60_000;

  // planNext from the start of the day: what a worker does for each schedule.
  const after = new Date(dayStart - 1);
  let t0 = performance.now();
  const next = new Array(schedules.length);
  for (let i = 0; i < schedules.length; i++) next[i] = planNext(schedule, { after, seed: schedules[i].seed });
  const planNextMs = performance.now() - t0;

  // Every occurrence of the day, for the load histogram (what an API preview does, per schedule).
  const histogram = new Array(minutes).fill(0);
  let occurrences = 0;
  let outside = 0;
  t0 = performance.now();
  for (const s of schedules) {
    for (const o of planOccurrences(schedule, {
      from: new Date(dayStart),
      to: new Date(dayEnd),
      seed: s.seed,
    })) {
      const minute = Math.floor((o.dueAt.getTime() - windowStart) / 60_000);
      if (minute < 0 || minute >= minutes) outside++;
      else histogram[minute]++;
      occurrences++;
    }
  }
  const listMs = performance.now() - t0;
  const mean = occurrences / minutes;
  const peak = Math.max(...histogram);
  const low = Math.min(...histogram);
  return {
    scenario: scenario.name,
    schedules: schedules.length,
    occurrences,
    outsideWindow: outside,
    minutes,
    meanPerMinute: mean,
    peakPerMinute: peak,
    lowestPerMinute: low,
    peakOverMean: peak / mean,
    planNextMs,
    planNextUsPerSchedule: (planNextMs * 1000) / schedules.length,
    listDayMs: listMs,
    listDayUsPerSchedule: (listMs * 1000) / schedules.length,
    next,
  };
}

// ─── Redis (BullMQ) ──────────────────────────────────────────────────────────

const cloudRequire = createRequire(new URL('../../apps/cloud/package.json', import.meta.url));
const queues = [];
/** A plain connection of our own for INFO, SCAN and DEL (BullMQ keeps its client to itself). */
let admin;

function redisAdmin() {
  if (!admin) {
    const Redis = cloudRequire('ioredis');
    admin = new (Redis.default ?? Redis)(opts['redis-url'], { maxRetriesPerRequest: 3 });
  }
  return admin;
}

async function usedMemory(client) {
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

async function enqueue(scenario, schedules, next) {
  const { Queue } = cloudRequire('bullmq');
  const url = new URL(opts['redis-url']);
  const queue = new Queue(`runs-${scenario.key}`, {
    prefix: PREFIX,
    connection: { host: url.hostname, port: Number(url.port || 6379) },
  });
  queues.push(queue);
  const client = redisAdmin();
  await queue.waitUntilReady();
  const jobsOf = () => {
    const now = Date.now();
    const jobs = [];
    for (let i = 0; i < schedules.length; i++) {
      const o = next[i];
      if (!o) continue;
      jobs.push({
        name: 'run',
        data: {
          scheduleId: schedules[i].id,
          occurrenceId: o.occurrenceId,
          deadline: o.slotEnd.toISOString(),
        },
        opts: { jobId: `${schedules[i].id}.${o.occurrenceId}`, delay: Math.max(0, o.dueAt.getTime() - now) },
      });
    }
    return jobs;
  };
  const addAll = async (jobs) => {
    for (let i = 0; i < jobs.length; i += BATCH) await queue.addBulk(jobs.slice(i, i + BATCH));
  };

  const before = await usedMemory(client);
  let t0 = performance.now();
  await addAll(jobsOf());
  const addMs = performance.now() - t0;
  const after = await usedMemory(client);
  const delayed = await queue.getDelayedCount();
  // A restart re-plans and adds the same occurrences again: the job ids make it a no-op.
  t0 = performance.now();
  await addAll(jobsOf());
  const readdMs = performance.now() - t0;
  const afterReadd = await usedMemory(client);
  const delayedAfterReadd = await queue.getDelayedCount();
  await cleanupQueue(queue);
  return {
    jobs: delayed,
    usedMemoryBefore: before,
    usedMemoryAfter: after,
    bytesPerJob: (after - before) / delayed,
    addMs,
    readdMs,
    delayedAfterReadd,
    extraBytesAfterReadd: afterReadd - after,
  };
}

async function cleanupQueue(queue) {
  await queue.obliterate({ force: true });
  const client = redisAdmin();
  // Anything BullMQ keeps outside the queue's own keys (e.g. the meta key) goes too.
  let cursor = '0';
  do {
    const [nextCursor, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
  await queue.close();
  queues.splice(queues.indexOf(queue), 1);
}

async function cleanup() {
  for (const queue of [...queues]) {
    try {
      await cleanupQueue(queue);
    } catch (err) {
      process.stderr.write(`bench/schedule: cleanup of ${queue.name} failed: ${err.message}\n`);
    }
  }
  if (admin) await admin.quit();
  admin = undefined;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await cleanup();
    process.exit(130);
  });
}

// ─── Run ─────────────────────────────────────────────────────────────────────

let exitCode = 0;
try {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
  write(`Schedule placement benchmark — ${new Date().toISOString()} — ${machine}`);
  write(`load average (1 min) at start ${loadavg()[0].toFixed(2)} (the machine may be shared)`);
  write(
    `fleet: ${SCHOOLS.toLocaleString('en-GB')} schools × ${EXTRACTS} extracts = ${(SCHOOLS * EXTRACTS).toLocaleString('en-GB')} schedules (${opts.ids} ids); day ${DAY} (Europe/London)`,
  );
  const schedules = fleet();
  const results = [];
  for (const scenario of SCENARIOS) {
    const r = plan(scenario, schedules);
    const redis = opts['no-redis'] ? undefined : await enqueue(scenario, schedules, r.next);
    delete r.next;
    results.push({ ...r, redis });
    write();
    write(`${scenario.name}`);
    write(
      `  load per minute inside the window (${r.minutes} min): mean ${r.meanPerMinute.toFixed(1)}, peak ${r.peakPerMinute}, lowest ${r.lowestPerMinute}; peak/mean ${r.peakOverMean.toFixed(3)} (target ≤ ${TARGET}: ${r.peakOverMean <= TARGET ? 'met' : 'MISSED'})`,
    );
    write(
      `  occurrences ${r.occurrences.toLocaleString('en-GB')} (${r.occurrences / r.schedules} per schedule), outside the window ${r.outsideWindow}`,
    );
    write(
      `  planNext, every schedule: ${ms(r.planNextMs)} total, ${r.planNextUsPerSchedule.toFixed(1)} µs per schedule`,
    );
    write(
      `  planOccurrences over the day, every schedule: ${ms(r.listDayMs)} total, ${r.listDayUsPerSchedule.toFixed(1)} µs per schedule`,
    );
    if (redis) {
      write(
        `  Redis: ${redis.jobs.toLocaleString('en-GB')} delayed jobs, used_memory +${((redis.usedMemoryAfter - redis.usedMemoryBefore) / 1024 ** 2).toFixed(1)} MiB (${redis.bytesPerJob.toFixed(0)} B per job); addBulk ${ms(redis.addMs)}`,
      );
      write(
        `  re-adding the same ${redis.jobs.toLocaleString('en-GB')} jobs (a restart): delayed jobs ${redis.delayedAfterReadd.toLocaleString('en-GB')}, used_memory ${redis.extraBytesAfterReadd >= 0 ? '+' : ''}${(redis.extraBytesAfterReadd / 1024).toFixed(0)} KiB, ${ms(redis.readdMs)}`,
      );
    }
  }
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ machine, day: DAY, results }, null, 2));
} catch (err) {
  process.stderr.write(`bench/schedule: ${err.stack ?? err}\n`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
