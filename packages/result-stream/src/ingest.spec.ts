import { describe, expect, it } from 'vitest';
import { IngestCursor } from './ingest.js';

const RUN = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const code = (c: string) => expect.objectContaining({ code: c });

describe('IngestCursor', () => {
  it('grants nothing before the first ack, then a window of `credits` beyond what is stored', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 4 });
    expect(() => cursor.receive(0)).toThrow(code('chunk.out_of_window'));
    expect(cursor.ack()).toEqual({ runId: RUN, nextSeq: 0, credits: 4 });
    for (let seq = 0; seq < 4; seq++) expect(cursor.receive(seq)).toBe('accept');
    expect(() => cursor.receive(4)).toThrow(code('chunk.out_of_window'));
    cursor.commit(0);
    cursor.commit(1);
    expect(cursor.ack()).toEqual({ runId: RUN, nextSeq: 2, credits: 4 });
    expect(cursor.receive(4)).toBe('accept');
    expect(cursor.receive(5)).toBe('accept');
    expect(() => cursor.receive(6)).toThrow(code('chunk.out_of_window'));
  });

  it('defaults to 32 credits and refuses credits beyond MAX_CHUNK_CREDITS', () => {
    expect(new IngestCursor({ runId: RUN }).ack().credits).toBe(32);
    expect(() => new IngestCursor({ runId: RUN, credits: 257 })).toThrow(code('result.invalid_argument'));
    expect(() => new IngestCursor({ runId: RUN, credits: 0 })).toThrow(code('result.invalid_argument'));
  });

  it('takes a duplicate for a duplicate: acknowledged again, not processed again', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 8 });
    cursor.ack();
    expect(cursor.receive(0)).toBe('accept');
    cursor.commit(0);
    expect(cursor.receive(1)).toBe('accept');
    expect(cursor.receive(0)).toBe('duplicate'); // stored
    expect(cursor.receive(1)).toBe('duplicate'); // still being processed
    expect(cursor.ack()).toEqual({ runId: RUN, nextSeq: 1, credits: 8 });
  });

  it('refuses a chunk past a missing one inside the window', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 8 });
    cursor.ack();
    cursor.receive(0);
    expect(() => cursor.receive(2)).toThrow(code('chunk.gap'));
    expect(cursor.receive(1)).toBe('accept');
  });

  it('sends 0 credits when overloaded, still taking chunks already granted', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 4 });
    cursor.ack();
    cursor.receive(0);
    cursor.commit(0);
    expect(cursor.ack({ overloaded: true })).toEqual({ runId: RUN, nextSeq: 1, credits: 0 });
    // 1–3 were granted by the first ack and may be in flight.
    expect(cursor.receive(1)).toBe('accept');
    expect(cursor.receive(3 - 1)).toBe('accept');
    expect(cursor.receive(3)).toBe('accept');
    expect(() => cursor.receive(4)).toThrow(code('chunk.out_of_window'));
    expect(cursor.grantedEnd).toBe(4);
  });

  it('commits in order only, and rewinds uncommitted chunks for a resend', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 4 });
    cursor.ack();
    cursor.receive(0);
    cursor.receive(1);
    expect(() => cursor.commit(1)).toThrow(code('result.invalid_state'));
    expect(() => cursor.commit(2)).toThrow(code('result.invalid_state'));
    cursor.commit(0);
    cursor.rewind(); // storing chunk 1 failed
    expect(cursor.receivedSeq).toBe(1);
    expect(cursor.receive(1)).toBe('accept');
  });

  it('answers run.resume with what it stored and restarts the window there', () => {
    const cursor = new IngestCursor({ runId: RUN, credits: 4, nextSeq: 5 });
    expect(cursor.nextSeq).toBe(5);
    expect(() => cursor.resume(7)).toThrow(code('ingest.resume_gap'));
    expect(cursor.resume(3)).toEqual({ runId: RUN, nextSeq: 5, credits: 4 });
    expect(cursor.receive(3)).toBe('duplicate'); // the agent replays from its own position
    expect(cursor.receive(5)).toBe('accept');
    expect(() => cursor.receive(9)).toThrow(code('chunk.out_of_window'));
  });
});
