/**
 * Stable codes for everything this package refuses, as `area.reason`. Where a code has a wire
 * equivalent it is the same string (`chunk.digest_mismatch`, `chunk.out_of_window`), so the ingest
 * can put it in an `error` reply as is; `upload.buffer_full` maps to `run.failed` `agent.buffer_full`.
 */
export const ResultStreamErrorCode = {
  /** A constructor option or argument is out of range (bad key length, empty run id, …). */
  InvalidArgument: 'result.invalid_argument',
  /** A row is not an array of the column count, or holds a value of an unsupported type. */
  InvalidValue: 'result.invalid_value',
  /** One row alone does not fit in a chunk (over MAX_CHUNK_BYTES compressed, or over the plaintext cap). */
  RowTooLarge: 'result.row_too_large',
  /** Called in the wrong state: `push` after `finish`, `open` after `finish`, a disposed window … */
  InvalidState: 'result.invalid_state',

  /** Chunk bytes do not match the sha256 they were sent with. The sender may resend them. */
  ChunkDigestMismatch: 'chunk.digest_mismatch',
  /** Chunk is empty or larger than MAX_CHUNK_BYTES. */
  ChunkSize: 'chunk.size',
  /** Authenticated decryption failed: another run's chunk, another position, another key, or tampered. */
  ChunkDecryptFailed: 'chunk.decrypt_failed',
  /** The chunk inflates beyond the per-chunk plaintext limit (zip bomb guard). */
  ChunkInflateLimit: 'chunk.inflate_limit',
  /** The chunk authenticated but its content is not a valid result chunk (codec, msgpack, shape). */
  ChunkCorrupt: 'chunk.corrupt',
  /** The chunk uses a codec or format version this code does not know. */
  ChunkUnsupportedFormat: 'chunk.unsupported_format',
  /** A chunk arrived before an earlier one: opening must be in seq order without gaps. */
  ChunkGap: 'chunk.gap',
  /** A chunk at or beyond the credits granted so far (`nextSeq + credits` of the widest ack). */
  ChunkOutOfWindow: 'chunk.out_of_window',

  /** `finish` was called while chunks announced by the summary have not been opened yet. */
  Incomplete: 'result.incomplete',
  /** More chunks were opened than the summary's `chunkCount`, or the stream has no chunk at all. */
  ChunkCountMismatch: 'result.chunk_count_mismatch',
  /** The rows decoded differ from the summary's `rowCount`. */
  RowCountMismatch: 'result.row_count_mismatch',
  /** The chunk bytes received differ from the summary's `byteCount`. */
  ByteCountMismatch: 'result.byte_count_mismatch',
  /** The digest over the received plaintext differs from the summary's `resultSha256`. */
  DigestMismatch: 'result.digest_mismatch',

  /** The agent's bounded upload buffer (memory + disk) has no room. Fail the run as retryable. */
  BufferFull: 'upload.buffer_full',
  /** A `chunk.ack` acknowledges chunks that were never produced. */
  InvalidAck: 'upload.invalid_ack',
  /** After a reconnect the cloud holds fewer chunks than the agent already released: cannot resume. */
  ResumeBehind: 'upload.resume_behind',
  /** A spilled chunk could not be read back intact. */
  SpillCorrupt: 'upload.spill_corrupt',
  /** `run.resume` names a seq beyond what the cloud holds: chunks in between are lost. */
  ResumeGap: 'ingest.resume_gap',
} as const;
export type ResultStreamErrorCode = (typeof ResultStreamErrorCode)[keyof typeof ResultStreamErrorCode];

/** The error type thrown by this package. Messages never contain row values or key material. */
export class ResultStreamError extends Error {
  override readonly name: string = 'ResultStreamError';

  constructor(
    readonly code: ResultStreamErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** True for failures a later run of the same job may not meet (only a full buffer so far). */
  get retryable(): boolean {
    return this.code === ResultStreamErrorCode.BufferFull;
  }
}

/**
 * The upload buffer is full: the in-memory chunks are at their limit and the spill directory has no
 * room for another chunk (or there is no spill directory), or a `room()` wait timed out. The agent
 * fails the run with `run.failed { code: 'agent.buffer_full', retryable: true }`.
 */
export class BufferFullError extends ResultStreamError {
  override readonly name: string = 'BufferFullError';

  constructor(message: string, options?: ErrorOptions) {
    super(ResultStreamErrorCode.BufferFull, message, options);
  }
}
