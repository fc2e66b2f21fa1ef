export {
  type OpenedChunk,
  ResultDecoder,
  type ResultDecoderOptions,
  type VerifiedResult,
} from './decoder.js';
export {
  type EncodedChunk,
  type PackedRows,
  ResultEncoder,
  type ResultEncoderOptions,
  type ResultSummary,
} from './encoder.js';
export { BufferFullError, ResultStreamError, ResultStreamErrorCode } from './errors.js';
export {
  CODEC_DEFLATE_RAW,
  CODEC_STORED,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_TARGET_CHUNK_BYTES,
  MAX_CHUNK_BYTES,
  MAX_CHUNK_CREDITS,
  MAX_CHUNK_PLAINTEXT_BYTES,
  RESULT_FORMAT_VERSION,
  type RowValue,
  type WireValue,
} from './format.js';
export {
  type ChunkAckBody,
  DEFAULT_INGEST_CREDITS,
  IngestCursor,
  type IngestCursorOptions,
  type IngestDecision,
} from './ingest.js';
export { SpillBuffer, type SpillBufferOptions } from './spill.js';
export {
  type AckLike,
  DEFAULT_MEMORY_CHUNKS,
  type RoomOptions,
  UploadWindow,
  type UploadWindowOptions,
} from './upload-window.js';
