/**
 * Helpers shared by the gateway benchmark's processes (see ./run.mjs): paths, `ws`/`pg` resolved
 * from the workspace, a tiny request/response protocol over the Node IPC channel, and /proc readers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `ws` and `pg` as the control plane itself resolves them (no dependency of the bench's own). */
export const cloudRequire = createRequire(new URL('../../apps/cloud/package.json', import.meta.url));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ─── IPC: parent → child requests, child → parent replies ────────────────────

/** In a child: answers `{ id, cmd, args }` requests with its handlers; exits when the parent goes. */
export function serveRequests(handlers, maxLifetimeMs) {
  process.on('message', async (msg) => {
    if (!msg || typeof msg.id !== 'number') return;
    const handler = handlers[msg.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`);
      const result = await handler(msg.args ?? {});
      process.send({ id: msg.id, ok: true, result });
    } catch (err) {
      process.send({ id: msg.id, ok: false, error: err?.stack ?? String(err) });
    }
  });
  // Never outlive the benchmark: the parent going away, or a hard lifetime, ends the child.
  process.on('disconnect', () => process.exit(0));
  setTimeout(() => {
    process.stderr.write('bench child: maximum lifetime reached, exiting\n');
    process.exit(2);
  }, maxLifetimeMs).unref();
}

/** In the parent: a function sending requests to `child` and resolving with the reply. */
export function requester(child, name) {
  let next = 1;
  const waiting = new Map();
  child.on('message', (msg) => {
    if (!msg || typeof msg.id !== 'number') return;
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    clearTimeout(w.timer);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new Error(`${name}: ${msg.error}`));
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error(`${name} exited (${code ?? signal}) during a request`));
    }
    waiting.clear();
  });
  return (cmd, args = {}, timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${name}: ${cmd} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, { resolve, reject, timer });
      child.send({ id, cmd, args });
    });
}

// ─── /proc ───────────────────────────────────────────────────────────────────

/** utime + stime of a process (all its threads), in clock ticks; null if it is gone. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, RssAnon …). */
export function statusKb(pid, field) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : null;
}

/** Clock ticks per second (USER_HZ); 100 on Linux/x86 and arm64. */
export const CLK_TCK = 100;

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarise(latencies) {
  const s = [...latencies].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
  };
}

/** A ~2 KB SQL text for the dispatched jobs (the job.offer frame around it is ≈ 2 KB). */
export function benchSql(length) {
  const head = 'SELECT p.pupil_id, p.upn, p.legal_surname, p.forename, p.dob, e.entry_date, e.leaving_date';
  const tail = ' FROM pupil p JOIN enrolment e ON e.pupil_id = p.pupil_id WHERE e.school_year = :year';
  let cols = '';
  for (let i = 0; head.length + cols.length + tail.length < length; i++) cols += `, p.attr_${i}`;
  return head + cols + tail;
}
