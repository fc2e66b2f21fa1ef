import { z } from 'zod';
import { IsoDateTime, ProtocolVersionText, Uuid } from './primitives.js';

/**
 * The fields every message carries around its `body`:
 * - `id`: a fresh UUID per message; receivers are idempotent by it;
 * - `protocolVersion`: the sender's own `major.minor`;
 * - `type`: which message this is (the discriminator);
 * - `replyTo`: the `id` of the message this one answers, when it answers one;
 * - `sentAt`: the sender's clock when it sent the message.
 */
export const Envelope = z.object({
  id: Uuid,
  protocolVersion: ProtocolVersionText,
  type: z.string(),
  replyTo: Uuid.optional(),
  sentAt: IsoDateTime,
});
export type Envelope = z.infer<typeof Envelope>;

/**
 * Builds one message schema: the envelope with a literal `type` and the given `body`. Objects strip
 * unknown keys (a newer minor may add fields) rather than rejecting them.
 */
export function defineMessage<const T extends string, B extends z.ZodType>(type: T, body: B) {
  return z.object({
    id: Uuid,
    protocolVersion: ProtocolVersionText,
    type: z.literal(type),
    replyTo: Uuid.optional(),
    sentAt: IsoDateTime,
    body,
  });
}
