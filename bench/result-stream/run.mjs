#!/usr/bin/env node
/**
 * Benchmark: the result stream's two CPU stages on attendance-mark-like rows, single thread.
 *
 *   pnpm --filter @keystage/crypto build && pnpm --filter @keystage/result-stream build
 *   node bench/result-stream/run.mjs [--rows 1000000] [--runs 3] [--levels 0,1,6] [--json out.json]
 *
 * Rows: (pupil_id int, date 'YYYY-MM-DD', session 'AM'|'PM', code 1 char, minutes_late int|null,
 * comment string|null), in the order a register query returns them (date, session, pupil), with a
 * realistic mix of codes and sparse comments. Generated once, before timing, from a fixed seed.
 *
 * Measured per compression level (median of --runs, after one warm-up pass):
 *   - encode: ResultEncoder.push for every row + finish (normalise, msgpack, deflate, AES-GCM, sha256);
 *   - decode: ResultDecoder.open for every chunk + finish (sha256, AES-GCM, inflate, msgpack, checks);
 *   - the flow-control bookkeeping (UploadWindow add/sendable/onAck + IngestCursor) for all chunks;
 *   - bytes per row: encrypted chunk bytes, and as base64 in the `chunk` frame.
 * Target: the whole pipeline will need ≥ 0.25 M rows/s end to end, so each stage must be well above.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { generateDataKey } from '../../packages/crypto/dist/index.js';
import {
  IngestCursor,
  ResultDecoder,
  ResultEncoder,
  UploadWindow,
} from '../../packages/result-stream/dist/index.js';
import { Packr } from '../../packages/result-stream/node_modules/msgpackr/node-index.js';

const { values: opts } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    levels: { type: 'string', default: '0,1,6' },
    json: { type: 'string' },
  },
});
const ROWS = Number(opts.rows);
const RUNS = Math.max(1, Number(opts.runs));
const LEVELS = opts.levels.split(',').map(Number);
const RUN_ID = '7e57be4c-0000-4000-8000-000000000001';
const INFLATE = { maxOutputLength: 16 * 1024 * 1024 };
const COLUMNS = ['pupil_id', 'date', 'session', 'code', 'minutes_late', 'comment'];

const out = (line = '') => process.stdout.write(`${line}\n`);

// Deterministic PRNG (mulberry32).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRows(n) {
  const random = prng(20261128);
  // A 1,200-pupil school: ids with gaps, as a MIS hands them out.
  const pupils = [];
  for (let id = 104_213; pupils.length < 1200; id += 1 + Math.floor(random() * 3)) pupils.push(id);
  const phrases = [
    'Late - bus',
    'Dentist appointment',
    'Medical appointment (letter seen)',
    'Family holiday, not authorised',
    'Illness - parent phoned',
    'Educated off site: music exam',
    'Left early - unwell',
    'Religious observance',
  ];
  const rows = new Array(n);
  const day = new Date(Date.UTC(2024, 8, 2));
  let i = 0;
  while (i < n) {
    const dow = day.getUTCDay();
    if (dow !== 0 && dow !== 6) {
      const date = day.toISOString().slice(0, 10);
      for (const session of ['AM', 'PM']) {
        for (const pupil of pupils) {
          if (i >= n) break;
          const r = random();
          let code = session === 'AM' ? '/' : '\\';
          let minutesLate = null;
          let comment = null;
          if (r < 0.02) {
            code = 'L';
            minutesLate = 1 + Math.floor(random() * 45);
            if (random() < 0.3) comment = phrases[0];
          } else if (r < 0.035) {
            code = 'I';
            if (random() < 0.5) comment = phrases[4];
          } else if (r < 0.045) {
            code = 'M';
            comment = random() < 0.5 ? phrases[1] : phrases[2];
          } else if (r < 0.05) {
            code = 'G';
            comment = phrases[3];
          } else if (r < 0.055) {
            code = 'O';
          } else if (r < 0.06) {
            code = 'B';
            comment = phrases[5];
          } else if (r < 0.062) {
            code = 'R';
            comment = phrases[7];
          } else if (r < 0.064) {
            code = 'N';
            comment = `Reason not yet provided (ref ${Math.floor(random() * 1e6)})`;
          }
          rows[i++] = [pupil, date, session, code, minutesLate, comment];
        }
      }
    }
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return rows;
}

function encode(rows, dataKey, level) {
  const encoder = new ResultEncoder({ runId: RUN_ID, dataKey, columns: COLUMNS, compressionLevel: level });
  const chunks = [];
  for (const row of rows) {
    const done = encoder.push(row);
    for (const chunk of done) chunks.push(chunk);
  }
  const { chunks: last, summary } = encoder.finish();
  for (const chunk of last) chunks.push(chunk);
  return { chunks, summary };
}

function decode(chunks, summary, dataKey) {
  const decoder = new ResultDecoder({ runId: RUN_ID, dataKey });
  let rows = 0;
  for (const chunk of chunks) rows += decoder.open(chunk.seq, chunk.bytes, chunk.sha256).rows.length;
  decoder.finish(summary);
  return rows;
}

/** Window + cursor bookkeeping for every chunk, with acks every 8 chunks (no I/O, no spill). */
async function flowControl(chunks) {
  const window = new UploadWindow({ runId: RUN_ID, maxMemoryChunks: 16 });
  const cursor = new IngestCursor({ runId: RUN_ID, credits: 32 });
  window.onAck(cursor.ack());
  let i = 0;
  while (!window.allAcked || i < chunks.length) {
    while (i < chunks.length && window.hasRoom(chunks[i].byteLength)) await window.add(chunks[i++]);
    for (const chunk of await window.sendable()) {
      if (cursor.receive(chunk.seq) === 'accept') cursor.commit(chunk.seq);
      if (chunk.seq % 8 === 7) window.onAck(cursor.ack());
    }
    window.onAck(cursor.ack());
  }
  await window.dispose();
}

/** CPU time (user + system, all threads of the process) since `start`, in ms. */
const cpuMs = (start) => {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mrows = (n, ms) => n / ms / 1000;
const fmt = (x, digits = 2) => x.toFixed(digits);

const cpu = cpus();
out(`# result-stream bench — ${new Date().toISOString()}`);
out(
  `node ${process.version}, ${process.platform} ${process.arch}, ${cpu.length} × ${cpu[0]?.model ?? '?'}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
out(`rows ${ROWS.toLocaleString('en')}, runs ${RUNS} (median), levels ${LEVELS.join(', ')}`);

let t0 = performance.now();
const rows = makeRows(ROWS);
out(`generated rows in ${fmt(performance.now() - t0, 0)} ms`);
const dataKey = generateDataKey();
const results = [];

for (const level of LEVELS) {
  // Warm-up pass (JIT, zlib and msgpackr buffers), not timed.
  const warm = encode(rows.slice(0, 50_000), dataKey, level);
  decode(warm.chunks, warm.summary, dataKey);

  const encodeMs = [];
  const decodeMs = [];
  const encodeCpuMs = [];
  const decodeCpuMs = [];
  const flowMs = [];
  let encoded;
  for (let run = 0; run < RUNS; run++) {
    encoded = undefined;
    globalThis.gc?.();
    let c0 = process.cpuUsage();
    t0 = performance.now();
    encoded = encode(rows, dataKey, level);
    encodeMs.push(performance.now() - t0);
    encodeCpuMs.push(cpuMs(c0));
    globalThis.gc?.();
    c0 = process.cpuUsage();
    t0 = performance.now();
    const decodedRows = decode(encoded.chunks, encoded.summary, dataKey);
    decodeMs.push(performance.now() - t0);
    decodeCpuMs.push(cpuMs(c0));
    if (decodedRows !== ROWS) throw new Error(`decoded ${decodedRows} rows, expected ${ROWS}`);
    t0 = performance.now();
    await flowControl(encoded.chunks);
    flowMs.push(performance.now() - t0);
  }
  const { summary, chunks } = encoded;
  const base64Bytes = chunks.reduce((sum, c) => sum + Math.ceil(c.byteLength / 3) * 4, 0);
  const maxChunk = Math.max(...chunks.map((c) => c.byteLength));
  const result = {
    level,
    rows: ROWS,
    chunks: summary.chunkCount,
    encodeMs: median(encodeMs),
    decodeMs: median(decodeMs),
    flowMs: median(flowMs),
    encodeMRowsPerS: mrows(ROWS, median(encodeMs)),
    decodeMRowsPerS: mrows(ROWS, median(decodeMs)),
    bothMRowsPerS: mrows(ROWS, median(encodeMs) + median(decodeMs)),
    encodeCpuMs: median(encodeCpuMs),
    decodeCpuMs: median(decodeCpuMs),
    encodeMRowsPerCpuS: mrows(ROWS, median(encodeCpuMs)),
    decodeMRowsPerCpuS: mrows(ROWS, median(decodeCpuMs)),
    bytesPerRow: summary.byteCount / ROWS,
    base64BytesPerRow: base64Bytes / ROWS,
    byteCount: summary.byteCount,
    maxChunkBytes: maxChunk,
    encodeRunsMs: encodeMs,
    decodeRunsMs: decodeMs,
  };
  results.push(result);
  out();
  out(`level ${level}: ${summary.chunkCount} chunks, largest ${maxChunk} B, total ${summary.byteCount} B`);
  out(
    `  encode+encrypt  ${fmt(result.encodeMRowsPerS)} M rows/s wall (${fmt(result.encodeMs, 0)} ms; runs ${encodeMs.map((m) => m.toFixed(0)).join(', ')}), ` +
      `${fmt(result.encodeMRowsPerCpuS)} M rows per CPU-s (${fmt(result.encodeCpuMs, 0)} ms CPU)`,
  );
  out(
    `  decrypt+decode  ${fmt(result.decodeMRowsPerS)} M rows/s wall (${fmt(result.decodeMs, 0)} ms; runs ${decodeMs.map((m) => m.toFixed(0)).join(', ')}), ` +
      `${fmt(result.decodeMRowsPerCpuS)} M rows per CPU-s (${fmt(result.decodeCpuMs, 0)} ms CPU)`,
  );
  out(`  both, one core  ${fmt(result.bothMRowsPerS)} M rows/s`);
  out(`  flow control    ${fmt(result.flowMs, 1)} ms for ${summary.chunkCount} chunks`);
  out(`  bytes/row       ${fmt(result.bytesPerRow)} encrypted, ${fmt(result.base64BytesPerRow)} as base64`);
}

// Compression alone, on the same msgpack bodies the encoder makes (~256 KiB each), CPU time.
{
  const packr = new Packr({ useRecords: false });
  const bodies = [];
  const perChunk = results[0] ? Math.round(ROWS / results[0].chunks) : 10_000;
  for (let i = 0; i < rows.length; i += perChunk) {
    bodies.push(packr.pack([1, i === 0 ? COLUMNS : null, rows.slice(i, i + perChunk)]));
  }
  const plain = bodies.reduce((sum, b) => sum + b.length, 0);
  // Drop the million rows first: with them on the heap, every external allocation of the zlib output
  // can trigger a full GC that walks them, which would be charged to zlib here.
  rows.length = 0;
  globalThis.gc?.();
  out();
  out(`compression alone: ${bodies.length} bodies, ${plain} B of msgpack (${fmt(plain / ROWS)} B/row)`);
  out('| zlib level | deflate ms CPU | inflate ms CPU | compressed B/row | ratio |');
  out('| --- | --- | --- | --- | --- |');
  for (const level of [1, 3, 6, 9]) {
    // Warm-up, then as the decoder inflates: with an output limit.
    for (const body of bodies.slice(0, 5)) inflateRawSync(deflateRawSync(body, { level }), INFLATE);
    const deflateMs = [];
    const inflateMs = [];
    let size = 0;
    // Median of 5 (level 9: 1): single passes of ~30 ms are easily disturbed by page faults and GC.
    for (let run = 0; run < (level === 9 ? 1 : 5); run++) {
      let c0 = process.cpuUsage();
      const packed = bodies.map((body) => deflateRawSync(body, { level }));
      deflateMs.push(cpuMs(c0));
      size = packed.reduce((sum, b) => sum + b.length, 0);
      c0 = process.cpuUsage();
      for (const p of packed) inflateRawSync(p, INFLATE);
      inflateMs.push(cpuMs(c0));
    }
    out(
      `| ${level} | ${fmt(median(deflateMs), 0)} | ${fmt(median(inflateMs), 0)} | ${fmt(size / ROWS)} | ${fmt(plain / size, 1)} |`,
    );
  }
}

out();
out(
  '| level | chunks | encode M rows/s (wall / CPU) | decode M rows/s (wall / CPU) | both, one core (wall) | bytes/row | base64 bytes/row |',
);
out('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  out(
    `| ${r.level} | ${r.chunks} | ${fmt(r.encodeMRowsPerS)} / ${fmt(r.encodeMRowsPerCpuS)} | ${fmt(r.decodeMRowsPerS)} / ${fmt(r.decodeMRowsPerCpuS)} | ${fmt(r.bothMRowsPerS)} | ${fmt(r.bytesPerRow)} | ${fmt(r.base64BytesPerRow)} |`,
  );
}
if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ rows: ROWS, runs: RUNS, results }, null, 2)}\n`);
