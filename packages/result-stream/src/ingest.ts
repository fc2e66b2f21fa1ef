import { ResultStreamError, ResultStreamErrorCode } from './errors.js';
import { MAX_CHUNK_CREDITS } from './format.js';

/** Credits the cloud grants per run by default. */
export const DEFAULT_INGEST_CREDITS = 32;

export interface IngestCursorOptions {
  /** The run, echoed in the `chunk.ack` body. */
  runId: string;
  /** Chunks granted beyond the last stored one (1 to MAX_CHUNK_CREDITS, default 32). */
  credits?: number;
  /** Chunks already stored durably for this run (when the cursor is rebuilt from the database). */
  nextSeq?: number;
}

/** The body of a `chunk.ack` message. */
export interface ChunkAckBody {
  runId: string;
  nextSeq: number;
  credits: number;
}

/** What to do with a received chunk. */
export type IngestDecision = 'accept' | 'duplicate';

/**
 * Control-plane side: the flow-control state of one run's upload.
 *
 * ```
 * const decision = cursor.receive(seq);     // throws chunk.out_of_window / chunk.gap
 * if (decision === 'accept') { open and store the chunk durably; cursor.commit(seq); }
 * send(cursor.ack({ overloaded }));          // a duplicate is acknowledged again, not re-processed
 * ```
 *
 * Two positions: `receivedSeq` (next chunk expected on the socket) and `nextSeq` (chunks stored
 * durably, which is what an ack promises). A chunk is refused when it is at or beyond the widest
 * window granted so far (the highest `nextSeq + credits` acknowledged since construction or the last
 * {@link resume}): a chunk the agent sent under an earlier, wider ack is still accepted after an
 * `overloaded` ack with 0 credits, because the agent could not know. Within the window, a chunk past
 * `receivedSeq` means one is missing (`chunk.gap`; the transport is ordered, so this is a bug or an
 * attack).
 */
export class IngestCursor {
  readonly runId: string;
  readonly credits: number;
  private committed: number;
  private received: number;
  private granted: number;

  constructor(options: IngestCursorOptions) {
    const { runId } = options;
    if (typeof runId !== 'string' || runId.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'runId is a non-empty string');
    }
    const credits = options.credits ?? DEFAULT_INGEST_CREDITS;
    if (!Number.isSafeInteger(credits) || credits < 1 || credits > MAX_CHUNK_CREDITS) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `credits is 1 to ${MAX_CHUNK_CREDITS}`,
      );
    }
    const nextSeq = options.nextSeq ?? 0;
    if (!Number.isSafeInteger(nextSeq) || nextSeq < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'nextSeq is a non-negative integer');
    }
    this.runId = runId;
    this.credits = credits;
    this.committed = nextSeq;
    this.received = nextSeq;
    // Nothing may arrive before the first ack.
    this.granted = nextSeq;
  }

  /** Chunks stored durably: every seq below it (what the next ack says). */
  get nextSeq(): number {
    return this.committed;
  }

  /** The next seq expected on the socket (≥ nextSeq: chunks accepted but not yet committed). */
  get receivedSeq(): number {
    return this.received;
  }

  /** Exclusive end of the widest window granted: seq ≥ this is refused. */
  get grantedEnd(): number {
    return this.granted;
  }

  /**
   * Classifies chunk `seq`: `'accept'` (the next one: process it, then {@link commit}) or
   * `'duplicate'` (already received: drop it, send {@link ack} again). Throws `chunk.out_of_window`
   * beyond the granted window, `chunk.gap` when an earlier chunk is missing.
   */
  receive(seq: number): IngestDecision {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'seq is a non-negative integer');
    }
    if (seq < this.received) return 'duplicate';
    if (seq >= this.granted) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkOutOfWindow,
        `chunk ${seq} is beyond the granted window (< ${this.granted})`,
      );
    }
    if (seq > this.received) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkGap,
        `chunk ${seq} arrived while chunk ${this.received} is expected`,
      );
    }
    this.received = seq + 1;
    return 'accept';
  }

  /** Records that chunk `seq` (the oldest accepted, uncommitted one) is stored durably. */
  commit(seq: number): void {
    if (seq !== this.committed || seq >= this.received) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidState,
        `commit of chunk ${seq}, expected ${this.committed} (accepted up to ${this.received - 1})`,
      );
    }
    this.committed = seq + 1;
  }

  /**
   * Forgets chunks accepted but not committed (processing or storing them failed), so that their
   * resend is accepted again instead of being taken for a duplicate.
   */
  rewind(): void {
    this.received = this.committed;
  }

  /**
   * The `chunk.ack` to send now: `nextSeq` = chunks stored, `credits` = the configured window, or 0
   * when `overloaded` (the agent pauses until a later ack grants credits again).
   */
  ack(options: { overloaded?: boolean } = {}): ChunkAckBody {
    const credits = options.overloaded ? 0 : this.credits;
    const end = this.committed + credits;
    if (end > this.granted) this.granted = end;
    return { runId: this.runId, nextSeq: this.committed, credits };
  }

  /**
   * Answers a `run.resume { nextSeq }` after the agent reconnected: forgets uncommitted chunks,
   * restarts the granted window from what is stored and returns the ack (the agent resends from its
   * `nextSeq`). Throws `ingest.resume_gap` when the agent no longer holds chunks the cloud lacks.
   */
  resume(agentNextSeq: number, options: { overloaded?: boolean } = {}): ChunkAckBody {
    if (!Number.isSafeInteger(agentNextSeq) || agentNextSeq < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'nextSeq is a non-negative integer');
    }
    if (agentNextSeq > this.committed) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ResumeGap,
        `the agent holds chunks from ${agentNextSeq}, the cloud stored only up to ${this.committed}`,
      );
    }
    this.rewind();
    this.granted = this.committed;
    return this.ack(options);
  }
}
