import { z } from 'zod';
import { RunFailureCodeSchema } from './codes.js';
import { defineMessage } from './envelope.js';
import { MAX_CHUNK_BYTES, MAX_CHUNK_CREDITS } from './limits.js';
import { Base64, Count, IsoDateTime, MessageText, Sha256Hex, Uuid } from './primitives.js';

/** Bytes a padded base64 string decodes to, without decoding it. */
export function base64DecodedLength(text: string): number {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}

/**
 * Agent → cloud: one numbered piece of a run's result. `payload` is the encrypted chunk
 * (`@keystage/crypto` `encryptChunk(bytes, dataKey, { runId, seq })`) as base64 inside the JSON
 * text frame. `byteLength` and `sha256` describe the decoded payload bytes, so the cloud can check
 * integrity and deduplicate before decrypting. The agent may send a chunk only inside the window of
 * the last `chunk.ack` (seq < nextSeq + credits).
 */
export const Chunk = defineMessage(
  'chunk',
  z
    .object({
      runId: Uuid,
      /** 0, 1, 2 … per run, with no gaps. */
      seq: Count,
      byteLength: z.int().min(1).max(MAX_CHUNK_BYTES),
      sha256: Sha256Hex,
      payload: Base64.min(4).max(Math.ceil(MAX_CHUNK_BYTES / 3) * 4),
    })
    .superRefine((body, ctx) => {
      if (base64DecodedLength(body.payload) !== body.byteLength) {
        ctx.addIssue({
          code: 'custom',
          path: ['byteLength'],
          message: 'byteLength is not the decoded payload length',
        });
      }
    }),
);
export type Chunk = z.infer<typeof Chunk>;

/**
 * Agent → cloud, since 1.3: the header of a binary chunk frame — the chunk's bytes follow it in the
 * same frame, not as base64 (see `encodeChunkFrame` / `parseChunkFrame`: u32 big-endian header
 * length, the header as UTF-8 JSON, the chunk bytes). Otherwise as `chunk`: `byteLength` and
 * `sha256` describe the bytes; same window rules. Only in a binary frame: as a text frame it is
 * refused as malformed. An agent sends it only to a control plane of 1.3 or later.
 */
export const ChunkData = defineMessage(
  'chunk.data',
  z.object({
    runId: Uuid,
    seq: Count,
    byteLength: z.int().min(1).max(MAX_CHUNK_BYTES),
    sha256: Sha256Hex,
  }),
);
export type ChunkData = z.infer<typeof ChunkData>;

/**
 * Agent → cloud, since 1.2: chunk `seq` is byte for byte the chunk the job's `reuse.chunks[seq]`
 * names (the sha256 of its plaintext matches), so its bytes are not sent. The control plane takes
 * its stored copy of that chunk, checks the plaintext digest, seals it again for this run and
 * position, stores it and acknowledges it like any chunk. `byteLength` is the length the sealed
 * chunk has (it counts in `run.complete`'s `byteCount`). A control plane that cannot reuse the
 * chunk answers a `chunk.ack` with `reuse: false`; the agent then sends bytes from `nextSeq` on.
 * Same window rules as `chunk`.
 */
export const ChunkReuse = defineMessage(
  'chunk.reuse',
  z.object({
    runId: Uuid,
    seq: Count,
    byteLength: z.int().min(1).max(MAX_CHUNK_BYTES),
    /** sha256 (hex) of the chunk's plaintext (codec byte and body, before sealing). */
    plainSha256: Sha256Hex,
  }),
);
export type ChunkReuse = z.infer<typeof ChunkReuse>;

/**
 * Cloud → agent: flow control and acknowledgement in one. Every chunk with seq < `nextSeq` is stored
 * durably and may be deleted from the agent's buffer; the agent may send chunks with
 * seq < `nextSeq + credits`. Absolute values, not increments, so a lost or repeated ack does no harm.
 * `credits: 0` pauses the upload until the next ack.
 */
export const ChunkAck = defineMessage(
  'chunk.ack',
  z.object({
    runId: Uuid,
    nextSeq: Count,
    credits: z.int().min(0).max(MAX_CHUNK_CREDITS),
    /** Since 1.2: `false` when a `chunk.reuse` could not be honoured; send bytes from here on. */
    reuse: z.boolean().optional(),
  }),
);
export type ChunkAck = z.infer<typeof ChunkAck>;

/**
 * Agent → cloud, after reconnecting with an upload unfinished: "for this run I hold chunks from
 * `nextSeq` on". The cloud answers with a `chunk.ack` stating where it really is (the agent resends
 * from there), or an `error` `run.unknown` / a `job.cancel` if the run is gone.
 */
export const RunResume = defineMessage('run.resume', z.object({ runId: Uuid, nextSeq: Count }));
export type RunResume = z.infer<typeof RunResume>;

/**
 * Agent → cloud: the query finished and every chunk (0 … chunkCount-1) has been sent. The cloud
 * completes the run once it holds all of them and the digest matches, then answers `run.ack`.
 * The agent repeats this message (same content) until it gets the `run.ack`.
 */
export const RunComplete = defineMessage(
  'run.complete',
  z.object({
    runId: Uuid,
    rowCount: Count,
    chunkCount: Count,
    /** Sum of the chunks' `byteLength`. */
    byteCount: Count,
    /** sha256 (hex) over the whole result as defined by the result format, for the cloud to check. */
    resultSha256: Sha256Hex,
    startedAt: IsoDateTime,
    finishedAt: IsoDateTime,
    timings: z.object({
      /** From starting the query to the first row. */
      queryMs: Count,
      /** From the first row to the last chunk sent. */
      streamMs: Count,
      totalMs: Count,
    }),
  }),
);
export type RunComplete = z.infer<typeof RunComplete>;

/** Agent → cloud: an accepted run could not finish. Repeated until `run.ack`, like `run.complete`. */
export const RunFailed = defineMessage(
  'run.failed',
  z.object({
    runId: Uuid,
    code: RunFailureCodeSchema,
    /** Redacted: no row data, no credentials. */
    message: MessageText,
    /** True when running the job again later may succeed (the MIS was down, the agent restarted …). */
    retryable: z.boolean(),
  }),
);
export type RunFailed = z.infer<typeof RunFailed>;

/**
 * Cloud → agent, in reply to `run.complete` or `run.failed`: the outcome is recorded durably; the
 * agent may forget the run (buffer, data key). `outcome` is what the cloud recorded: a
 * `run.complete` whose digest or counts do not check out is recorded as `failed`.
 */
export const RunAck = defineMessage(
  'run.ack',
  z.object({ runId: Uuid, outcome: z.enum(['completed', 'failed', 'cancelled']) }),
);
export type RunAck = z.infer<typeof RunAck>;
