export { Heartbeat, HeartbeatAck, WorkPull } from './agent-status.messages.js';
export {
  isMessageType,
  MESSAGE_TYPES,
  MESSAGES,
  Message,
  type MessageBody,
  type MessageCatalogue,
  type MessageOf,
  type MessageType,
  maySend,
  messageCatalogue,
  type Sender,
} from './catalogue.js';
export {
  ErrorCode,
  ErrorCodeSchema,
  JobRejectCode,
  JobRejectCodeSchema,
  RefusalCode,
  RefusalCodeSchema,
  RunFailureCode,
  RunFailureCodeSchema,
} from './codes.js';
export { Envelope } from './envelope.js';
export { ErrorReply } from './error.messages.js';
export { exampleMessage } from './examples.js';
export { Auth, AuthOk, authSigningInput, Challenge, Hello, Refused } from './handshake.messages.js';
export {
  JobAccept,
  JobCancel,
  JobOffer,
  JobParameter,
  JobProgress,
  JobReject,
  JobSpec,
  SignedJob,
} from './job.messages.js';
export {
  MAX_CHUNK_BYTES,
  MAX_CHUNK_CREDITS,
  MAX_CHUNK_FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_TEXT_LENGTH,
  MAX_PARAMETER_STRING_LENGTH,
  MAX_PARAMETERS,
  MAX_REUSE_CHUNKS,
  MAX_SQL_LENGTH,
  PROTOCOL_LIMITS,
} from './limits.js';
export {
  type ChunkFrameResult,
  type CreateMessageOptions,
  createMessage,
  encodeChunkFrame,
  encodeMessage,
  errorReplyFor,
  MAX_REPORTED_ISSUES,
  type ParseError,
  type ParseErrorCode,
  type ParseErrorDetails,
  type ParseOptions,
  type ParseResult,
  ProtocolEncodeError,
  parseChunkFrame,
  parseMessage,
} from './parse.js';
export {
  Base64,
  Count,
  IsoDateTime,
  MessageText,
  MisKind,
  Nonce,
  ProtocolVersionText,
  Sha256Hex,
  Signature,
  SoftwareVersion,
  Uuid,
} from './primitives.js';
export {
  base64DecodedLength,
  Chunk,
  ChunkAck,
  ChunkData,
  ChunkReuse,
  RunAck,
  RunComplete,
  RunFailed,
  RunResume,
} from './result.messages.js';
export {
  compareVersions,
  isCompatibleVersion,
  negotiateVersion,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  parseProtocolVersion,
  SUPPORTED_PROTOCOL_VERSIONS,
} from './version.js';
