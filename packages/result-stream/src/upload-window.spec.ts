import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@keystage/crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EncodedChunk } from './encoder.js';
import { BufferFullError } from './errors.js';
import { SpillBuffer } from './spill.js';
import { UploadWindow } from './upload-window.js';

const RUN = '3c0a6e1f-2b4d-4f8a-9e7c-5d1b0a2f3e4c';
const code = (c: string) => expect.objectContaining({ code: c });

function chunk(seq: number, size = 1000): EncodedChunk {
  const bytes = randomBytes(size);
  return {
    seq,
    bytes,
    sha256: sha256Hex(bytes),
    byteLength: size,
    rowCount: 10,
    plainSha256: `${seq}`.repeat(64).slice(0, 64),
  };
}

function chunks(n: number, size = 1000): EncodedChunk[] {
  return Array.from({ length: n }, (_, seq) => chunk(seq, size));
}

async function fill(window: UploadWindow, list: EncodedChunk[]): Promise<void> {
  for (const c of list) await window.add(c);
}

const seqs = (list: EncodedChunk[]) => list.map((c) => c.seq);

/** Calls sendable() until it returns nothing, as a sender loop does. */
async function drain(window: UploadWindow): Promise<EncodedChunk[]> {
  const out: EncodedChunk[] = [];
  for (let batch = await window.sendable(); batch.length > 0; batch = await window.sendable()) {
    out.push(...batch);
  }
  return out;
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('UploadWindow credits', () => {
  it('sends nothing before the first ack, then only inside nextSeq + credits', async () => {
    const window = new UploadWindow({ runId: RUN });
    await fill(window, chunks(10));
    expect(await window.sendable()).toEqual([]);
    window.onAck({ runId: RUN, nextSeq: 0, credits: 3 });
    expect(seqs(await window.sendable())).toEqual([0, 1, 2]);
    expect(await window.sendable()).toEqual([]); // already sent on this connection
    window.onAck({ nextSeq: 2, credits: 3 });
    expect(window.bufferedCount).toBe(8);
    expect(seqs(await window.sendable())).toEqual([3, 4]);
    window.onAck({ nextSeq: 5, credits: 0 }); // paused
    expect(await window.sendable()).toEqual([]);
    window.onAck({ nextSeq: 5, credits: 100 });
    expect(seqs(await window.sendable())).toEqual([5, 6, 7, 8, 9]);
    window.onAck({ nextSeq: 10, credits: 100 });
    expect(window.allAcked).toBe(true);
    expect(window.bufferedCount).toBe(0);
  });

  it('hands out at most `limit` chunks per call', async () => {
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 64 });
    await fill(window, chunks(40));
    window.onAck({ nextSeq: 0, credits: 256 });
    expect(seqs(await window.sendable(5))).toEqual([0, 1, 2, 3, 4]);
    expect((await window.sendable()).length).toBe(35);
  });

  it('sends chunks produced after the ack once they are inside the window', async () => {
    const window = new UploadWindow({ runId: RUN });
    const list = chunks(6);
    window.onAck({ nextSeq: 0, credits: 4 });
    await fill(window, list.slice(0, 2));
    expect(seqs(await window.sendable())).toEqual([0, 1]);
    await fill(window, list.slice(2));
    expect(seqs(await window.sendable())).toEqual([2, 3]);
  });

  it('is unharmed by a lost ack', async () => {
    const window = new UploadWindow({ runId: RUN });
    await fill(window, chunks(8));
    window.onAck({ nextSeq: 0, credits: 2 });
    expect(seqs(await window.sendable())).toEqual([0, 1]);
    // { nextSeq: 1, credits: 2 } is lost; the next one covers it.
    window.onAck({ nextSeq: 2, credits: 2 });
    expect(window.ackedSeq).toBe(2);
    expect(window.bufferedCount).toBe(6);
    expect(seqs(await window.sendable())).toEqual([2, 3]);
  });

  it('is unharmed by a duplicated or stale ack', async () => {
    const window = new UploadWindow({ runId: RUN });
    await fill(window, chunks(8));
    window.onAck({ nextSeq: 0, credits: 4 });
    expect(seqs(await window.sendable())).toEqual([0, 1, 2, 3]);
    window.onAck({ nextSeq: 3, credits: 4 });
    window.onAck({ nextSeq: 3, credits: 4 });
    expect(window.ackedSeq).toBe(3);
    expect(window.bufferedCount).toBe(5);
    expect(seqs(await window.sendable())).toEqual([4, 5, 6]);
    window.onAck({ nextSeq: 1, credits: 2 }); // older than what we know: releases nothing, resends nothing
    expect(window.ackedSeq).toBe(3);
    expect(await window.sendable()).toEqual([]);
  });

  it('refuses acks of chunks never produced or of another run', async () => {
    const window = new UploadWindow({ runId: RUN });
    await fill(window, chunks(2));
    expect(() => window.onAck({ nextSeq: 3, credits: 1 })).toThrow(code('upload.invalid_ack'));
    expect(() => window.onAck({ nextSeq: -1, credits: 1 })).toThrow(code('upload.invalid_ack'));
    expect(() => window.onAck({ runId: 'another', nextSeq: 0, credits: 1 })).toThrow(
      code('result.invalid_argument'),
    );
  });

  it('takes chunks in seq order only', async () => {
    const window = new UploadWindow({ runId: RUN });
    await expect(window.add(chunk(1))).rejects.toThrow(
      expect.objectContaining({ code: 'result.invalid_argument' }),
    );
  });
});

describe('UploadWindow reconnect', () => {
  it('resends every unacknowledged chunk from the seq the cloud answers', async () => {
    const window = new UploadWindow({ runId: RUN });
    const list = chunks(10);
    await fill(window, list);
    window.onAck({ nextSeq: 0, credits: 6 });
    expect(seqs(await window.sendable())).toEqual([0, 1, 2, 3, 4, 5]);
    window.onAck({ nextSeq: 2, credits: 6 });
    // The connection drops: 2–7 may or may not have arrived.
    expect(window.resetForReconnect()).toEqual({ runId: RUN, nextSeq: 2 });
    expect(await window.sendable()).toEqual([]); // wait for the cloud's answer to run.resume
    window.onAck({ runId: RUN, nextSeq: 4, credits: 3 }); // the cloud had stored 2 and 3
    const resent = await window.sendable();
    expect(seqs(resent)).toEqual([4, 5, 6]);
    expect(resent[0]!.bytes.equals(list[4]!.bytes)).toBe(true);
    expect(window.ackedSeq).toBe(4);
  });

  it('fails when the cloud resumes below chunks already released', async () => {
    const window = new UploadWindow({ runId: RUN });
    await fill(window, chunks(5));
    window.onAck({ nextSeq: 3, credits: 2 });
    window.resetForReconnect();
    expect(() => window.onAck({ nextSeq: 1, credits: 2 })).toThrow(code('upload.resume_behind'));
  });
});

describe('UploadWindow backpressure (memory only)', () => {
  it('makes the producer wait until an ack frees room', async () => {
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 2 });
    const list = chunks(5);
    const added: number[] = [];
    const producer = (async () => {
      for (const c of list) {
        await window.room();
        await window.add(c);
        added.push(c.seq);
      }
    })();
    await settle();
    expect(added).toEqual([0, 1]);
    window.onAck({ nextSeq: 0, credits: 8 }); // credits alone do not free memory
    await settle();
    expect(added).toEqual([0, 1]);
    expect(window.inMemoryCount).toBe(2);
    window.onAck({ nextSeq: 1, credits: 8 });
    await settle();
    expect(added).toEqual([0, 1, 2]);
    window.onAck({ nextSeq: 3, credits: 8 });
    await settle();
    expect(added).toEqual([0, 1, 2, 3, 4]);
    await producer;
    expect(window.inMemoryCount).toBeLessThanOrEqual(2);
  });

  it('throws BufferFullError when a chunk is added without room', async () => {
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 2 });
    await fill(window, chunks(2));
    const err = await window.add(chunk(2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BufferFullError);
    expect(err).toMatchObject({ code: 'upload.buffer_full', retryable: true });
    expect(window.producedCount).toBe(2);
  });

  it('gives up waiting after timeoutMs with BufferFullError, or when aborted', async () => {
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 1 });
    await fill(window, chunks(1));
    await expect(window.room({ timeoutMs: 20 })).rejects.toBeInstanceOf(BufferFullError);
    const abort = new AbortController();
    const waiting = window.room({ signal: abort.signal });
    abort.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    const disposed = window.room();
    await window.dispose();
    await expect(disposed).rejects.toThrow(expect.objectContaining({ code: 'result.invalid_state' }));
  });
});

describe('UploadWindow with a spill buffer', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'keystage-spill-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('spills beyond the memory limit to files named by seq and reads them back after a reconnect', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 100_000 });
    expect(spill.directory).toBe(join(root, RUN));
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 2, spill });
    const list = chunks(6);
    await fill(window, list);
    expect(window.inMemoryCount).toBe(2);
    expect(window.spilledCount).toBe(4);
    expect(spill.usedBytes).toBe(4000);
    expect((await readdir(spill.directory)).sort()).toEqual([
      '000000000002.chunk',
      '000000000003.chunk',
      '000000000004.chunk',
      '000000000005.chunk',
    ]);
    expect((await readFile(join(spill.directory, '000000000003.chunk'))).equals(list[3]!.bytes)).toBe(true);

    window.onAck({ nextSeq: 0, credits: 10 });
    const first = await window.sendable(); // at most maxMemoryChunks per call
    expect(seqs(first)).toEqual([0, 1]);
    const rest = await drain(window); // 2–5 read back from disk
    expect(seqs(rest)).toEqual([2, 3, 4, 5]);
    for (const c of [...first, ...rest]) {
      expect(c.bytes.equals(list[c.seq]!.bytes)).toBe(true);
      expect(c.sha256).toBe(list[c.seq]!.sha256);
      // The plaintext digest (for `chunk.reuse`) survives the trip through memory and disk.
      expect(c.plainSha256).toBe(list[c.seq]!.plainSha256);
    }

    window.resetForReconnect();
    window.onAck({ nextSeq: 3, credits: 10 });
    const resent = await drain(window);
    expect(seqs(resent)).toEqual([3, 4, 5]);
    resent.forEach((c) => {
      expect(c.bytes.equals(list[c.seq]!.bytes)).toBe(true);
    });
    // The acknowledged spilled chunk's file is removed; its bytes no longer count.
    await vi.waitFor(() => expect(existsSync(spill.pathOf(2))).toBe(false));
    expect(spill.usedBytes).toBe(3000);

    await window.dispose();
    expect(existsSync(spill.directory)).toBe(false);
  });

  it('throws BufferFullError at the byte cap and lets the producer wait for room instead', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 2500 });
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 1, spill });
    const list = chunks(6);
    await fill(window, list.slice(0, 3)); // 1 in memory, 2 on disk (2000 of 2500 bytes)
    expect(window.spilledCount).toBe(2);
    expect(window.hasRoom(1000)).toBe(false);
    const err = await window.add(list[3]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BufferFullError);
    expect(window.producedCount).toBe(3);
    expect(existsSync(spill.pathOf(3))).toBe(false);

    // The well-behaved producer waits instead (backpressure), and goes on after acks.
    const added: number[] = [];
    const producer = (async () => {
      for (const c of list.slice(3)) {
        await window.room({ bytes: c.byteLength });
        await window.add(c);
        added.push(c.seq);
      }
    })();
    await settle();
    expect(added).toEqual([]);
    window.onAck({ nextSeq: 2, credits: 4 }); // releases seq 0 (memory) and seq 1 (disk)
    await vi.waitFor(() => expect(added).toEqual([3, 4]));
    expect(window.inMemoryCount).toBe(1);
    expect(spill.usedBytes).toBeLessThanOrEqual(2500);
    window.onAck({ nextSeq: 4, credits: 4 });
    await producer;
    expect(added).toEqual([3, 4, 5]);
    await window.dispose();
    expect(existsSync(spill.directory)).toBe(false);
  });

  it('with spilling, waits only once memory and disk are both full', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 3 * 1000 });
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 2, spill });
    const list = chunks(8);
    let added = 0;
    const producer = (async () => {
      for (const c of list) {
        await window.room({ bytes: c.byteLength });
        await window.add(c);
        added++;
      }
    })();
    await vi.waitFor(() => expect(added).toBe(5));
    await settle();
    expect(added).toBe(5); // 2 in memory + 3 on disk, then waiting
    window.onAck({ nextSeq: 5, credits: 8 });
    await producer;
    expect(added).toBe(8);
    await window.dispose();
  });

  it('resolves overlapping sendable calls in seq order even when the first reads from disk', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 10_000 });
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 1, spill });
    const list = chunks(3);
    await fill(window, list.slice(0, 2)); // 0 in memory, 1 on disk
    window.onAck({ nextSeq: 1, credits: 10 }); // frees memory
    await window.add(list[2]!); // 2 in memory
    const order: number[] = [];
    const first = window.sendable(1).then((got) => order.push(...seqs(got)));
    const second = window.sendable(1).then((got) => order.push(...seqs(got)));
    await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    await window.dispose();
  });

  it('refuses a spilled chunk that changed on disk', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 10_000 });
    const window = new UploadWindow({ runId: RUN, maxMemoryChunks: 1, spill });
    await fill(window, chunks(2));
    await writeFile(spill.pathOf(1), randomBytes(1000));
    window.onAck({ nextSeq: 0, credits: 2 });
    await expect(drain(window)).rejects.toThrow(expect.objectContaining({ code: 'upload.spill_corrupt' }));
    await window.dispose();
  });

  it('clears a leftover directory of the same run and refuses unsafe run ids', async () => {
    const leftover = join(root, RUN);
    await mkdir(leftover);
    await writeFile(join(leftover, '000000000000.chunk'), 'old');
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 10 });
    expect(await readdir(spill.directory)).toEqual([]);
    await expect(SpillBuffer.create({ rootDir: root, runId: '../escape', maxBytes: 10 })).rejects.toThrow(
      expect.objectContaining({ code: 'result.invalid_argument' }),
    );
    await expect(SpillBuffer.create({ rootDir: root, runId: '..', maxBytes: 10 })).rejects.toThrow(
      expect.objectContaining({ code: 'result.invalid_argument' }),
    );
    await spill.dispose();
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(root)).toBe(true);
  });

  it('removes a file whose chunk is acknowledged while it is still being written', async () => {
    const spill = await SpillBuffer.create({ rootDir: root, runId: RUN, maxBytes: 10_000 });
    const c = chunk(0);
    const writing = spill.write(c);
    const removing = spill.remove(0);
    await Promise.all([writing, removing]);
    expect(existsSync(spill.pathOf(0))).toBe(false);
    expect(spill.usedBytes).toBe(0);
    await spill.dispose();
  });
});
