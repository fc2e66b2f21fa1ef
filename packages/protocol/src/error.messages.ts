import { z } from 'zod';
import { ErrorCodeSchema } from './codes.js';
import { defineMessage } from './envelope.js';
import { MessageText } from './primitives.js';

/**
 * Either direction: the receiver could not act on a message (its `id` is in `replyTo` when it could
 * be read). Sent instead of crashing or silently dropping; the connection stays open unless the
 * sender keeps misbehaving. `details` is small structured context (validation issues, limits).
 */
export const ErrorReply = defineMessage(
  'error',
  z.object({
    code: ErrorCodeSchema,
    message: MessageText,
    details: z.record(z.string(), z.unknown()).optional(),
  }),
);
export type ErrorReply = z.infer<typeof ErrorReply>;
