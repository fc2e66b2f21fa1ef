import { z } from 'zod';
import { Heartbeat, HeartbeatAck, WorkPull } from './agent-status.messages.js';
import { ErrorCodeSchema, JobRejectCodeSchema, RefusalCodeSchema, RunFailureCodeSchema } from './codes.js';
import { ErrorReply } from './error.messages.js';
import { Auth, AuthOk, Challenge, Hello, Refused } from './handshake.messages.js';
import { JobAccept, JobCancel, JobOffer, JobProgress, JobReject } from './job.messages.js';
import { PROTOCOL_LIMITS } from './limits.js';
import {
  Chunk,
  ChunkAck,
  ChunkData,
  ChunkReuse,
  RunAck,
  RunComplete,
  RunFailed,
  RunResume,
} from './result.messages.js';
import { PROTOCOL_VERSION } from './version.js';

/** Every message, discriminated on `type`. */
export const Message = z.discriminatedUnion('type', [
  Hello,
  Challenge,
  Auth,
  AuthOk,
  Refused,
  Heartbeat,
  HeartbeatAck,
  WorkPull,
  JobOffer,
  JobAccept,
  JobReject,
  JobCancel,
  JobProgress,
  Chunk,
  ChunkData,
  ChunkReuse,
  ChunkAck,
  RunResume,
  RunComplete,
  RunFailed,
  RunAck,
  ErrorReply,
]);
export type Message = z.infer<typeof Message>;
export type MessageType = Message['type'];
/** The message of one type, e.g. `MessageOf<'chunk'>`. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
/** The body of one message type. */
export type MessageBody<T extends MessageType> = MessageOf<T>['body'];

/** Who may send each message: `agent`, `cloud`, or `both`. A receiver refuses the rest (`protocol.unexpected`). */
export type Sender = 'agent' | 'cloud' | 'both';

interface CatalogueEntry {
  schema: z.ZodType;
  sender: Sender;
  description: string;
}

/** The catalogue: schema, sender and a one-line purpose per message type. */
export const MESSAGES = {
  hello: {
    schema: Hello,
    sender: 'agent',
    description: 'Opens a connection: agent id, versions, OS, MIS kind.',
  },
  challenge: { schema: Challenge, sender: 'cloud', description: 'A fresh nonce for the agent to sign.' },
  auth: { schema: Auth, sender: 'agent', description: "The agent's signature over the challenge." },
  'auth.ok': { schema: AuthOk, sender: 'cloud', description: 'The session is open.' },
  refused: { schema: Refused, sender: 'cloud', description: 'The connection is refused; the socket closes.' },
  heartbeat: { schema: Heartbeat, sender: 'agent', description: "The agent's health, periodically." },
  'heartbeat.ack': { schema: HeartbeatAck, sender: 'cloud', description: 'Answers a heartbeat.' },
  'work.pull': { schema: WorkPull, sender: 'agent', description: 'Asks for pending jobs.' },
  'job.offer': { schema: JobOffer, sender: 'cloud', description: 'A signed job for the agent to run.' },
  'job.accept': {
    schema: JobAccept,
    sender: 'agent',
    description: "The job will run; the run's wrapped data key.",
  },
  'job.reject': {
    schema: JobReject,
    sender: 'agent',
    description: 'The job was refused before touching the MIS.',
  },
  'job.cancel': { schema: JobCancel, sender: 'cloud', description: 'Stop a run.' },
  'job.progress': { schema: JobProgress, sender: 'agent', description: 'Progress of a run, for display.' },
  chunk: { schema: Chunk, sender: 'agent', description: 'One encrypted, numbered piece of a result.' },
  'chunk.data': {
    schema: ChunkData,
    sender: 'agent',
    description: 'A chunk in a binary frame: this header, then its bytes (not base64).',
  },
  'chunk.reuse': {
    schema: ChunkReuse,
    sender: 'agent',
    description: 'A chunk identical to one of the last result: not sent again.',
  },
  'chunk.ack': {
    schema: ChunkAck,
    sender: 'cloud',
    description: 'Chunks stored so far, and upload credits.',
  },
  'run.resume': {
    schema: RunResume,
    sender: 'agent',
    description: 'Asks where an interrupted upload resumes.',
  },
  'run.complete': {
    schema: RunComplete,
    sender: 'agent',
    description: 'All chunks sent: counts, digest, timings.',
  },
  'run.failed': { schema: RunFailed, sender: 'agent', description: 'An accepted run could not finish.' },
  'run.ack': { schema: RunAck, sender: 'cloud', description: 'The final outcome of a run is recorded.' },
  error: { schema: ErrorReply, sender: 'both', description: 'A message could not be acted on.' },
} as const satisfies { [T in MessageType]: CatalogueEntry };

/** All message types, in catalogue order. */
export const MESSAGE_TYPES = Object.keys(MESSAGES) as MessageType[];

/** True when `type` names a message of this protocol version. */
export function isMessageType(type: unknown): type is MessageType {
  return typeof type === 'string' && Object.hasOwn(MESSAGES, type);
}

/** True when `from` may send a message of `type` (the gateway and agent check every message). */
export function maySend(from: 'agent' | 'cloud', type: MessageType): boolean {
  const sender = MESSAGES[type].sender;
  return sender === 'both' || sender === from;
}

type JsonSchema = Record<string, unknown>;

export interface MessageCatalogue {
  title: string;
  /** The JSON Schema dialect of every `schema` below. */
  jsonSchemaDialect: string;
  protocolVersion: string;
  limits: typeof PROTOCOL_LIMITS;
  codes: { refusal: string[]; jobReject: string[]; runFailure: string[]; error: string[] };
  messages: Record<MessageType, { sender: Sender; description: string; schema: JsonSchema }>;
}

/**
 * The whole protocol as data: JSON Schema (draft 2020-12, input side) of every message, its sender,
 * the limits and the codes. For other implementations, for documentation, and for the snapshot test
 * that fails when the catalogue changes without a version bump.
 */
export function messageCatalogue(): MessageCatalogue {
  const messages = {} as MessageCatalogue['messages'];
  for (const type of MESSAGE_TYPES) {
    const { schema, sender, description } = MESSAGES[type];
    messages[type] = { sender, description, schema: toJsonSchema(schema) };
  }
  return {
    title: 'Keystage agent ↔ control plane protocol',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    protocolVersion: PROTOCOL_VERSION,
    limits: PROTOCOL_LIMITS,
    codes: {
      refusal: RefusalCodeSchema.options,
      jobReject: JobRejectCodeSchema.options,
      runFailure: RunFailureCodeSchema.options,
      error: ErrorCodeSchema.options,
    },
    messages,
  };
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  // `input`: what a sender may put on the wire. Refinements (cross-field rules) are not expressible
  // in JSON Schema and are left out; docs/protocol.md states them.
  const { $schema: _omit, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}
