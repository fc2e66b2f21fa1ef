import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import {
  isMessageType,
  MESSAGES,
  type Message,
  type MessageBody,
  type MessageOf,
  type MessageType,
} from './catalogue.js';
import { ErrorCode } from './codes.js';
import { MAX_CHUNK_FRAME_HEADER_BYTES, MAX_FRAME_BYTES, MAX_MESSAGE_TEXT_LENGTH } from './limits.js';
import { PROTOCOL_VERSION, parseProtocolVersion, SUPPORTED_PROTOCOL_VERSIONS } from './version.js';

/** The codes {@link parseMessage} can return. */
export type ParseErrorCode =
  | typeof ErrorCode.Malformed
  | typeof ErrorCode.UnknownType
  | typeof ErrorCode.TooLarge
  | typeof ErrorCode.VersionUnsupported;

export interface ParseErrorDetails {
  /** The message's `id`, when it could be read: use it as `replyTo` of the error reply. */
  messageId?: string;
  /** The message's `type`, when it could be read. */
  type?: string;
  /** Validation problems (at most {@link MAX_REPORTED_ISSUES}); paths are dotted, e.g. `body.seq`. */
  issues?: Array<{ path: string; message: string }>;
  /** The protocol version the message claimed. */
  received?: string;
  /** The versions this side accepts (for `protocol.version_unsupported`). */
  supported?: { min: string; max: string };
  /** Size of the frame and the limit it broke (for `protocol.too_large`). */
  size?: number;
  limit?: number;
}

export interface ParseError {
  code: ParseErrorCode;
  message: string;
  details: ParseErrorDetails;
}

export type ParseResult = { ok: true; message: Message } | { ok: false; error: ParseError };

export interface ParseOptions {
  /** Frame limit in bytes; {@link MAX_FRAME_BYTES} by default. */
  maxBytes?: number;
}

/** Validation issues beyond this many are counted, not listed: the reply must stay small. */
export const MAX_REPORTED_ISSUES = 10;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const UUID_LIKE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Turns one received frame into a typed message, or a typed error; it never throws, whatever the
 * input. In order: size (before reading anything), UTF-8, JSON, an object, a protocol version of a
 * compatible major, a known `type`, then the full schema of that type. An error carries the
 * message's `id` and `type` when they could be read, so the receiver can answer with
 * {@link errorReplyFor} (or `refused`, for a version error at connect).
 */
export function parseMessage(raw: string | Uint8Array, options: ParseOptions = {}): ParseResult {
  try {
    return parseUnsafe(raw, options.maxBytes ?? MAX_FRAME_BYTES);
  } catch {
    // Nothing above is expected to throw; this keeps the promise if some input proves otherwise.
    return fail(ErrorCode.Malformed, 'the message could not be read', {});
  }
}

function parseUnsafe(raw: string | Uint8Array, maxBytes: number): ParseResult {
  let text: string;
  if (typeof raw === 'string') {
    // A UTF-16 unit is 1 to 3 bytes of UTF-8: count exactly only when it could matter.
    const size =
      raw.length > maxBytes || raw.length * 3 > maxBytes ? Buffer.byteLength(raw, 'utf8') : raw.length;
    if (size > maxBytes) return tooLarge(size, maxBytes);
    text = raw;
  } else if (raw instanceof Uint8Array) {
    if (raw.byteLength > maxBytes) return tooLarge(raw.byteLength, maxBytes);
    try {
      text = utf8.decode(raw);
    } catch {
      return fail(ErrorCode.Malformed, 'the frame is not valid UTF-8', {});
    }
  } else {
    return fail(ErrorCode.Malformed, 'the frame is neither text nor bytes', {});
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(ErrorCode.Malformed, 'the frame is not JSON', {});
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(ErrorCode.Malformed, 'a message is a JSON object', {});
  }

  const record = value as Record<string, unknown>;
  const details: ParseErrorDetails = {};
  if (typeof record.id === 'string' && UUID_LIKE.test(record.id)) details.messageId = record.id;
  if (typeof record.type === 'string' && record.type.length <= 64) details.type = record.type;

  const version = parseProtocolVersion(record.protocolVersion);
  if (!version) return fail(ErrorCode.Malformed, 'protocolVersion is missing or not major.minor', details);
  const ours = parseProtocolVersion(PROTOCOL_VERSION)!;
  if (version.major !== ours.major) {
    return fail(
      ErrorCode.VersionUnsupported,
      `protocol ${record.protocolVersion} is not supported; this side speaks ${SUPPORTED_PROTOCOL_VERSIONS.min} to ${SUPPORTED_PROTOCOL_VERSIONS.max}`,
      {
        ...details,
        received: record.protocolVersion as string,
        supported: { ...SUPPORTED_PROTOCOL_VERSIONS },
      },
    );
  }

  if (typeof record.type !== 'string') return fail(ErrorCode.Malformed, 'type is missing', details);
  if (!isMessageType(record.type)) {
    return fail(ErrorCode.UnknownType, 'unknown message type', details);
  }

  const result = (MESSAGES[record.type].schema as z.ZodType<Message>).safeParse(value);
  if (!result.success) {
    return fail(ErrorCode.Malformed, `invalid ${record.type} message`, {
      ...details,
      issues: summarise(result.error),
    });
  }
  return { ok: true, message: result.data };
}

function summarise(error: z.ZodError): Array<{ path: string; message: string }> {
  const issues = error.issues.slice(0, MAX_REPORTED_ISSUES).map((issue) => ({
    path: issue.path.map(String).join('.').slice(0, 200),
    message: issue.message.slice(0, 200),
  }));
  const more = error.issues.length - issues.length;
  if (more > 0) issues.push({ path: '', message: `and ${more} more` });
  return issues;
}

function tooLarge(size: number, limit: number): { ok: false; error: ParseError } {
  return fail(ErrorCode.TooLarge, `the frame is ${size} bytes; the limit is ${limit}`, { size, limit });
}

function fail(
  code: ParseErrorCode,
  message: string,
  details: ParseErrorDetails,
): { ok: false; error: ParseError } {
  return { ok: false, error: { code, message, details } };
}

export interface CreateMessageOptions {
  /** The `id` of the message this one answers. */
  replyTo?: string;
  /** Only for tests and fixed examples: a fresh UUID otherwise. */
  id?: string;
  /** The clock; injectable for tests. */
  now?: Date;
}

/**
 * Wraps a body in an envelope: a fresh id, this build's protocol version, the time. It does not
 * validate; {@link encodeMessage} does, before anything leaves the process.
 */
export function createMessage<T extends MessageType>(
  type: T,
  body: MessageBody<T>,
  options: CreateMessageOptions = {},
): MessageOf<T> {
  const message = {
    id: options.id ?? randomUUID(),
    protocolVersion: PROTOCOL_VERSION,
    type,
    ...(options.replyTo === undefined ? {} : { replyTo: options.replyTo }),
    sentAt: (options.now ?? new Date()).toISOString(),
    body,
  };
  return message as unknown as MessageOf<T>;
}

/** Thrown by {@link encodeMessage}: this side tried to send something the protocol forbids (a bug). */
export class ProtocolEncodeError extends Error {
  override readonly name = 'ProtocolEncodeError';

  constructor(
    readonly code: typeof ErrorCode.Malformed | typeof ErrorCode.TooLarge | typeof ErrorCode.UnknownType,
    message: string,
    readonly issues: Array<{ path: string; message: string }> = [],
  ) {
    super(message);
  }
}

/**
 * Validates `message` against its schema and serialises it as one JSON text frame. Throws
 * {@link ProtocolEncodeError} if it is invalid or larger than `maxBytes`: sending garbage is this
 * side's bug, and the peer would only answer `protocol.malformed`.
 */
export function encodeMessage(message: Message, options: ParseOptions = {}): string {
  const maxBytes = options.maxBytes ?? MAX_FRAME_BYTES;
  if (!isMessageType(message.type)) {
    throw new ProtocolEncodeError(ErrorCode.UnknownType, `unknown message type ${String(message.type)}`);
  }
  const result = (MESSAGES[message.type].schema as z.ZodType<Message>).safeParse(message);
  if (!result.success) {
    const issues = summarise(result.error);
    throw new ProtocolEncodeError(
      ErrorCode.Malformed,
      `invalid ${message.type} message: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const text = JSON.stringify(result.data);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) {
    throw new ProtocolEncodeError(
      ErrorCode.TooLarge,
      `${message.type} is ${size} bytes; the limit is ${maxBytes}`,
    );
  }
  return text;
}

/** A binary chunk frame, read: its `chunk.data` header and the chunk's bytes (a view of the frame). */
export type ChunkFrameResult =
  | { ok: true; message: MessageOf<'chunk.data'>; payload: Buffer }
  | { ok: false; error: ParseError };

/**
 * One binary chunk frame (since 1.3): u32 big-endian length of the header, the header — a
 * `chunk.data` message as UTF-8 JSON, validated like any message —, then exactly `byteLength`
 * bytes of the chunk. Saves base64 (a third more bytes) and its encoding, checking and decoding on
 * both sides. Throws {@link ProtocolEncodeError} as {@link encodeMessage} does, and when `payload`
 * is not `byteLength` bytes.
 */
export function encodeChunkFrame(message: MessageOf<'chunk.data'>, payload: Uint8Array): Buffer {
  if (message.type !== 'chunk.data') {
    throw new ProtocolEncodeError(ErrorCode.Malformed, 'a binary frame carries a chunk.data message');
  }
  const header = Buffer.from(encodeMessage(message, { maxBytes: MAX_CHUNK_FRAME_HEADER_BYTES }), 'utf8');
  if (payload.length !== message.body.byteLength) {
    throw new ProtocolEncodeError(
      ErrorCode.Malformed,
      `chunk.data says ${message.body.byteLength} bytes; the payload has ${payload.length}`,
    );
  }
  const frame = Buffer.allocUnsafe(4 + header.length + payload.length);
  frame.writeUInt32BE(header.length, 0);
  header.copy(frame, 4);
  frame.set(payload, 4 + header.length);
  return frame;
}

/**
 * Reads one binary frame as a chunk frame (see {@link encodeChunkFrame}); never throws. Errors as
 * {@link parseMessage}'s (`protocol.too_large`, `protocol.malformed` …), with `protocol.malformed`
 * also for a header that is not `chunk.data` or a payload that is not `byteLength` bytes.
 */
export function parseChunkFrame(frame: Uint8Array, options: ParseOptions = {}): ChunkFrameResult {
  try {
    const maxBytes = options.maxBytes ?? MAX_FRAME_BYTES;
    if (!(frame instanceof Uint8Array)) return fail(ErrorCode.Malformed, 'the frame is not bytes', {});
    if (frame.byteLength > maxBytes) return tooLarge(frame.byteLength, maxBytes);
    const bytes = Buffer.isBuffer(frame)
      ? frame
      : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    if (bytes.length < 4)
      return fail(ErrorCode.Malformed, 'a binary frame starts with its header length', {});
    const headerLength = bytes.readUInt32BE(0);
    if (headerLength > MAX_CHUNK_FRAME_HEADER_BYTES || 4 + headerLength > bytes.length) {
      return fail(ErrorCode.Malformed, 'the binary frame header length is out of bounds', {});
    }
    const parsed = parseUnsafe(bytes.subarray(4, 4 + headerLength), MAX_CHUNK_FRAME_HEADER_BYTES);
    if (!parsed.ok) return parsed;
    const message = parsed.message;
    if (message.type !== 'chunk.data') {
      return fail(ErrorCode.Malformed, 'a binary frame carries a chunk.data message', {
        messageId: message.id,
        type: message.type,
      });
    }
    const payload = bytes.subarray(4 + headerLength);
    if (payload.length !== message.body.byteLength) {
      return fail(ErrorCode.Malformed, 'byteLength is not the length of the bytes after the header', {
        messageId: message.id,
        type: message.type,
      });
    }
    return { ok: true, message, payload };
  } catch {
    return fail(ErrorCode.Malformed, 'the frame could not be read', {});
  }
}

/**
 * The `error` message answering a failed {@link parseMessage}: same code, the message's id as
 * `replyTo` when it was readable, and the details (issues, limits, supported versions).
 */
export function errorReplyFor(
  error: ParseError,
  options: Omit<CreateMessageOptions, 'replyTo'> = {},
): MessageOf<'error'> {
  const { messageId, ...details } = error.details;
  return createMessage(
    'error',
    { code: error.code, message: error.message.slice(0, MAX_MESSAGE_TEXT_LENGTH), details: { ...details } },
    { ...options, ...(messageId === undefined ? {} : { replyTo: messageId }) },
  );
}
