import { hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { DIGEST_BYTES, DIGEST_OFFSET, KEY_OFFSET, keyLength, recordLength } from './encoding.js';

/**
 * Writes the row digest of every record in buf[start, end) (whole records, their digests not yet
 * set): the first 16 bytes of SHA-256 over each record's row encoding.
 */
export function fillDigests(buf: Buffer, start: number, end: number): void {
  for (let p = start; p < end; ) {
    const length = recordLength(buf, p);
    const rowStart = p + KEY_OFFSET + keyLength(buf, p);
    const digest = hash(
      'sha256',
      new Uint8Array(buf.buffer, buf.byteOffset + rowStart, p + length - rowStart),
      'binary',
    );
    for (let i = 0; i < DIGEST_BYTES; i++) buf[p + DIGEST_OFFSET + i] = digest.charCodeAt(i);
    p += length;
  }
}

/**
 * The worker's side of {@link fillDigests} (the same loop, in plain JavaScript: a worker started
 * from source runs this text, not the package's modules). A message names whole records in a
 * shared buffer; the worker fills their digests and then clears the message's flag.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
parentPort.on('message', ({ shared, flag, start, end }) => {
  const buf = new Uint8Array(shared);
  for (let p = start; p < end; ) {
    const length = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)) + buf[p + 3] * 0x1000000;
    const rowStart = p + ${KEY_OFFSET} + (buf[p + 4] | (buf[p + 5] << 8));
    const digest = hash('sha256', buf.subarray(rowStart, p + length), 'binary');
    for (let i = 0; i < ${DIGEST_BYTES}; i++) buf[p + ${DIGEST_OFFSET} + i] = digest.charCodeAt(i);
    p += length;
  }
  const flags = new Int32Array(shared, 0, flag + 1);
  Atomics.store(flags, flag, 0);
  Atomics.notify(flags, flag);
});
Atomics.store(new Int32Array(workerData.ready), 0, 1);
`;

/** How long to wait for the worker before doing a block's digests here after all. */
const WAIT_LIMIT_MS = 2000;

/**
 * One worker thread, shared by every snapshot being built in the process, that computes row
 * digests: hashing is about half the work of building a snapshot, and it runs there while the next
 * block's records are encoded. Started on first use, unreferenced (it never keeps the process
 * alive). Until it has started — and for good if it fails or stalls — callers hash themselves.
 */
class DigestWorker {
  private readonly ready = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker | undefined;
  private usable = true;

  constructor() {
    try {
      // None of the process's flags (--inspect, --import, profiling…): it only hashes.
      this.worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { ready: this.ready.buffer },
      });
    } catch {
      // No threads here (a restricted runtime): every digest is computed by its caller.
      this.usable = false;
      return;
    }
    this.worker.unref();
    this.worker.on('error', () => {
      this.usable = false;
    });
    this.worker.on('exit', () => {
      this.usable = false;
    });
  }

  /**
   * Starts filling the digests of the records at shared[start, end); false (nothing started) when
   * the worker cannot take it. `flag` is an index of the Int32s at the start of `shared`: that one
   * is cleared when the digests are done.
   */
  start(shared: SharedArrayBuffer, flag: number, start: number, end: number): boolean {
    if (!this.usable || this.worker === undefined || Atomics.load(this.ready, 0) !== 1) return false;
    Atomics.store(new Int32Array(shared, 0, flag + 1), flag, 1);
    this.worker.postMessage({ shared, flag, start, end });
    return true;
  }

  /**
   * Waits (blocking) until the digests started with `flag` are done. Returns false, having stopped
   * using the worker, when it did not finish in time: the caller then computes them itself (the
   * worker, if it is merely slow, writes the same bytes).
   */
  wait(shared: SharedArrayBuffer, flag: number): boolean {
    const flags = new Int32Array(shared, 0, flag + 1);
    // Given up on (by any writer): no more blocking; done only if it already is.
    if (!this.usable) return Atomics.load(flags, flag) === 0;
    if (Atomics.wait(flags, flag, 1, WAIT_LIMIT_MS) !== 'timed-out') return true;
    this.usable = false;
    return false;
  }
}

let shared: DigestWorker | undefined;

/** The process's digest worker (started by the first call). */
export function digestWorker(): DigestWorker {
  shared ??= new DigestWorker();
  return shared;
}
