import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decryptChunk,
  encryptChunk,
  generateDataKey,
  generateSigningKeyPair,
  sha256Hex,
  wrapKeyForRecipient,
} from '@keystage/crypto';
import { libraryDocumentText } from '@keystage/extract-spec';
import type { Message } from '@keystage/protocol';
import { ResultEncoder } from '@keystage/result-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformKeysService } from '../apps/cloud/src/agents/platform-keys.service.js';
import { AgreementsService } from '../apps/cloud/src/agreements/agreements.service.js';
import { ApiKeysService } from '../apps/cloud/src/api-keys/api-keys.service.js';
import { type RunningServer, startServer } from '../apps/cloud/src/bootstrap.js';
import { loadConfig } from '../apps/cloud/src/config/config.js';
import { PrismaProvider } from '../apps/cloud/src/database/prisma.provider.js';
import { DeliveryService } from '../apps/cloud/src/deliveries/delivery.service.js';
import { ExtractsService } from '../apps/cloud/src/extracts/extracts.service.js';
import { ResultStore } from '../apps/cloud/src/results/result-store.js';
import { RunMessages } from '../apps/cloud/src/runs/run-messages.js';
import { RunSweeper } from '../apps/cloud/src/runs/run-sweeper.js';
import { RunsRepository } from '../apps/cloud/src/runs/runs.repository.js';
import { SnapshotPrebuilds } from '../apps/cloud/src/runs/snapshot-prebuilds.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { json } from './support/http.js';
import { uniquePrefix } from './support/process.js';
import { filesUnder } from './support/recompute.js';

// The ingest side of the gateway, driven message by message: what a forged, replayed, corrupted or
// misdirected chunk gets. The agent is stood in for by this test (it holds the run's data key).
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: null };
let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaProvider['client'];
const objectsDir = mkdtempSync(join(tmpdir(), 'ks-ingest-objects-'));
const workDir = mkdtempSync(join(tmpdir(), 'ks-ingest-work-'));
let agentId: string;
let schoolId: string;
let partnerA: string;
let partnerB: string;
let keyA: string;
let keyB: string;

beforeAll(async () => {
  db = await createTestDatabase('ingest');
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'ingest-test-secret-'.padEnd(48, 'i'),
      PORT: '0',
      LOG_LEVEL: process.env.KS_LOG ?? 'silent',
      REDIS_PREFIX: uniquePrefix('ingest'),
      OBJECT_STORE_DIR: objectsDir,
      WORK_DIR: workDir,
      RUN_SWEEP_INTERVAL_MS: '60000',
    }),
  );
  prisma = server.app.get(PrismaProvider).client;
  const school = await prisma.school.create({
    data: { urn: '400001', laEstab: '873/7001', name: 'Ingest School', misType: 'DEMO_SQLITE' },
  });
  schoolId = school.id;
  const agent = await prisma.agent.create({
    data: { schoolId, publicKey: generateSigningKeyPair().publicKey },
  });
  agentId = agent.id;
  partnerA = (await prisma.partner.create({ data: { slug: 'ingest-a', name: 'A' } })).id;
  partnerB = (await prisma.partner.create({ data: { slug: 'ingest-b', name: 'B' } })).id;
  const keys = server.app.get(ApiKeysService);
  keyA = (await keys.create(partnerA, { name: 'a', scopes: ['deliveries:read', 'runs:read'] }, SYSTEM)).key;
  keyB = (await keys.create(partnerB, { name: 'b', scopes: ['deliveries:read', 'runs:read'] }, SYSTEM)).key;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** A run of the library extract at the school, its first dataset accepted with `dataKey`. */
async function acceptedJob(dataKey: Buffer, options: { resync?: boolean } = {}) {
  const version = await server.app
    .get(ExtractsService)
    .publish(partnerA, libraryDocumentText('school-library'), SYSTEM);
  const agreements = server.app.get(AgreementsService);
  const asked = await agreements.request(
    partnerA,
    {
      schoolId,
      extractVersionIds: [version.id],
      purpose: 'ingest test',
      lawfulBasis: 'public_task',
      retentionDays: 7,
    },
    SYSTEM,
  );
  await agreements.approve(schoolId, asked.id, 'ok', SYSTEM).catch(() => undefined);
  return runningJob({
    schoolId,
    agentId,
    agreementId: asked.id,
    extractVersionId: version.id,
    dataKey,
    ...options,
  });
}

/** A RUNNING manual run with its `pupils` dataset accepted by `agentId` with `dataKey`. */
async function runningJob(o: {
  schoolId: string;
  agentId: string;
  agreementId: string;
  extractVersionId: string;
  dataKey: Buffer;
  reuseJobId?: string;
  resync?: boolean;
}) {
  const jobId = randomUUID();
  const resultKey = await server.app.get(PlatformKeysService).active('result-wrapping');
  const run = await prisma.run.create({
    data: {
      partnerId: partnerA,
      schoolId: o.schoolId,
      agreementId: o.agreementId,
      extractVersionId: o.extractVersionId,
      agentId: o.agentId,
      trigger: 'MANUAL',
      state: 'RUNNING',
      paramsHash: 'a'.repeat(64),
      resync: o.resync ?? false,
      dueAt: new Date(),
      deadlineAt: new Date(Date.now() + 3600_000),
      jobs: {
        create: {
          id: jobId,
          datasetName: 'pupils',
          position: 0,
          state: 'RUNNING',
          agentId: o.agentId,
          resultKeyId: resultKey.keyId,
          wrappedKey: wrapKeyForRecipient(o.dataKey, resultKey.publicKey, jobId).toString('base64'),
          ...(o.reuseJobId ? { reuseJobId: o.reuseJobId } : {}),
        },
      },
    },
  });
  return { runId: run.id, jobId };
}

/** The agent restarted and accepted the job again (through any node) with a new data key: it. */
async function acceptedAgain(jobId: string): Promise<Buffer> {
  const key = generateDataKey();
  const resultKey = await server.app.get(PlatformKeysService).active('result-wrapping');
  await prisma.runJob.update({
    where: { id: jobId },
    data: { nextSeq: 0, wrappedKey: wrapKeyForRecipient(key, resultKey.publicKey, jobId).toString('base64') },
  });
  return key;
}

/**
 * Hands one message to the gateway's run handler as if agent `from` had sent it (with `payload`: the
 * bytes after a `chunk.data` header in its binary frame); returns the replies.
 */
async function send(type: string, body: Record<string, unknown>, from = agentId, payload?: Buffer) {
  const replies: { type: string; body: Record<string, unknown> }[] = [];
  const message = {
    id: randomUUID(),
    type,
    protocolVersion: payload ? '1.3' : '1.1',
    sentAt: new Date().toISOString(),
    body,
  } as unknown as Message;
  await server.app
    .get(RunMessages)
    .handle({ agentId: from, schoolId, message, ...(payload ? { payload } : {}) }, (t, b) =>
      replies.push({ type: t, body: b as Record<string, unknown> }),
    );
  return replies;
}

/** A `chunk.data` message with its bytes, as the gateway hands over a binary chunk frame. */
function sendData(body: Record<string, unknown>, payload: Buffer, from = agentId) {
  return send('chunk.data', body, from, payload);
}

function chunk(runId: string, seq: number, bytes: Buffer) {
  return {
    runId,
    seq,
    byteLength: bytes.length,
    sha256: sha256Hex(bytes),
    payload: bytes.toString('base64'),
  };
}

describe('chunk ingest', () => {
  it('stores a good chunk encrypted, acknowledges it, and takes a replay of it as a harmless duplicate', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const sealed = encryptChunk(Buffer.from('rows of chunk zero'), dataKey, { runId: jobId, seq: 0 });
    expect(await send('chunk', chunk(jobId, 0, sealed))).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ runId: jobId, nextSeq: 1 }) },
    ]);
    const stored = filesUnder(objectsDir).filter((f) => f.includes(jobId));
    expect(stored).toHaveLength(1);
    // A replay of the same chunk: acknowledged again, not stored twice, position unchanged.
    expect(await send('chunk', chunk(jobId, 0, sealed))).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 1 }) },
    ]);
    expect(filesUnder(objectsDir).filter((f) => f.includes(jobId))).toHaveLength(1);
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).nextSeq).toBe(1);
  });

  it('takes chunk.data (1.3, the bytes from its binary frame) as it takes chunk: stored, acknowledged, checked against its sha256, another agent refused', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const sealed0 = encryptChunk(Buffer.from('rows of chunk zero'), dataKey, { runId: jobId, seq: 0 });
    const sealed1 = encryptChunk(Buffer.from('rows of chunk one'), dataKey, { runId: jobId, seq: 1 });
    const { payload: _, ...header0 } = chunk(jobId, 0, sealed0);
    expect(await sendData(header0, sealed0)).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ runId: jobId, nextSeq: 1 }) },
    ]);
    expect(filesUnder(objectsDir).filter((f) => f.includes(jobId))).toHaveLength(1);
    // Bytes that are not the ones the header describes: refused, position unchanged.
    const { payload: __, ...header1 } = chunk(jobId, 1, sealed1);
    const flipped = Buffer.from(sealed1);
    flipped[flipped.length - 1]! ^= 1;
    expect(await sendData(header1, flipped)).toEqual([
      { type: 'error', body: expect.objectContaining({ code: 'chunk.digest_mismatch' }) },
    ]);
    // Another agent cannot push into this run.
    const intruder = await prisma.agent.create({
      data: { schoolId, publicKey: generateSigningKeyPair().publicKey },
    });
    expect((await sendData(header1, sealed1, intruder.id)).map((r) => r.type)).toEqual([
      'error',
      'job.cancel',
    ]);
    expect(await sendData(header1, sealed1)).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 2 }) },
    ]);
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).nextSeq).toBe(2);
  });

  it('answers job.cancel to the next chunk of a job cancelled elsewhere mid-upload, and stores nothing of it', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const seal = (seq: number) => encryptChunk(Buffer.from(`chunk ${seq}`), dataKey, { runId: jobId, seq });
    expect((await send('chunk', chunk(jobId, 0, seal(0))))[0]).toMatchObject({ body: { nextSeq: 1 } });
    // Another node cancels the job while chunks are in flight.
    await prisma.runJob.update({ where: { id: jobId }, data: { state: 'CANCELLED' } });
    const replies = await send('chunk', chunk(jobId, 1, seal(1)));
    expect(replies).toEqual([{ type: 'job.cancel', body: expect.objectContaining({ runId: jobId }) }]);
    expect(filesUnder(objectsDir).filter((f) => f.includes(jobId))).toHaveLength(1);
    const job = await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(job.nextSeq).toBe(1);
    expect(await prisma.runChunk.count({ where: { jobId } })).toBe(1);
  });

  it('takes a new upload of the job under its new key from the start (the agent restarted)', async () => {
    const first = generateDataKey();
    const { jobId } = await acceptedJob(first);
    const sealed0 = encryptChunk(Buffer.from('old zero'), first, { runId: jobId, seq: 0 });
    expect((await send('chunk', chunk(jobId, 0, sealed0)))[0]).toMatchObject({ body: { nextSeq: 1 } });
    // The agent restarted and accepted the job again (through another node) with a new data key.
    const second = await acceptedAgain(jobId);
    const fresh0 = encryptChunk(Buffer.from('new zero'), second, { runId: jobId, seq: 0 });
    expect(await send('chunk', chunk(jobId, 0, fresh0))).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 1 }) },
    ]);
    const job = await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(job.state).toBe('RUNNING');
    expect(job.nextSeq).toBe(1);
  });

  it('refuses a chunk whose bytes do not match its sha256, and keeps the upload where it was', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const sealed = encryptChunk(Buffer.from('chunk'), dataKey, { runId: jobId, seq: 0 });
    const bad = chunk(jobId, 0, sealed);
    bad.sha256 = sha256Hex(Buffer.from('something else'));
    const replies = await send('chunk', bad);
    expect(replies[0]).toMatchObject({ type: 'error', body: { code: 'chunk.digest_mismatch' } });
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).nextSeq).toBe(0);
  });

  it('refuses a chunk replayed from another run or position (it does not authenticate) and retries the run', async () => {
    const dataKey = generateDataKey();
    const { jobId, runId } = await acceptedJob(dataKey);
    // Sealed for position 5: presented as position 0 it does not open.
    const moved = encryptChunk(Buffer.from('chunk'), dataKey, { runId: jobId, seq: 5 });
    const replies = await send('chunk', chunk(jobId, 0, moved));
    expect(replies.map((r) => r.type)).toEqual(['error', 'job.cancel']);
    expect(replies[0]!.body).toMatchObject({ code: 'chunk.rejected' });
    // The run is retried from scratch: its job waits again, its data key forgotten.
    const run = await prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run.state).toBe('SCHEDULED');
    expect(run.attempt).toBe(1);
    expect(run.errorCode).toBe('result.chunk_rejected');
    const job = await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(job).toMatchObject({ state: 'PENDING', wrappedKey: null, nextSeq: 0 });
    expect(filesUnder(objectsDir).filter((f) => f.includes(jobId))).toHaveLength(0);

    // Sealed with another run's key: refused the same way.
    const other = await acceptedJob(generateDataKey());
    const foreign = encryptChunk(Buffer.from('chunk'), dataKey, { runId: other.jobId, seq: 0 });
    const again = await send('chunk', chunk(other.jobId, 0, foreign));
    expect(again[0]).toMatchObject({ type: 'error', body: { code: 'chunk.rejected' } });
  });

  it('answers run.unknown to an agent speaking of a job that is not its own', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const sealed = encryptChunk(Buffer.from('chunk'), dataKey, { runId: jobId, seq: 0 });
    const intruder = await prisma.agent.create({
      data: { schoolId, publicKey: generateSigningKeyPair().publicKey },
    });
    const replies = await send('chunk', chunk(jobId, 0, sealed), intruder.id);
    // Told the job is not its own, and to stop it (an agent holding a stale offer would stay busy).
    expect(replies).toEqual([
      { type: 'error', body: expect.objectContaining({ code: 'run.unknown' }) },
      { type: 'job.cancel', body: expect.objectContaining({ runId: jobId }) },
    ]);
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).nextSeq).toBe(0);
    const reuse = await send(
      'chunk.reuse',
      { runId: jobId, seq: 0, byteLength: sealed.length, plainSha256: sha256Hex(Buffer.from('chunk')) },
      intruder.id,
    );
    expect(reuse.map((r) => r.type)).toEqual(['error', 'job.cancel']);
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).nextSeq).toBe(0);
  });

  it('does not complete a dataset before every chunk is stored', async () => {
    const dataKey = generateDataKey();
    const { jobId } = await acceptedJob(dataKey);
    const replies = await send('run.complete', {
      runId: jobId,
      rowCount: 10,
      chunkCount: 2,
      byteCount: 100,
      resultSha256: 'b'.repeat(64),
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      timings: { queryMs: 1, streamMs: 1, totalMs: 2 },
    });
    expect(replies).toEqual([{ type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 0 }) }]);
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: jobId } })).state).toBe('RUNNING');
  });
});

// A result as the agent sends it, for the tests of what processing makes of one.
// The library's `pupils` dataset, keyed by (pupil_id, admission_date).
const columns = [
  'pupil_id',
  'admission_number',
  'forename',
  'surname',
  'year_group',
  'reg_group',
  'house',
  'admission_date',
  'leaving_date',
];
const rows = Array.from({ length: 3000 }, (_, i) => [
  i + 1,
  `A${String(i).padStart(5, '0')}`,
  `Forename ${i}`,
  `Surname, "${i}"`,
  `Year ${7 + (i % 5)}`,
  i % 7 === 0 ? null : `${7 + (i % 5)}X`,
  null,
  '2024-09-04',
  i % 11 === 0 ? '2025-07-18' : null,
]);

/** The result of `rows` as the agent would send it, in small chunks (many of them). */
function encode(jobId: string, dataKey: Buffer) {
  const encoder = new ResultEncoder({ runId: jobId, dataKey, columns, targetChunkBytes: 8 * 1024 });
  const chunks = rows.flatMap((r) => encoder.push(r));
  const { chunks: last, summary } = encoder.finish();
  return { chunks: [...chunks, ...last], summary };
}

async function sendAll(jobId: string, chunks: ReturnType<typeof encode>['chunks'], from = 0) {
  for (const c of chunks.slice(from)) {
    const replies = await send('chunk', chunk(jobId, c.seq, c.bytes));
    expect(replies[0]).toMatchObject({ type: 'chunk.ack', body: { nextSeq: c.seq + 1 } });
  }
}

async function complete(jobId: string, summary: ReturnType<typeof encode>['summary']) {
  const now = new Date().toISOString();
  await send('run.complete', {
    runId: jobId,
    ...summary,
    startedAt: now,
    finishedAt: now,
    timings: { queryMs: 1, streamMs: 1, totalMs: 2 },
  });
}

/** Waits for the run to be processed; its `run.processed` audit details. */
async function processed(runId: string) {
  for (let i = 0; i < 200; i++) {
    const event = await prisma.auditEvent.findFirst({
      where: { targetId: runId, action: 'run.processed' },
    });
    if (event) return event.details as { decodedAhead: number };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${runId} was not processed`);
}

/** The run's change set as the partner reads it. */
async function content(runId: string) {
  const d = await prisma.delivery.findFirstOrThrow({ where: { runId } });
  expect(d.contentEncoding).toBe('snapshot');
  const parts: Buffer[] = [];
  const stream = await server.app.get(ResultStore).getContent(schoolId, d.objectKey, d.contentEncoding);
  for await (const part of stream) parts.push(part as Buffer);
  const lines = Buffer.concat(parts).toString('utf8').trim().split('\n');
  // Rows in key order, each with its values (the header line names the columns).
  expect(lines.length).toBe(rows.length + 1);
  return lines;
}

const aheadDirs = () => readdirSync(workDir).filter((d) => d.startsWith('ahead-'));

describe('decoding ahead', () => {
  it('builds the snapshot while the chunks arrive: processing only finishes it, with the same rows as decoding the stored chunks', async () => {
    const keyA = generateDataKey();
    const a = await acceptedJob(keyA, { resync: true });
    const sentA = encode(a.jobId, keyA);
    expect(sentA.chunks.length).toBeGreaterThan(10);
    await sendAll(a.jobId, sentA.chunks);
    expect(aheadDirs()).toHaveLength(1);
    await complete(a.jobId, sentA.summary);
    expect((await processed(a.runId)).decodedAhead).toBe(1);
    const linesA = await content(a.runId);
    expect(linesA.slice(1).map((l) => l.split(',')[1])).toEqual(rows.map((r) => String(r[0])));

    // The same rows with the head start dropped halfway: processing decodes the stored chunks.
    const keyB = generateDataKey();
    const b = await acceptedJob(keyB, { resync: true });
    const sentB = encode(b.jobId, keyB);
    const half = Math.floor(sentB.chunks.length / 2);
    await sendAll(b.jobId, sentB.chunks.slice(0, half));
    server.app.get(SnapshotPrebuilds).release(b.jobId);
    await sendAll(b.jobId, sentB.chunks, half);
    await complete(b.jobId, sentB.summary);
    expect((await processed(b.runId)).decodedAhead).toBe(0);
    expect(await content(b.runId)).toEqual(linesA);
    expect(aheadDirs()).toHaveLength(0);
  });

  it('starts over when the agent restarts the upload under a new key, and leaves nothing behind for an upload that fails', async () => {
    const first = generateDataKey();
    const { jobId, runId } = await acceptedJob(first, { resync: true });
    await sendAll(jobId, encode(jobId, first).chunks.slice(0, 3));
    // The agent restarted and accepted the job again with a new data key.
    const second = await acceptedAgain(jobId);
    const sent = encode(jobId, second);
    await sendAll(jobId, sent.chunks);
    await complete(jobId, sent.summary);
    expect((await processed(runId)).decodedAhead).toBe(1);
    expect(await content(runId)).toHaveLength(rows.length + 1);

    const key = generateDataKey();
    const failing = await acceptedJob(key, { resync: true });
    await sendAll(failing.jobId, encode(failing.jobId, key).chunks.slice(0, 4));
    expect(aheadDirs()).toHaveLength(1);
    await send('run.failed', {
      runId: failing.jobId,
      code: 'mis.unavailable',
      message: 'the MIS went away',
      retryable: false,
    });
    for (let i = 0; i < 50 && aheadDirs().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(aheadDirs()).toHaveLength(0);
  });
});

describe('full loads kept as their snapshots', () => {
  /** A full load of `rows` through the gateway, processed; its run, job and snapshot key. */
  async function fullLoad() {
    const key = generateDataKey();
    const { jobId, runId } = await acceptedJob(key, { resync: true });
    const sent = encode(jobId, key);
    await sendAll(jobId, sent.chunks);
    await complete(jobId, sent.summary);
    await processed(runId);
    const state = await prisma.deltaState.findFirstOrThrow({ where: { runId } });
    return { runId, snapshotKey: state.snapshotKey };
  }
  const stored = (key: string) => filesUnder(objectsDir).some((f) => f.endsWith(key));

  it('keeps a full load’s snapshot while its change set can be read, then deletes it with the run’s other data', async () => {
    const a = await fullLoad();
    const delivery = await prisma.delivery.findFirstOrThrow({ where: { runId: a.runId } });
    expect(delivery).toMatchObject({ contentEncoding: 'snapshot', byteSize: null, insertCount: rows.length });
    // Read in full once: its size is known from then on.
    await fetch(`${server.url}/partners/${partnerA}/deliveries/${delivery.id}/content`, {
      headers: { 'x-api-key': keyA },
    }).then((r) => r.text());
    await expect
      .poll(async () => (await prisma.delivery.findUniqueOrThrow({ where: { id: delivery.id } })).byteSize)
      .toBeGreaterThan(100_000n);
    // A later full load moves the delta on; the first one's change set still reads the same.
    const b = await fullLoad();
    expect(b.snapshotKey).not.toBe(a.snapshotKey);
    expect(stored(a.snapshotKey)).toBe(true);
    expect(await content(a.runId)).toEqual(await content(b.runId));
    // Its retention passes: the change set and the snapshot behind it go (audited with the rest).
    const sweeper = server.app.get(RunSweeper);
    await prisma.run.updateMany({
      where: { id: { in: [a.runId, b.runId] } },
      data: { state: 'DELIVERED', finishedAt: new Date(Date.now() - 8 * 86_400_000) },
    });
    await sweeper.purgeExpired();
    expect(stored(a.snapshotKey)).toBe(false);
    expect(filesUnder(objectsDir).filter((f) => f.includes(a.runId))).toHaveLength(0);
    const audit = await prisma.auditEvent.findFirst({ where: { targetId: a.runId, action: 'data.deleted' } });
    const details = audit?.details as { objects: number } | undefined;
    expect(details?.objects).toBeGreaterThanOrEqual(2);
    // The newer one's snapshot is the delta state's: its change set goes, the snapshot stays.
    expect(stored(b.snapshotKey)).toBe(true);
  });
});

describe('work files', () => {
  const renderDirs = () => readdirSync(workDir).filter((d) => d.startsWith('render-'));

  it('leaves no written-out copy of a full load behind when a webhook cannot be reached', async () => {
    const key = generateDataKey();
    const { jobId, runId } = await acceptedJob(key, { resync: true });
    const sent = encode(jobId, key);
    await sendAll(jobId, sent.chunks);
    await complete(jobId, sent.summary);
    await processed(runId);
    const deliveries = server.app.get(DeliveryService);
    // Nothing listens on port 9 here: the connection is refused before any body is read.
    await deliveries.setWebhook(partnerA, 'http://127.0.0.1:9/hook', SYSTEM);
    const d = await prisma.delivery.findFirstOrThrow({ where: { runId } });
    await prisma.delivery.update({ where: { id: d.id }, data: { sink: 'WEBHOOK' } });
    await expect(deliveries.send(d.id, 0, false)).rejects.toThrow(/fetch failed|ECONNREFUSED/);
    await expect.poll(renderDirs).toEqual([]);
  });

  it('clears work directories a stopped process left behind, and only those nobody touched for hours', async () => {
    const old = join(workDir, 'render-left-behind');
    const fresh = join(workDir, 'ahead-in-use');
    mkdirSync(old);
    mkdirSync(fresh);
    const hoursAgo = new Date(Date.now() - 7 * 3600_000);
    utimesSync(old, hoursAgo, hoursAgo);
    await server.app.get(ResultStore).onModuleInit();
    expect(readdirSync(workDir)).not.toContain('render-left-behind');
    expect(readdirSync(workDir)).toContain('ahead-in-use');
    rmSync(fresh, { recursive: true });
  });
});

describe('chunk reuse (protocol 1.2)', () => {
  const plain = Buffer.from('the plaintext of chunk zero, as the agent would seal it');
  const digest = sha256Hex(plain);

  /** A finished earlier result: job A's chunk 0 uploaded through the handler, the run processed. */
  async function earlierResult() {
    const key = generateDataKey();
    const a = await acceptedJob(key);
    const sealed = encryptChunk(plain, key, { runId: a.jobId, seq: 0 });
    await send('chunk', chunk(a.jobId, 0, sealed));
    await prisma.runJob.update({
      where: { id: a.jobId },
      data: { state: 'UPLOADED', chunkCount: 1, uploadedAt: new Date() },
    });
    await prisma.run.update({ where: { id: a.runId }, data: { state: 'PROCESSED' } });
    return { ...a, sealedLength: sealed.length };
  }

  it('re-seals the stored copy of an unchanged chunk for the new run, without its bytes being sent', async () => {
    const a = await earlierResult();
    const keyB = generateDataKey();
    const b = await acceptedJob(keyB);
    const runB = (await server.app.get(RunsRepository).find(b.runId))!;
    const resultKey = await server.app.get(PlatformKeysService).active('result-wrapping');
    // What the dispatcher offers: A's chunk digests (recorded at ingest).
    const source = await server.app.get(RunsRepository).reuseSource(runB, 'pupils', resultKey.keyId, 4096);
    expect(source).toEqual({ jobId: a.jobId, chunks: [digest] });
    await prisma.runJob.update({ where: { id: b.jobId }, data: { reuseJobId: a.jobId } });

    const replies = await send('chunk.reuse', {
      runId: b.jobId,
      seq: 0,
      byteLength: a.sealedLength,
      plainSha256: digest,
    });
    expect(replies).toEqual([{ type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 1 }) }]);
    expect(replies[0]!.body.reuse).toBeUndefined();
    const job = await prisma.runJob.findUniqueOrThrow({ where: { id: b.jobId } });
    expect(job).toMatchObject({ nextSeq: 1, reusedChunks: 1, reusedBytes: BigInt(a.sealedLength) });
    // Stored sealed under B's own key, id and position: it opens with B's key to A's plaintext.
    const results = server.app.get(ResultStore);
    const stored = await results.getBuffer(schoolId, results.chunkKey(b.runId, b.jobId, 0));
    expect(decryptChunk(stored, keyB, { runId: b.jobId, seq: 0 }).equals(plain)).toBe(true);
  });

  it('answers reuse: false (send the bytes) for a digest that differs, or when nothing was offered', async () => {
    const a = await earlierResult();
    const b = await acceptedJob(generateDataKey());
    await prisma.runJob.update({ where: { id: b.jobId }, data: { reuseJobId: a.jobId } });
    const wrong = await send('chunk.reuse', {
      runId: b.jobId,
      seq: 0,
      byteLength: a.sealedLength,
      plainSha256: sha256Hex(Buffer.from('other rows')),
    });
    expect(wrong).toEqual([
      { type: 'chunk.ack', body: expect.objectContaining({ nextSeq: 0, reuse: false }) },
    ]);
    const c = await acceptedJob(generateDataKey());
    const none = await send('chunk.reuse', {
      runId: c.jobId,
      seq: 0,
      byteLength: a.sealedLength,
      plainSha256: digest,
    });
    expect(none[0]!.body).toMatchObject({ nextSeq: 0, reuse: false });
    expect((await prisma.runJob.findUniqueOrThrow({ where: { id: b.jobId } })).reusedChunks).toBe(0);
  });

  it('knows a fully reused dataset unchanged only for the same extract version, digest and delta state', async () => {
    const a = await earlierResult();
    const params = 'e'.repeat(64);
    const digestA = 'c'.repeat(64);
    await prisma.run.update({ where: { id: a.runId }, data: { paramsHash: params } });
    await prisma.runJob.update({ where: { id: a.jobId }, data: { rowCount: 5, resultSha256: digestA } });
    const runA = await prisma.run.findUniqueOrThrow({
      where: { id: a.runId },
      select: { extractVersionId: true, extractVersion: { select: { extractId: true } } },
    });
    const extractId = runA.extractVersion.extractId;
    await prisma.deltaState.create({
      data: {
        schoolId,
        extractId,
        datasetName: 'pupils',
        paramsHash: params,
        snapshotKey: 'snapshots/reuse-test.snap',
        rowCount: 5,
        runId: a.runId,
        runUploadedAt: new Date(),
      },
    });
    const b = await acceptedJob(generateDataKey());
    await prisma.run.update({
      where: { id: b.runId },
      data: { paramsHash: params, extractVersionId: runA.extractVersionId },
    });
    const jobB = {
      datasetName: 'pupils',
      reuseJobId: a.jobId,
      reusedChunks: 1,
      chunkCount: 1,
      rowCount: 5,
      resultSha256: digestA,
    };
    const runB = { schoolId, paramsHash: params, extractVersionId: runA.extractVersionId };
    const repo = server.app.get(RunsRepository);
    expect(await repo.unchangedSnapshot(runB, extractId, jobB)).toEqual({
      snapshotKey: 'snapshots/reuse-test.snap',
      rowCount: 5,
      sourceRunId: a.runId,
    });
    // Another version of the extract may key the same rows differently: a full pass decides.
    expect(
      await repo.unchangedSnapshot({ ...runB, extractVersionId: randomUUID() }, extractId, jobB),
    ).toBeNull();
    // An agent claiming another whole-result digest, or a chunk not reused: a full pass.
    expect(
      await repo.unchangedSnapshot(runB, extractId, { ...jobB, resultSha256: 'd'.repeat(64) }),
    ).toBeNull();
    expect(await repo.unchangedSnapshot(runB, extractId, { ...jobB, reusedChunks: 0 })).toBeNull();
    // The delta state moved on to another result: its snapshot is not this one's.
    await prisma.deltaState.updateMany({ where: { schoolId, paramsHash: params }, data: { runId: b.runId } });
    expect(await repo.unchangedSnapshot(runB, extractId, jobB)).toBeNull();
  });

  it("never reuses another school's chunk, even when pointed at it", async () => {
    const a = await earlierResult();
    const other = await prisma.school.create({
      data: { urn: '400002', laEstab: '873/7002', name: 'Other School', misType: 'DEMO_SQLITE' },
    });
    const otherAgent = await prisma.agent.create({
      data: { schoolId: other.id, publicKey: generateSigningKeyPair().publicKey },
    });
    const template = await prisma.run.findUniqueOrThrow({ where: { id: a.runId } });
    const { jobId } = await runningJob({
      schoolId: other.id,
      agentId: otherAgent.id,
      agreementId: template.agreementId,
      extractVersionId: template.extractVersionId,
      dataKey: generateDataKey(),
      reuseJobId: a.jobId,
    });
    const replies = await send(
      'chunk.reuse',
      { runId: jobId, seq: 0, byteLength: a.sealedLength, plainSha256: digest },
      otherAgent.id,
    );
    expect(replies[0]!.body).toMatchObject({ nextSeq: 0, reuse: false });
    expect(filesUnder(objectsDir).filter((f) => f.includes(jobId))).toHaveLength(0);
  });
});

describe('retention', () => {
  it('deletes a finished run’s stored results once its agreement’s retention has passed, and audits it', async () => {
    const dataKey = generateDataKey();
    const { jobId, runId } = await acceptedJob(dataKey);
    const sealed = encryptChunk(Buffer.from('kept for a while'), dataKey, { runId: jobId, seq: 0 });
    await send('chunk', chunk(jobId, 0, sealed));
    expect(filesUnder(objectsDir).filter((f) => f.includes(runId))).toHaveLength(1);
    const sweeper = server.app.get(RunSweeper);
    // Finished yesterday, retention 7 days: kept.
    await prisma.run.update({
      where: { id: runId },
      data: { state: 'DELIVERED', finishedAt: new Date(Date.now() - 86_400_000) },
    });
    await sweeper.purgeExpired();
    expect(filesUnder(objectsDir).filter((f) => f.includes(runId))).toHaveLength(1);
    // Finished 8 days ago: deleted, recorded, audited.
    await prisma.run.update({
      where: { id: runId },
      data: { finishedAt: new Date(Date.now() - 8 * 86_400_000) },
    });
    await sweeper.purgeExpired();
    expect(filesUnder(objectsDir).filter((f) => f.includes(runId))).toHaveLength(0);
    expect((await prisma.run.findUniqueOrThrow({ where: { id: runId } })).purgedAt).not.toBeNull();
    const audit = await prisma.auditEvent.findFirst({ where: { targetId: runId, action: 'data.deleted' } });
    expect(audit?.details).toMatchObject({ objects: 1, reason: 'retention period passed' });
  });
});

describe('feeds are the partner’s own', () => {
  it('partner B cannot read partner A’s feed, deliveries or change-set content', async () => {
    const feedA = await fetch(`${server.url}/partners/${partnerA}/feed`, { headers: { 'x-api-key': keyA } });
    expect(feedA.status).toBe(200);
    for (const path of [
      `/partners/${partnerA}/feed`,
      `/partners/${partnerA}/deliveries`,
      `/partners/${partnerA}/deliveries/${randomUUID()}/content`,
    ]) {
      const res = await fetch(`${server.url}${path}`, { headers: { 'x-api-key': keyB } });
      expect(res.status, path).toBe(403);
    }
    // A's delivery id through B's own path: not found (scoped by partner), not A's data.
    const delivery = await prisma.delivery.create({
      data: {
        runId: (await prisma.run.findFirstOrThrow({ where: { partnerId: partnerA } })).id,
        partnerId: partnerA,
        schoolId,
        extractId: (await prisma.extract.findFirstOrThrow({ where: { partnerId: partnerA } })).id,
        sink: 'PULL',
        format: 'ndjson',
        idempotencyKey: randomUUID(),
        objectKey: 'changesets/x/y.ndjson',
        contentType: 'application/x-ndjson',
      },
    });
    const res = await fetch(`${server.url}/partners/${partnerB}/deliveries/${delivery.id}/content`, {
      headers: { 'x-api-key': keyB },
    });
    expect(res.status).toBe(404);
    expect((await json(res)).code).toBe('delivery.not_found');
  });
});
