import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDataKey } from '@keystage/crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ResultDecoder } from './decoder.js';
import { type EncodedChunk, ResultEncoder, type ResultSummary } from './encoder.js';
import { type ChunkAckBody, IngestCursor } from './ingest.js';
import { SpillBuffer } from './spill.js';
import { UploadWindow } from './upload-window.js';

const RUN = 'd2c1b0a9-8f7e-4d6c-9b5a-4f3e2d1c0b9a';
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('agent ↔ cloud over a lossy connection', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'keystage-flow-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('delivers every row exactly once despite lost acks, replays, pauses and reconnects', async () => {
    const dataKey = generateDataKey();
    const columns = ['pupil_id', 'date', 'session', 'code', 'minutes_late', 'comment'];
    const rows = Array.from({ length: 20_000 }, (_, i) => [
      100_000 + (i % 900),
      `2025-10-${String(1 + (i % 28)).padStart(2, '0')}`,
      i % 2 ? 'PM' : 'AM',
      '/\\LMN'[i % 5],
      i % 13 === 0 ? i % 30 : null,
      i % 17 === 0 ? `comment ${i} ✓` : null,
    ]);

    // Agent.
    const encoder = new ResultEncoder({ runId: RUN, dataKey, columns, targetChunkBytes: 4096 });
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 16 * 1024 });
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 3, spill });
    let summary: ResultSummary | undefined;
    let maxBuffered = 0;
    let maxSpilled = 0;
    const produce = async (chunk: EncodedChunk) => {
      await window.room({ bytes: chunk.byteLength });
      await window.add(chunk);
      maxBuffered = Math.max(maxBuffered, window.inMemoryCount);
      maxSpilled = Math.max(maxSpilled, window.spilledCount);
    };
    const producer = (async () => {
      for (const row of rows) for (const chunk of encoder.push(row)) await produce(chunk);
      const finished = encoder.finish();
      for (const chunk of finished.chunks) await produce(chunk);
      summary = finished.summary;
    })();

    // Cloud.
    const cursor = new IngestCursor({ runId: RUN, credits: 6 });
    const decoder = new ResultDecoder({ runId: RUN, dataKey });
    const received: unknown[][] = [];
    let duplicates = 0;
    let processed = 0;

    let toCloud: EncodedChunk[] = [];
    let toAgent: ChunkAckBody[] = [cursor.ack()];
    for (let step = 0; step < 10_000; step++) {
      // Agent → wire.
      for (const chunk of await window.sendable()) toCloud.push(chunk);
      if (step % 7 === 3 && toCloud.length > 0) toCloud.push(toCloud[0]!); // a replayed chunk
      // Wire → cloud.
      for (const chunk of toCloud) {
        if (cursor.receive(chunk.seq) === 'duplicate') {
          duplicates++;
        } else {
          const opened = decoder.open(chunk.seq, chunk.bytes, chunk.sha256);
          if (opened.status === 'opened') received.push(...opened.rows);
          cursor.commit(chunk.seq);
          processed++;
        }
        toAgent.push(cursor.ack());
      }
      toCloud = [];
      toAgent.push(cursor.ack({ overloaded: step % 5 === 0 }));
      // Wire → agent, losing some acks on the way.
      toAgent.forEach((ack, i) => {
        if (i % 3 !== 1 || i === toAgent.length - 1) window.onAck(ack);
      });
      toAgent = [];
      // Now and then the connection drops and the agent resumes.
      if (step % 11 === 10) {
        const resume = window.resetForReconnect();
        toAgent.push(cursor.resume(resume.nextSeq));
      }
      await settle();
      if (summary && window.allAcked) break;
    }
    await producer;

    expect(summary).toBeDefined();
    expect(window.allAcked).toBe(true);
    expect(duplicates).toBeGreaterThan(0);
    expect(processed).toBe(summary!.chunkCount);
    expect(summary!.chunkCount).toBeGreaterThan(50);
    expect(maxBuffered).toBeLessThanOrEqual(3);
    expect(maxSpilled).toBeGreaterThan(0);
    expect(decoder.finish(summary!)).toMatchObject({ rowCount: 20_000, columns });
    expect(received).toEqual(rows);
    await window.dispose();
    expect(existsSync(join(root, RUN))).toBe(false);
  });
});
