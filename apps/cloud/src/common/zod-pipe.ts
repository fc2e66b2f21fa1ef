import { type PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { AppError } from './app-error.js';

/**
 * Validates a body, query or parameter against a zod schema. Object schemas should be `z.strictObject`
 * so unknown fields are rejected rather than silently dropped. Every problem is reported with its path.
 */
export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.infer<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.infer<T> {
    const parsed = this.schema.safeParse(value ?? {});
    if (parsed.success) return parsed.data;
    throw new AppError(
      'request.invalid',
      'request validation failed',
      400,
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), code: i.code, message: i.message })),
    );
  }
}

export const Uuid = z.uuid();

/** OpenAPI schema of a zod schema, for @ApiBody. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** Text that people type: trimmed, bounded, no control characters. Stored and returned as given. */
export const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
      (v) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v),
      'must not contain control characters',
    );

export const Email = z
  .string()
  .trim()
  .max(320)
  .pipe(z.email())
  .transform((v) => v.toLowerCase());

export const Password = z.string().min(12, 'must be at least 12 characters').max(256);
