import type { MessageBody, MessageOf, MessageType } from './catalogue.js';
import { createMessage } from './parse.js';

// One valid example of every message, deterministic, for tests (here and in the gateway and agent)
// and for documentation. The job signature has the right shape but is not a real signature.

const AGENT_ID = '3f1c9e52-6b7a-4d1e-9c2f-8a5b4e7d6c01';
const RUN_ID = '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d10';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const NONCE = 'q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA';
const SIGNATURE = `${'A'.repeat(86)}==`;

const bodies = {
  hello: {
    agentId: AGENT_ID,
    agentVersion: '0.1.0',
    os: 'linux 6.1.0 x64',
    misKind: 'SIMS',
    hostname: 'school-srv-01',
  },
  challenge: { nonce: NONCE },
  auth: { agentId: AGENT_ID, signature: SIGNATURE },
  'auth.ok': {
    agentId: AGENT_ID,
    sessionId: '0b6f5c1e-2d3a-4f8b-9e7c-1a2b3c4d5e6f',
    heartbeatIntervalMs: 30_000,
    serverVersion: '0.1.0',
  },
  refused: {
    code: 'protocol.version_unsupported',
    message: 'protocol 2.0 is not supported; this control plane speaks 1.0 to 1.0',
    retryable: false,
    supported: { min: '1.0', max: '1.0' },
  },
  heartbeat: {
    agentVersion: '0.1.0',
    os: 'linux 6.1.0 x64',
    misKind: 'SIMS',
    misVersion: 'Microsoft SQL Server 2019 (RTM) 15.0.2000.5',
    freeDiskBytes: 52_428_800_000,
    queueDepth: 0,
    lastError: null,
    supervised: false,
    credentialsReady: true,
    uptimeSeconds: 3_600,
  },
  'heartbeat.ack': {},
  'work.pull': { maxJobs: 4 },
  'job.offer': {
    job: {
      v: 1,
      alg: 'Ed25519',
      kind: 'job',
      keyId: SHA,
      nonce: NONCE,
      issuedAt: '2025-03-01T09:00:00.000Z',
      expiresAt: '2025-03-01T09:10:00.000Z',
      payload: {
        runId: RUN_ID,
        extractVersionId: '0d8f2a61-2f6e-4f0b-8a9e-54c3b8a1e2f4',
        datasetName: 'pupils',
        sql: 'SELECT pupil_id, surname FROM pupils WHERE year_group = :year AND on_roll_at <= :asAt',
        sqlSha256: SHA,
        parameters: [
          { name: 'year', type: 'integer', value: 7 },
          { name: 'asAt', type: 'date', value: '2025-03-01' },
        ],
        deadline: '2025-03-01T10:00:00.000Z',
        resultKey: {
          alg: 'X25519',
          keyId: SHA,
          publicKey: 'MCowBQYDK2VuAyEA3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=',
        },
      },
      signature: SIGNATURE,
    },
  },
  'job.accept': { runId: RUN_ID, dataKey: { keyId: SHA, wrapped: Buffer.alloc(93, 1).toString('base64') } },
  'job.reject': {
    runId: RUN_ID,
    code: 'job.expired',
    message: 'expired at 2025-03-01T09:10:00.000Z',
    retryable: false,
  },
  'job.cancel': { runId: RUN_ID, reason: 'cancelled by support' },
  'job.progress': { runId: RUN_ID, phase: 'streaming', rowsRead: 12_000, chunksSent: 3, bytesSent: 700_000 },
  chunk: {
    runId: RUN_ID,
    seq: 0,
    byteLength: 5,
    sha256: SHA,
    payload: Buffer.from('hello').toString('base64'),
  },
  'chunk.data': { runId: RUN_ID, seq: 0, byteLength: 5, sha256: SHA },
  'chunk.reuse': { runId: RUN_ID, seq: 1, byteLength: 5, plainSha256: SHA },
  'chunk.ack': { runId: RUN_ID, nextSeq: 1, credits: 8 },
  'run.resume': { runId: RUN_ID, nextSeq: 3 },
  'run.complete': {
    runId: RUN_ID,
    rowCount: 1_250,
    chunkCount: 1,
    byteCount: 5,
    resultSha256: SHA,
    startedAt: '2025-03-01T09:00:01.000Z',
    finishedAt: '2025-03-01T09:00:03.500Z',
    timings: { queryMs: 400, streamMs: 2_100, totalMs: 2_500 },
  },
  'run.failed': { runId: RUN_ID, code: 'mis.unavailable', message: 'connection refused', retryable: true },
  'run.ack': { runId: RUN_ID, outcome: 'completed' },
  error: { code: 'protocol.unknown_type', message: 'unknown message type', details: { type: 'job.offr' } },
} satisfies { [T in MessageType]: MessageBody<T> };

/**
 * A valid message of `type`, identical on every call (fixed id and time), with `body` fields
 * replaced by `overrides`. The `job.offer` example is well formed but not validly signed.
 */
export function exampleMessage<T extends MessageType>(
  type: T,
  overrides: Partial<MessageBody<T>> = {},
): MessageOf<T> {
  const body = { ...structuredClone(bodies[type]), ...overrides } as unknown as MessageBody<T>;
  return createMessage(type, body, {
    id: '5a4f1e2d-3c4b-4a59-8e7f-6a5b4c3d2e1f',
    now: new Date('2025-03-01T09:00:00.000Z'),
  });
}
