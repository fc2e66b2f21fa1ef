/**
 * The control plane under test, in its own process: the built app started with `startServer` (all
 * roles: api, gateway, worker), so its RSS and CPU are the real process's. Driven by ./run.mjs over
 * IPC (gc, stats, dispatch through `AgentGateway.offerJob`, an enrolment token for the real agent).
 * Configuration comes from the environment (loadConfig). Run with --expose-gc.
 */
import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { AgentGateway } from '../../apps/cloud/dist/agents/agent-gateway.js';
import { AgentsService } from '../../apps/cloud/dist/agents/agents.service.js';
import { startServer } from '../../apps/cloud/dist/bootstrap.js';
import { loadConfig } from '../../apps/cloud/dist/config/config.js';
import { PrismaProvider } from '../../apps/cloud/dist/database/prisma.provider.js';
import { benchSql, serveRequests, sleep, summarise } from './common.mjs';

const server = await startServer(loadConfig(process.env));
const gateway = server.app.get(AgentGateway);

// Answers from the (simulated) agents, by run id: the dispatch test waits on these events.
const waiting = new Map();
const answers = { 'job.reject': 0, 'job.accept': 0 };
for (const type of ['job.reject', 'job.accept']) {
  gateway.events.on(type, (e) => {
    answers[type]++;
    waiting.get(e.message.body.runId)?.();
  });
}

function jobFor(runId, sql) {
  return {
    runId,
    extractVersionId: randomUUID(),
    datasetName: 'pupils',
    sql,
    sqlSha256: createHash('sha256').update(sql).digest('hex'),
    parameters: [{ name: 'year', type: 'integer', value: 2025 }],
    deadline: new Date(Date.now() + 3_600_000).toISOString(),
  };
}

/**
 * `count` offers at `concurrency` in flight, to connected agents spread over the fleet; each is timed
 * from the `offerJob` call to the agent's answer arriving on `gateway.events`.
 */
async function dispatch({ count, concurrency, sqlLength }) {
  const agents = gateway.connectedAgents();
  if (agents.length === 0) throw new Error('no agents connected');
  const sql = benchSql(sqlLength);
  const latencies = [];
  const sendLatencies = [];
  let timeouts = 0;
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const agentId = agents[(i * 7919) % agents.length];
      const runId = randomUUID();
      const t0 = performance.now();
      const answered = new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(runId);
          resolve(false);
        }, 5_000);
        waiting.set(runId, () => {
          clearTimeout(timer);
          waiting.delete(runId);
          resolve(true);
        });
      });
      await gateway.offerJob(agentId, jobFor(runId, sql));
      sendLatencies.push(performance.now() - t0);
      if (await answered) latencies.push(performance.now() - t0);
      else timeouts++;
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    ...summarise(latencies),
    offerJobReturned: summarise(sendLatencies),
    timeouts,
    seconds: (performance.now() - started) / 1000,
  };
}

const SYSTEM = { type: 'SYSTEM', id: null, requestId: null };

serveRequests(
  {
    async gc() {
      global.gc();
      await sleep(50);
      global.gc();
      return true;
    },
    stats: () => ({
      connections: gateway.connectedAgents().length,
      answers,
      memory: process.memoryUsage(),
    }),
    dispatch,
    /** Optional (--profile-dir): a V8 CPU profile of this process while `seconds` pass or a dispatch runs. */
    async profile({ seconds, file, dispatchArgs }) {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
      await session.post('Profiler.start');
      const result = dispatchArgs ? await dispatch(dispatchArgs) : await sleep(seconds * 1000);
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      return result ?? true;
    },
    /** A school and a one-time enrolment token for the real agent process. */
    async enrolmentToken() {
      const prisma = server.app.get(PrismaProvider).client;
      const school = await prisma.school.create({
        data: { urn: '999999', laEstab: '999/9999', name: 'Bench Agent School', misType: 'DEMO_SQLITE' },
      });
      const { token } = await server.app.get(AgentsService).createEnrolmentToken(school.id, 1, SYSTEM);
      return { token, schoolId: school.id };
    },
    async stop() {
      await Promise.race([server.stop(), sleep(20_000)]);
      setTimeout(() => process.exit(0), 100);
      return true;
    },
  },
  20 * 60_000,
);

process.send({ ready: true, url: server.url });
