import { z } from 'zod';

// Every code on the wire, as `as const` objects (for code) and zod enums (for the schemas).
// Codes are `area.reason`, stable, and never reused with another meaning. Adding one is a minor
// change; a receiver that meets a code it does not know treats it as the most cautious of its area.

/** Why the control plane ends a connection at the handshake (`refused`). */
export const RefusalCode = {
  /** The agent's protocol major is not served here; `supported` says what is. Not retryable. */
  VersionUnsupported: 'protocol.version_unsupported',
  /** The challenge signature did not verify. Not retryable with the same key. */
  AuthFailed: 'auth.failed',
  /** No agent with this id is enrolled (or it was replaced by a re-enrolment). Not retryable. */
  AgentUnknown: 'agent.unknown',
  /** The school revoked this agent. Not retryable. */
  AgentRevoked: 'agent.revoked',
  /** Another connection with the same identity took over this session. Not retryable. */
  SessionReplaced: 'session.replaced',
  /** The control plane cannot serve now (draining, overloaded). Retry after `retryAfterMs`. */
  ServerUnavailable: 'server.unavailable',
} as const;
export const RefusalCodeSchema = z.enum(RefusalCode);
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

/** Why an agent refuses a job (`job.reject`). None of these ever touched the MIS. */
export const JobRejectCode = {
  /** Unsigned, signed by another key than the pinned one, tampered, or signed for another purpose. */
  BadSignature: 'job.bad_signature',
  /** The signed envelope's `expiresAt` has passed. */
  Expired: 'job.expired',
  /** The signed envelope's `issuedAt` is in the future: one of the clocks is wrong. */
  NotYetValid: 'job.not_yet_valid',
  /** The envelope's nonce was seen before. */
  Replayed: 'job.replayed',
  /** sha256 of the SQL text is not the `sqlSha256` that was signed. */
  HashMismatch: 'job.hash_mismatch',
  /** The SQL is not exactly one read-only statement. */
  SqlNotReadOnly: 'job.sql_not_read_only',
  /** The job is well signed but unusable (bad parameters, bad validity window, unknown feature). */
  Invalid: 'job.invalid',
  /** The agent is at capacity. Retryable. */
  Busy: 'job.busy',
  /** No MIS credentials (not set, or a supervised agent without an operator). Retryable. */
  CredentialsMissing: 'job.credentials_missing',
} as const;
export const JobRejectCodeSchema = z.enum(JobRejectCode);
export type JobRejectCode = (typeof JobRejectCode)[keyof typeof JobRejectCode];

/** Why an accepted run failed on the agent (`run.failed`). */
export const RunFailureCode = {
  /** The MIS database could not be reached. */
  MisUnavailable: 'mis.unavailable',
  /** The MIS refused the stored credentials. */
  MisAuthFailed: 'mis.auth_failed',
  /** The MIS account may not read something the query needs. */
  MisPermissionDenied: 'mis.permission_denied',
  /** The MIS reported an error while running the query. */
  MisQueryFailed: 'mis.query_failed',
  /** The job's deadline passed before the result was complete. */
  DeadlineExceeded: 'run.deadline_exceeded',
  /** Stopped because the control plane sent `job.cancel`. */
  Cancelled: 'run.cancelled',
  /** The agent's bounded upload buffer is full. */
  BufferFull: 'agent.buffer_full',
  /** The agent is shutting down. */
  ShuttingDown: 'agent.shutting_down',
  /** Anything else; details stay in the agent's own log. */
  Internal: 'agent.internal',
} as const;
export const RunFailureCodeSchema = z.enum(RunFailureCode);
export type RunFailureCode = (typeof RunFailureCode)[keyof typeof RunFailureCode];

/** Codes of an `error` reply: the receiver could not act on a message. */
export const ErrorCode = {
  /** Not JSON, not an object, missing envelope fields, or a body of the wrong shape. */
  Malformed: 'protocol.malformed',
  /** A `type` this receiver does not know. */
  UnknownType: 'protocol.unknown_type',
  /** Larger than the frame limit. */
  TooLarge: 'protocol.too_large',
  /** A protocol major this receiver does not speak. */
  VersionUnsupported: 'protocol.version_unsupported',
  /** A valid message at the wrong time or from the wrong side (e.g. `heartbeat` before `auth.ok`). */
  Unexpected: 'protocol.unexpected',
  /** The message names a run the receiver does not know (or no longer holds). */
  RunUnknown: 'run.unknown',
  /** A chunk's bytes do not match its `byteLength` or `sha256`. Resend it. */
  ChunkDigestMismatch: 'chunk.digest_mismatch',
  /** A chunk beyond the granted credits. Wait for a `chunk.ack`. */
  ChunkOutOfWindow: 'chunk.out_of_window',
  /**
   * A chunk that does not authenticate for its run and position (tampered with, or replayed from
   * another run or seq). Not to be resent: the cloud cancels the job and retries the run.
   */
  ChunkRejected: 'chunk.rejected',
  /** The receiver failed; nothing more is said on the wire. */
  Internal: 'internal.error',
} as const;
export const ErrorCodeSchema = z.enum(ErrorCode);
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
