import { z } from 'zod';
import { JobRejectCodeSchema } from './codes.js';
import { defineMessage } from './envelope.js';
import { MAX_PARAMETER_STRING_LENGTH, MAX_PARAMETERS, MAX_REUSE_CHUNKS, MAX_SQL_LENGTH } from './limits.js';
import { Base64, Count, IsoDateTime, MessageText, Nonce, Sha256Hex, Signature, Uuid } from './primitives.js';

// Everything inside a signed job is a *loose* object: unknown keys are kept, not stripped. The
// signature covers the canonical JSON of the payload as the cloud signed it, so an agent of an older
// minor must verify the fields it does not know too; stripping them would break the signature.

const ParameterName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);

function parameter<const T extends string, V extends z.ZodType>(type: T, value: V) {
  return z.looseObject({ name: ParameterName, type: z.literal(type), value: value.nullable() });
}

/** One typed query parameter. `null` is allowed for every type; the connector binds SQL NULL. */
export const JobParameter = z.discriminatedUnion('type', [
  parameter('string', z.string().max(MAX_PARAMETER_STRING_LENGTH)),
  parameter('integer', z.int()),
  parameter('number', z.number()),
  parameter('boolean', z.boolean()),
  /** A calendar date, `YYYY-MM-DD`. */
  parameter('date', z.iso.date()),
  /** An instant, ISO 8601 UTC. */
  parameter('datetime', z.iso.datetime()),
]);
export type JobParameter = z.infer<typeof JobParameter>;

/** What the agent is asked to run: the payload of a signed job envelope. */
export const JobSpec = z.looseObject({
  runId: Uuid,
  extractVersionId: Uuid,
  /** The dataset of the extract version this query produces (`pupils`, `attendance_marks` …). */
  datasetName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/),
  /** Exactly one read-only statement, with named parameters. */
  sql: z.string().min(1).max(MAX_SQL_LENGTH),
  /** sha256 (hex) of the UTF-8 of `sql`, as approved in the extract version and data agreement. */
  sqlSha256: Sha256Hex,
  parameters: z
    .array(JobParameter)
    .max(MAX_PARAMETERS)
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((p, index) => {
        if (seen.has(p.name))
          ctx.addIssue({ code: 'custom', path: [index, 'name'], message: 'duplicate name' });
        seen.add(p.name);
      });
    }),
  /** The agent abandons the run (`run.failed`, `run.deadline_exceeded`) if not done by then. */
  deadline: IsoDateTime,
  /**
   * The control plane's X25519 key for results: the agent wraps the run's data key for it
   * (`job.accept.dataKey`), so only the control plane can read the chunks.
   */
  resultKey: z.looseObject({
    alg: z.literal('X25519'),
    /** sha256 (hex) of the key's SPKI DER. */
    keyId: Sha256Hex,
    /** SPKI DER, base64. */
    publicKey: Base64.max(256),
  }),
  /**
   * Since 1.2, optional: the chunks of the last result the control plane still holds for this
   * dataset (same school, extract and parameters), as the sha256 (hex) of each chunk's plaintext in
   * seq order. A chunk whose plaintext hashes the same as entry `seq` may be sent as `chunk.reuse`
   * instead of its bytes. An agent of 1.1 ignores the field (and uploads everything).
   */
  reuse: z.looseObject({ chunks: z.array(Sha256Hex).max(MAX_REUSE_CHUNKS) }).optional(),
});
export type JobSpec = z.infer<typeof JobSpec>;

/**
 * A job as signed by the control plane (`@keystage/crypto` `signEnvelope(spec, key, { kind: 'job' })`).
 * The agent verifies it against the key pinned at enrolment before anything else.
 */
export const SignedJob = z.looseObject({
  v: z.literal(1),
  alg: z.literal('Ed25519'),
  kind: z.literal('job'),
  /** sha256 (hex) of the signing key's SPKI DER. */
  keyId: Sha256Hex,
  /** Unique per envelope; the agent's replay check remembers it until `expiresAt`. */
  nonce: Nonce,
  issuedAt: IsoDateTime,
  /** The agent must not start the job after this instant. */
  expiresAt: IsoDateTime,
  payload: JobSpec,
  signature: Signature,
});
export type SignedJob = z.infer<typeof SignedJob>;

/** Cloud → agent: run this job. Pushed while connected, or in reply to `work.pull`. */
export const JobOffer = defineMessage('job.offer', z.object({ job: SignedJob }));
export type JobOffer = z.infer<typeof JobOffer>;

/**
 * Agent → cloud, in reply to `job.offer`: the job passed every check and will run. Carries the run's
 * data key wrapped for `resultKey` (`wrapKeyForRecipient(dataKey, resultKey, runId)`). The cloud then
 * grants upload credits with a `chunk.ack` (`nextSeq` 0). Idempotent by `runId`: an agent offered a
 * run it already accepted answers with the same `job.accept` again.
 */
export const JobAccept = defineMessage(
  'job.accept',
  z.object({
    runId: Uuid,
    dataKey: z.object({
      /** `keyId` of the `resultKey` the data key was wrapped for. */
      keyId: Sha256Hex,
      /** The wrapped key, base64 (93 bytes: see `@keystage/crypto` `wrapKeyForRecipient`). */
      wrapped: Base64.max(256),
    }),
  }),
);
export type JobAccept = z.infer<typeof JobAccept>;

/**
 * Agent → cloud, in reply to `job.offer`: the job was refused before touching the MIS. `runId` is
 * as read from the offer, which may be forged: the cloud records it only against a run it knows.
 */
export const JobReject = defineMessage(
  'job.reject',
  z.object({
    runId: Uuid,
    code: JobRejectCodeSchema,
    message: MessageText,
    /** True when offering the same run again later may succeed (`job.busy`, `job.credentials_missing`). */
    retryable: z.boolean(),
  }),
);
export type JobReject = z.infer<typeof JobReject>;

/** Cloud → agent: stop this run. The agent stops the query and answers `run.failed` (`run.cancelled`). */
export const JobCancel = defineMessage('job.cancel', z.object({ runId: Uuid, reason: MessageText }));
export type JobCancel = z.infer<typeof JobCancel>;

/** Agent → cloud, now and then during a run, for the fleet view. Never required for correctness. */
export const JobProgress = defineMessage(
  'job.progress',
  z.object({
    runId: Uuid,
    phase: z.enum(['querying', 'streaming', 'uploading']),
    rowsRead: Count,
    chunksSent: Count,
    bytesSent: Count,
  }),
);
export type JobProgress = z.infer<typeof JobProgress>;
