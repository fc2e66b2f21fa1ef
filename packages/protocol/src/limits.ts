// Limits both ends enforce. They are part of the protocol: changing one is a catalogue change and
// needs a version bump. The arithmetic below keeps the largest legal message inside one frame.

/** Largest WebSocket frame (one message) either side accepts, in bytes of UTF-8 JSON. */
export const MAX_FRAME_BYTES = 1_048_576;

/**
 * Largest encrypted chunk, in bytes before base64. Base64 makes it 4/3 larger (699,052 characters),
 * which with its envelope still fits a frame.
 */
export const MAX_CHUNK_BYTES = 524_288;

/**
 * Largest header of a binary chunk frame (since 1.3): the `chunk.data` envelope, in bytes of UTF-8
 * JSON. The frame, header and chunk bytes together, stays within MAX_FRAME_BYTES.
 */
export const MAX_CHUNK_FRAME_HEADER_BYTES = 4_096;

/** Most chunks the cloud lets one run have in flight beyond the last acknowledged one. */
export const MAX_CHUNK_CREDITS = 256;

/** Longest SQL text in a job, in UTF-16 code units (JavaScript string length). */
export const MAX_SQL_LENGTH = 65_536;

/** Most parameters in a job. */
export const MAX_PARAMETERS = 50;

/** Longest string parameter value, in UTF-16 code units. */
export const MAX_PARAMETER_STRING_LENGTH = 1_000;

/** Longest human-readable message text (errors, refusals, reasons). */
export const MAX_MESSAGE_TEXT_LENGTH = 1_000;

/**
 * Most chunk digests a job's `reuse` list carries (since 1.2): 4,096 × 67 characters ≈ 270 KiB,
 * which with the largest SQL still fits a frame. Longer results reuse their first 4,096 chunks.
 */
export const MAX_REUSE_CHUNKS = 4_096;

/** All limits in one object, as published in the catalogue. */
export const PROTOCOL_LIMITS = {
  maxFrameBytes: MAX_FRAME_BYTES,
  maxChunkBytes: MAX_CHUNK_BYTES,
  maxChunkFrameHeaderBytes: MAX_CHUNK_FRAME_HEADER_BYTES,
  maxChunkCredits: MAX_CHUNK_CREDITS,
  maxSqlLength: MAX_SQL_LENGTH,
  maxParameters: MAX_PARAMETERS,
  maxParameterStringLength: MAX_PARAMETER_STRING_LENGTH,
  maxMessageTextLength: MAX_MESSAGE_TEXT_LENGTH,
  maxReuseChunks: MAX_REUSE_CHUNKS,
} as const;
