/**
 * Errors meant for people: `message` is one line that says what is wrong and with what.
 * `code` is stable for programs (`demo_mis.target_unreachable` …).
 */
export type DemoMisErrorCode =
  | 'demo_mis.bad_option'
  | 'demo_mis.target_unwritable'
  | 'demo_mis.target_unreachable'
  | 'demo_mis.target_missing'
  | 'demo_mis.auth_failed'
  | 'demo_mis.not_demo_database'
  | 'demo_mis.day_applied'
  | 'demo_mis.write_failed';

export class DemoMisError extends Error {
  constructor(
    readonly code: DemoMisErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DemoMisError';
  }
}

/** A one-line description of any error, for the CLI. */
export function describeError(err: unknown): string {
  if (err instanceof DemoMisError) return err.message;
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  return String(err);
}
