/**
 * The run logic on its own, with a scripted BatchSource (a stand-in for a driver, not for a
 * database: the connectors themselves are tested against real databases in *.connector.spec.ts).
 */
import { describe, expect, it } from 'vitest';
import { MisError } from './errors.js';
import { type BatchSource, RowQueue, type RunHost, RunRowStream, rowsPerBatch, StreamRun } from './stream.js';
import type { Row } from './types.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function host(): RunHost & { dropped: number } {
  const h = {
    dropped: 0,
    mapError: (err: unknown) => new MisError('mis.query_failed', String(err)),
    drop: () => {
      h.dropped++;
    },
    ended: () => {},
  };
  return h;
}

class ScriptedSource implements BatchSource {
  interrupts = 0;
  releases: boolean[] = [];
  pending: ReturnType<typeof deferred<Row[] | null>> | null = null;
  constructor(private readonly batches: (Row[] | null)[] = []) {}
  columns() {
    return [{ name: 'n', type: 'integer' as const, dbType: 'int' }];
  }
  next(): Promise<Row[] | null> {
    if (this.batches.length > 0) return Promise.resolve(this.batches.shift() ?? null);
    this.pending = deferred<Row[] | null>();
    return this.pending.promise;
  }
  buffered() {
    return 0;
  }
  async interrupt() {
    this.interrupts++;
    this.pending?.reject(new Error('interrupted by the server'));
  }
  async release(complete: boolean) {
    this.releases.push(complete);
  }
}

describe('StreamRun', () => {
  it('cancelled while the statement starts: the source that arrives is interrupted and released once', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const starting = deferred<BatchSource>();
    const opening = run.open(() => starting.promise);
    const cancelling = run.abort('cancelled');
    const source = new ScriptedSource();
    starting.resolve(source);
    await cancelling;
    await expect(opening).rejects.toMatchObject({ code: 'mis.cancelled' });
    expect(source.interrupts).toBe(1);
    expect(source.releases).toEqual([false]);
  });

  it('times out a pending read with mis.timeout, even though the driver reports its own error', async () => {
    const h = host();
    const run = new StreamRun(h, { timeoutMs: 20 });
    const source = new ScriptedSource([[[1]]]);
    const { first } = await run.open(async () => source);
    expect(first).toEqual([[1]]);
    await expect(run.next()).rejects.toMatchObject({ code: 'mis.timeout' });
    expect(source.interrupts).toBe(1);
    expect(source.releases).toEqual([false]);
  });

  it('releases a completed run as complete and maps driver errors', async () => {
    const h = host();
    const done = new StreamRun(h, {});
    const source = new ScriptedSource([[[1]], null]);
    await done.open(async () => source);
    expect(await done.next()).toBeNull();
    expect(source.releases).toEqual([true]);

    const failing = new StreamRun(h, {});
    const broken = new ScriptedSource([[[1]]]);
    await failing.open(async () => broken);
    const read = failing.next();
    broken.pending?.reject(new Error('syntax'));
    await expect(read).rejects.toMatchObject({ code: 'mis.query_failed' });
    expect(broken.releases).toEqual([false]);
  });

  it('drops the connection when clean-up fails', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const source = new ScriptedSource([[[1]]]);
    source.release = async () => {
      throw new Error('rollback failed');
    };
    await run.open(async () => source);
    await run.abort('closed');
    expect(h.dropped).toBe(1);
  });

  it('stops handing out rows of a batch already received once cancelled', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const source = new ScriptedSource([[[1], [2], [3], [4]]]);
    const { first } = await run.open(async () => source);
    const stream = new RunRowStream(run, source.columns(), first);
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const row of stream) {
          seen.push(row[0]);
          if (seen.length === 2) await run.abort('cancelled');
        }
      })(),
    ).rejects.toMatchObject({ code: 'mis.cancelled' });
    expect(seen).toEqual([1, 2]);
  });
});

describe('RunRowStream.batches (one read ahead)', () => {
  it('asks for the next batch while the caller still holds the current one (one ahead, no more)', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const asked: number[] = [];
    const source = new ScriptedSource([[[1]], [[2]], [[3]], null]);
    const next = source.next.bind(source);
    source.next = () => {
      asked.push(asked.length + 1);
      return next();
    };
    const { first } = await run.open(async () => source);
    expect(asked).toEqual([1]);
    const stream = new RunRowStream(run, source.columns(), first);
    const seen: { batch: unknown; askedWhenHanded: number }[] = [];
    for await (const batch of stream.batches()) {
      seen.push({ batch: batch[0]?.[0], askedWhenHanded: asked.length });
    }
    // Batch n is handed over with batch n + 1 already asked for — and never n + 2.
    expect(seen).toEqual([
      { batch: 1, askedWhenHanded: 2 },
      { batch: 2, askedWhenHanded: 3 },
      { batch: 3, askedWhenHanded: 4 },
    ]);
    expect(source.releases).toEqual([true]);
  });

  it('a caller that stops early closes the run with the read ahead still pending', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const source = new ScriptedSource([[[1]]]);
    const { first } = await run.open(async () => source);
    const stream = new RunRowStream(run, source.columns(), first);
    for await (const batch of stream.batches()) {
      expect(batch).toEqual([[1]]);
      // The read ahead is waiting on the (scripted) server.
      expect(source.pending).not.toBeNull();
      break;
    }
    expect(source.interrupts).toBe(1);
    expect(source.releases).toEqual([false]);
  });

  it('hands out no batch read ahead once the run is cancelled: mis.cancelled comes next', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const source = new ScriptedSource([[[1]], [[2]], [[3]], null]);
    const { first } = await run.open(async () => source);
    const stream = new RunRowStream(run, source.columns(), first);
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const batch of stream.batches()) {
          seen.push(batch[0]?.[0]);
          // Batch 2 is already read (the scripted source answers at once) when the cancel comes.
          if (seen.length === 1) {
            await new Promise((r) => setTimeout(r, 0));
            await run.abort('cancelled');
          }
        }
      })(),
    ).rejects.toMatchObject({ code: 'mis.cancelled' });
    expect(seen).toEqual([1]);
  });

  it('close() while a read ahead is pending ends the batches quietly', async () => {
    const h = host();
    const run = new StreamRun(h, {});
    const source = new ScriptedSource([[[1]]]);
    const { first } = await run.open(async () => source);
    const stream = new RunRowStream(run, source.columns(), first);
    const seen: unknown[] = [];
    for await (const batch of stream.batches()) {
      seen.push(batch[0]?.[0]);
      // The read ahead waits on the (scripted) server; close interrupts it.
      await stream.close();
    }
    expect(seen).toEqual([1]);
    expect(source.interrupts).toBe(1);
    expect(source.releases).toEqual([false]);
  });
});

describe('RowQueue', () => {
  it('pauses the driver at its limit and resumes it when the rows are taken', async () => {
    const events: string[] = [];
    const q = new RowQueue({ pause: () => events.push('pause'), resume: () => events.push('resume') }, 3);
    q.push([1]);
    q.push([2]);
    expect(events).toEqual([]);
    q.push([3]);
    expect(events).toEqual(['pause']);
    expect(q.size).toBe(3);
    expect(await q.take()).toEqual([[1], [2], [3]]);
    expect(events).toEqual(['pause', 'resume']);
    q.end();
    expect(await q.take()).toBeNull();
  });

  it('lowers the limit for wide rows and drops rows after discard', async () => {
    const events: string[] = [];
    const q = new RowQueue({ pause: () => events.push('pause'), resume: () => events.push('resume') }, 500);
    q.push(['x'.repeat(4 * 1024 * 1024)]);
    q.push(['x'.repeat(4 * 1024 * 1024)]);
    expect(events).toEqual(['pause']);
    q.discard();
    expect(events).toEqual(['pause', 'resume']);
    q.push(['dropped']);
    expect(q.size).toBe(0);
    q.fail(new Error('killed'));
    await expect(q.take()).rejects.toThrow('killed');
  });

  it('sizes batches by bytes', () => {
    expect(rowsPerBatch([1, 'short'], 500)).toBe(500);
    expect(rowsPerBatch(['x'.repeat(1024 * 1024)], 500)).toBe(7);
  });
});
