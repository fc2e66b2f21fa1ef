import { z } from 'zod';
import { defineMessage } from './envelope.js';
import { Count, IsoDateTime, MessageText, MisKind, SoftwareVersion } from './primitives.js';

/**
 * Agent → cloud, right after `auth.ok` and then every `heartbeatIntervalMs`. The control plane
 * shows it in the fleet view; nothing in it may identify a pupil.
 */
export const Heartbeat = defineMessage(
  'heartbeat',
  z.object({
    agentVersion: SoftwareVersion,
    os: z.string().min(1).max(128),
    misKind: MisKind,
    /** The MIS database server's own version string; null until the agent has connected to it. */
    misVersion: SoftwareVersion.nullable(),
    /** Free bytes on the volume of the agent's data directory; null if unknown. */
    freeDiskBytes: Count.nullable(),
    /** Result chunks waiting in the agent's upload buffer. */
    queueDepth: Count,
    /** The most recent error the agent met, if any (a code and a redacted message). */
    lastError: z
      .object({ code: z.string().min(1).max(64), message: MessageText, at: IsoDateTime })
      .nullable(),
    /** True when the agent runs in supervised mode (MIS password only in memory). */
    supervised: z.boolean(),
    /** Whether the agent holds usable MIS credentials right now. */
    credentialsReady: z.boolean(),
    uptimeSeconds: Count,
  }),
);
export type Heartbeat = z.infer<typeof Heartbeat>;

/** Cloud → agent, in reply to `heartbeat`. Its absence tells the agent the link is dead. */
export const HeartbeatAck = defineMessage('heartbeat.ack', z.object({}));
export type HeartbeatAck = z.infer<typeof HeartbeatAck>;

/**
 * Agent → cloud, after `auth.ok` and whenever it has capacity again: "send me pending work". The
 * cloud answers with up to `maxJobs` `job.offer` messages (none if nothing is due), each replying to
 * this message. Work is also pushed without asking while connected; pulling on connect means a job
 * dispatched while the socket was down is never lost.
 */
export const WorkPull = defineMessage('work.pull', z.object({ maxJobs: z.int().min(1).max(64) }));
export type WorkPull = z.infer<typeof WorkPull>;
