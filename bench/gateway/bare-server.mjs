/**
 * The anchor: a bare `ws` server in its own process doing what the gateway does per connection, and
 * nothing else. It accepts sockets (permessage-deflate off, same frame limit), answers every
 * `heartbeat` with a `heartbeat.ack` of the gateway's shape, and for the dispatch test pushes a
 * ≈ 2 KB text frame and times the echo. Driven by ./run.mjs over IPC; run with --expose-gc.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { cloudRequire, serveRequests, sleep, summarise } from './common.mjs';

const { WebSocketServer } = cloudRequire('ws');
const PROTOCOL_VERSION = '1.0';
const MAX_FRAME_BYTES = 1024 * 1024;

const sockets = new Set();
const waiting = new Map();
let heartbeats = 0;

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: MAX_FRAME_BYTES,
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  sockets.add(ws);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m.type === 'heartbeat') {
      heartbeats++;
      ws.send(
        `{"id":"${randomUUID()}","protocolVersion":"${PROTOCOL_VERSION}","type":"heartbeat.ack","replyTo":"${m.id}","sentAt":"${new Date().toISOString()}","body":{}}`,
      );
    } else if (m.type === 'push') {
      // The client echoes the pushed frame unchanged.
      waiting.get(m.id)?.();
    }
  });
  ws.on('error', () => undefined);
  ws.on('close', () => sockets.delete(ws));
});

await new Promise((r) => wss.once('listening', r));

async function dispatch({ count, concurrency, bytes }) {
  const targets = [...sockets];
  if (targets.length === 0) throw new Error('no connections');
  const pad = 'x'.repeat(bytes);
  const latencies = [];
  let timeouts = 0;
  let next = 0;
  let frameBytes = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const ws = targets[(i * 7919) % targets.length];
      const id = randomUUID();
      const frame = `{"id":"${id}","protocolVersion":"${PROTOCOL_VERSION}","type":"push","sentAt":"${new Date().toISOString()}","body":{"pad":"${pad}"}}`;
      frameBytes = frame.length;
      const t0 = performance.now();
      const ok = await new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve(false);
        }, 5_000);
        waiting.set(id, () => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(true);
        });
        ws.send(frame);
      });
      if (ok) latencies.push(performance.now() - t0);
      else timeouts++;
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    ...summarise(latencies),
    timeouts,
    frameBytes,
    seconds: (performance.now() - started) / 1000,
  };
}

serveRequests(
  {
    async gc() {
      global.gc();
      await sleep(50);
      global.gc();
      return true;
    },
    stats: () => ({ connections: sockets.size, heartbeats, memory: process.memoryUsage() }),
    dispatch,
    async stop() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      setTimeout(() => process.exit(0), 100);
      return true;
    },
  },
  20 * 60_000,
);

process.send({ ready: true, url: `ws://127.0.0.1:${wss.address().port}/agent` });
