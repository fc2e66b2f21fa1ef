import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedObjectStore, encryptedObjectSize } from './encrypted-store.js';
import { LocalDirectoryStore } from './local-store.js';
import { pseudoRandomBody } from './testing/store-contract.js';

// Its own file, so that it runs in a fresh worker process and measures only itself.
const MB = 1024 * 1024;
const SIZE = 50 * MB;
const CHUNK = 256 * 1024;
const LIMIT = 40 * MB;

// V8 collects garbage Buffers lazily, and this test is about what the store keeps alive, not about
// GC heuristics: collect every few megabytes, so that what remains is (nearly) live memory only.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const GC_EVERY = 4 * MB;

/** Samples RSS often (on a timer and from inside the streams) and reports the growth over the start. */
class RssMonitor {
  private readonly start: number;
  private peak: number;
  private readonly timer = setInterval(() => this.sample(), 5);

  constructor() {
    collectGarbage();
    this.start = process.memoryUsage.rss();
    this.peak = this.start;
  }

  private sinceGc = 0;

  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }

  /** Counts bytes that went through; every {@link GC_EVERY} of them, samples and collects garbage. */
  progress(bytes: number): void {
    this.sample();
    this.sinceGc += bytes;
    if (this.sinceGc >= GC_EVERY) {
      this.sinceGc = 0;
      collectGarbage();
    }
  }

  /** Peak RSS so far minus RSS at the start. */
  growth(): number {
    this.sample();
    return this.peak - this.start;
  }

  stop(): number {
    clearInterval(this.timer);
    return this.growth();
  }
}

describe('EncryptedObjectStore streaming', () => {
  let base: string;
  let store: EncryptedObjectStore;
  let inner: LocalDirectoryStore;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'keystage-encrypted-memory-'));
    inner = new LocalDirectoryStore(join(base, 'objects'));
    store = new EncryptedObjectStore(inner, { masterKey: randomBytes(32) });
    // Warm up (module code, OpenSSL, fs) so that one-off allocations are not counted.
    await store.put('warm', 'up', randomBytes(256 * 1024));
    for await (const _ of await store.get('warm', 'up')) {
      // drain
    }
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('puts and gets a 50 MB generator with RSS growth under 40 MB each way', async () => {
    // One baseline for both directions, taken before the first byte: memory freed while writing and
    // kept by the allocator cannot hide buffering while reading.
    const monitor = new RssMonitor();
    const expected = createHash('sha256');
    const source = async function* () {
      for await (const chunk of pseudoRandomBody(SIZE, CHUNK, 'memory')) {
        monitor.progress(chunk.length);
        expected.update(chunk);
        yield chunk;
      }
    };
    const result = await store.put('school-1', 'snapshots/big', source());
    const writeGrowth = monitor.growth();
    expect(result).toEqual({ size: SIZE, storedSize: encryptedObjectSize(SIZE) });
    expect((await stat(inner.pathOf('tenants/school-1/snapshots/big'))).size).toBe(encryptedObjectSize(SIZE));

    const actual = createHash('sha256');
    let received = 0;
    for await (const chunk of await store.get('school-1', 'snapshots/big')) {
      monitor.progress((chunk as Buffer).length);
      actual.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    const readGrowth = monitor.stop();
    expect(received).toBe(SIZE);
    expect(actual.digest('hex')).toBe(expected.digest('hex'));

    expect(writeGrowth, `RSS grew ${(writeGrowth / MB).toFixed(1)} MB while writing`).toBeLessThan(LIMIT);
    expect(readGrowth, `RSS grew ${(readGrowth / MB).toFixed(1)} MB by the end of reading`).toBeLessThan(
      LIMIT,
    );

    // The measurement does see an object held in memory, as a non-streaming store would (the chunks
    // and one concatenated copy). RSS also reuses memory freed by the phases above, so the control
    // holds twice the object to stay clearly above the limit.
    const holding = new RssMonitor();
    const held: Buffer[] = [];
    for await (const chunk of await store.get('school-1', 'snapshots/big')) {
      held.push(chunk as Buffer);
      holding.sample();
    }
    const whole = Buffer.concat(held);
    const holdGrowth = holding.stop();
    expect(whole.length).toBe(SIZE);
    expect(holdGrowth, `RSS grew only ${(holdGrowth / MB).toFixed(1)} MB holding the object`).toBeGreaterThan(
      LIMIT,
    );
  });
});
