import { z } from 'zod';
import { RefusalCode, RefusalCodeSchema } from './codes.js';
import { defineMessage } from './envelope.js';
import {
  Count,
  MessageText,
  MisKind,
  Nonce,
  ProtocolVersionText,
  Signature,
  SoftwareVersion,
  Uuid,
} from './primitives.js';

/**
 * Agent → cloud, first message on a new socket. The agent's protocol version is the envelope's
 * `protocolVersion`; the cloud refuses an incompatible major with `refused`.
 */
export const Hello = defineMessage(
  'hello',
  z.object({
    agentId: Uuid,
    agentVersion: SoftwareVersion,
    /** Operating system as `platform release arch`, e.g. `win32 10.0.20348 x64`. */
    os: z.string().min(1).max(128),
    misKind: MisKind,
    hostname: z.string().min(1).max(255).optional(),
  }),
);
export type Hello = z.infer<typeof Hello>;

/** Cloud → agent, in reply to `hello`: a fresh nonce the agent must sign. */
export const Challenge = defineMessage('challenge', z.object({ nonce: Nonce }));
export type Challenge = z.infer<typeof Challenge>;

/**
 * Agent → cloud, in reply to `challenge`: Ed25519 signature with the agent's enrolled key over
 * {@link authSigningInput} of the nonce, the agent id and the agent's protocol version.
 */
export const Auth = defineMessage('auth', z.object({ agentId: Uuid, signature: Signature }));
export type Auth = z.infer<typeof Auth>;

/** Cloud → agent: the session is open. The agent now sends a heartbeat and `work.pull`. */
export const AuthOk = defineMessage(
  'auth.ok',
  z.object({
    agentId: Uuid,
    /** Names this session in the cloud's logs and the fleet view. */
    sessionId: Uuid,
    /** How often the cloud expects a heartbeat; it drops a session silent for 3 intervals. */
    heartbeatIntervalMs: z.int().min(1_000).max(3_600_000),
    serverVersion: SoftwareVersion,
  }),
);
export type AuthOk = z.infer<typeof AuthOk>;

/**
 * Cloud → agent, then the cloud closes the socket. `retryable: false` tells the agent to stop
 * reconnecting (and to say why); `supported` is present for version refusals.
 */
export const Refused = defineMessage(
  'refused',
  z
    .object({
      code: RefusalCodeSchema,
      message: MessageText,
      retryable: z.boolean(),
      supported: z.object({ min: ProtocolVersionText, max: ProtocolVersionText }).optional(),
      retryAfterMs: Count.optional(),
    })
    .superRefine((body, ctx) => {
      if (body.code === RefusalCode.VersionUnsupported && !body.supported) {
        ctx.addIssue({
          code: 'custom',
          path: ['supported'],
          message: 'a version refusal states the supported range',
        });
      }
    }),
);
export type Refused = z.infer<typeof Refused>;

const AUTH_CONTEXT = 'keystage.agent-auth.v1';

/**
 * The exact text an agent signs to answer a challenge. The nonce makes it fresh, the agent id stops
 * a signature being replayed for another agent, the protocol version stops a downgrade, and the
 * context line stops it ever being valid as any other Keystage signature.
 */
export function authSigningInput(input: { nonce: string; agentId: string; protocolVersion: string }): string {
  return `${AUTH_CONTEXT}\n${input.nonce}\n${input.agentId}\n${input.protocolVersion}`;
}
