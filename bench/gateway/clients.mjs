/**
 * Simulated agents: one process holding up to ~7,500 WebSockets (two of them stay well under the
 * 20,000 open-file limit each). Against the gateway each socket does the real handshake — `hello`,
 * the server's `challenge` signed with the agent's own Ed25519 key (`authSigningInput`), `auth.ok` —
 * then, as the real agent does, a heartbeat and a `work.pull`; afterwards every socket sends the real
 * `heartbeat` message once per interval, spread evenly over the interval, and answers a `job.offer`
 * at once with `job.reject` (`job.busy`). Against the bare anchor a socket just opens, heartbeats the
 * same way and echoes pushed frames. Driven by ./run.mjs over IPC.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sign } from '../../packages/crypto/dist/index.js';
import {
  authSigningInput,
  createMessage,
  encodeMessage,
  PROTOCOL_VERSION,
  parseMessage,
} from '../../packages/protocol/dist/index.js';
import { cloudRequire, serveRequests } from './common.mjs';

const WebSocket = cloudRequire('ws');

const [mode, url, agentsFile, intervalArg] = process.argv.slice(2);
const INTERVAL_MS = Number(intervalArg);
const agents = JSON.parse(readFileSync(agentsFile, 'utf8')); // [[agentId, privateKey (PKCS#8 DER b64)], …]

// The real heartbeat message (same fields as apps/agent's), built by hand per send: the simulated
// fleet must not spend the CPU the server process is measured on. Checked once against the schema.
const HEARTBEAT_BODY = JSON.stringify({
  agentVersion: '0.1.0',
  os: 'linux x64',
  misKind: 'DEMO_SQLITE',
  misVersion: null,
  freeDiskBytes: 51_234_567_890,
  queueDepth: 0,
  lastError: null,
  supervised: false,
  credentialsReady: true,
  uptimeSeconds: 3600,
});
const heartbeat = () =>
  `{"id":"${randomUUID()}","protocolVersion":"${PROTOCOL_VERSION}","type":"heartbeat","sentAt":"${new Date().toISOString()}","body":${HEARTBEAT_BODY}}`;
const reject = (replyTo, runId) =>
  `{"id":"${randomUUID()}","protocolVersion":"${PROTOCOL_VERSION}","type":"job.reject","replyTo":"${replyTo}","sentAt":"${new Date().toISOString()}","body":{"runId":"${runId}","code":"job.busy","message":"bench agent is busy","retryable":true}}`;
for (const frame of [heartbeat(), reject(randomUUID(), randomUUID())]) {
  const parsed = parseMessage(frame);
  if (!parsed.ok) throw new Error(`bench frame does not match the protocol: ${JSON.stringify(parsed.error)}`);
}

const counters = {
  heartbeatsSent: 0,
  acks: 0,
  offers: 0,
  offerBytes: 0,
  rejectsSent: 0,
  pushes: 0,
  pushBytes: 0,
  closedUnexpectedly: 0,
  refused: {},
  errors: {},
};
const ready = []; // open (and, for the gateway, authenticated) connections
let closing = false;

function onMessage(conn, data) {
  const text = data.toString('utf8');
  const m = JSON.parse(text);
  switch (m.type) {
    case 'heartbeat.ack':
      counters.acks++;
      return;
    case 'challenge': {
      const signature = sign(
        authSigningInput({ nonce: m.body.nonce, agentId: conn.agentId, protocolVersion: PROTOCOL_VERSION }),
        conn.privateKey,
      );
      conn.ws.send(
        encodeMessage(createMessage('auth', { agentId: conn.agentId, signature }, { replyTo: m.id })),
      );
      return;
    }
    case 'auth.ok':
      markReady(conn);
      conn.ws.send(heartbeat());
      counters.heartbeatsSent++;
      conn.ws.send(encodeMessage(createMessage('work.pull', { maxJobs: 4 })));
      conn.settle(true);
      return;
    case 'refused':
      counters.refused[m.body.code] = (counters.refused[m.body.code] ?? 0) + 1;
      conn.refusal = m.body.code;
      conn.settle(false);
      return;
    case 'job.offer':
      counters.offers++;
      counters.offerBytes = Buffer.byteLength(text);
      conn.ws.send(reject(m.id, m.body.job.payload.runId));
      counters.rejectsSent++;
      return;
    case 'push':
      counters.pushes++;
      counters.pushBytes = Buffer.byteLength(text);
      conn.ws.send(text);
      return;
    case 'error':
      counters.errors[m.body.code] = (counters.errors[m.body.code] ?? 0) + 1;
      return;
  }
}

function markReady(conn) {
  conn.index = ready.length;
  ready.push(conn);
}

function unready(conn) {
  if (conn.index === undefined) return;
  const last = ready.pop();
  if (last !== conn) {
    ready[conn.index] = last;
    last.index = conn.index;
  }
  conn.index = undefined;
}

/** Opens one connection; resolves true once it is ready (authenticated), false otherwise. */
function open(agentId, privateKey, timeoutMs = 20_000) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 });
    const conn = { ws, agentId, privateKey, index: undefined, settled: false };
    const timer = setTimeout(() => conn.settle(false), timeoutMs);
    conn.settle = (ok) => {
      if (conn.settled) return;
      conn.settled = true;
      clearTimeout(timer);
      if (!ok && ws.readyState !== WebSocket.CLOSED) ws.terminate();
      resolve(ok ? conn : null);
    };
    ws.on('open', () => {
      if (mode === 'gateway') {
        ws.send(
          encodeMessage(
            createMessage('hello', {
              agentId,
              agentVersion: '0.1.0',
              os: 'linux x64',
              misKind: 'DEMO_SQLITE',
            }),
          ),
        );
      } else {
        markReady(conn);
        ws.send(heartbeat());
        counters.heartbeatsSent++;
        conn.settle(true);
      }
    });
    ws.on('message', (data) => {
      try {
        onMessage(conn, data);
      } catch (err) {
        counters.errors.client = (counters.errors.client ?? 0) + 1;
        if (counters.errors.client < 3) process.stderr.write(`client: ${err.stack}\n`);
      }
    });
    ws.on('error', (err) => {
      counters.errors[err.code ?? 'socket'] = (counters.errors[err.code ?? 'socket'] ?? 0) + 1;
    });
    ws.on('close', () => {
      if (conn.settled && conn.index !== undefined && !closing) counters.closedUnexpectedly++;
      unready(conn);
      conn.settle(false);
    });
  });
}

/** Connects agents[from, to) with at most `inFlight` handshakes at a time. */
async function connect({ from, to, inFlight = 100 }) {
  const started = Date.now();
  let next = from;
  let ok = 0;
  let failed = 0;
  async function lane() {
    while (next < to) {
      const i = next++;
      const [agentId, privateKey] = agents[i];
      if (await open(agentId, privateKey)) ok++;
      else failed++;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { ok, failed, seconds: (Date.now() - started) / 1000, ready: ready.length };
}

// Heartbeats: each ready socket once per INTERVAL_MS, spread evenly (a cursor walks the fleet). A
// 5 ms tick: 15,000 agents give ≈ 1–2 heartbeats per wake-up of the server, as independent agents
// would, rather than bursts that would let the server amortise its wake-ups.
let cursor = 0;
let owed = 0;
let last = Date.now();
const ticker = setInterval(() => {
  const now = Date.now();
  owed += (ready.length * (now - last)) / INTERVAL_MS;
  last = now;
  let n = Math.floor(owed);
  owed -= n;
  while (n-- > 0 && ready.length > 0) {
    if (cursor >= ready.length) cursor = 0;
    const conn = ready[cursor++];
    if (conn.ws.readyState === WebSocket.OPEN) {
      conn.ws.send(heartbeat());
      counters.heartbeatsSent++;
    }
  }
}, 5);

serveRequests(
  {
    connect,
    counters: () => ({ ...counters, ready: ready.length }),
    /** The gateway must still verify signatures: connect one agent with a key that is not its own. */
    async wrongKey({ index, otherIndex }) {
      const conn = await open(agents[index][0], agents[otherIndex][1], 10_000);
      if (conn) {
        unready(conn);
        conn.ws.close();
        return { refused: null };
      }
      return { refused: counters.refused['auth.failed'] ? 'auth.failed' : JSON.stringify(counters.refused) };
    },
    async closeAll() {
      closing = true;
      clearInterval(ticker);
      const all = [...ready];
      for (const conn of all) conn.ws.terminate();
      return { closed: all.length };
    },
  },
  20 * 60_000,
);

process.send({ ready: true });
