import type { DeltaValue } from './encoding.js';

/**
 * Stable codes for everything this package refuses. Messages name columns and, for a duplicate key,
 * the key values; they never contain other row values.
 */
export const DeltaErrorCode = {
  /** An option or argument is outside what the function accepts (columns, key columns, threshold…). */
  InvalidInput: 'delta.invalid_input',
  /** A row cannot be encoded: wrong length, a value that is not string | number | boolean | null, a
   * non-finite number, or a key longer than 65,535 bytes once encoded. Nothing was added. */
  InvalidRow: 'delta.invalid_row',
  /** Two rows of one run have the same key. Thrown as {@link DuplicateKeyError}. */
  DuplicateKey: 'delta.duplicate_key',
  /** A snapshot file is truncated, fails a checksum or is structurally wrong. */
  CorruptSnapshot: 'delta.corrupt_snapshot',
  /** A snapshot file has a format version (or digest) this code does not know. */
  UnsupportedFormat: 'delta.unsupported_format',
  /** The previous and current snapshots have different columns or key columns: resync instead. */
  SchemaMismatch: 'delta.schema_mismatch',
  /** A builder or diff used out of order (add after finish, summary before the end, second iteration). */
  InvalidState: 'delta.invalid_state',
} as const;
export type DeltaErrorCode = (typeof DeltaErrorCode)[keyof typeof DeltaErrorCode];

/** The error type thrown by this package (I/O errors from `node:fs` pass through unchanged). */
export class DeltaError extends Error {
  override readonly name: string = 'DeltaError';

  constructor(
    readonly code: DeltaErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Two rows of one run have the same key. `key` holds the key values in key-column order; the
 * snapshot being built is unusable (the builder has already removed its files).
 */
export class DuplicateKeyError extends DeltaError {
  override readonly name: string = 'DuplicateKeyError';

  constructor(
    readonly keyColumns: readonly string[],
    readonly key: readonly DeltaValue[],
  ) {
    super(
      DeltaErrorCode.DuplicateKey,
      `duplicate key (${keyColumns.join(', ')}) = (${key.map((v) => JSON.stringify(v)).join(', ')}): ` +
        'two rows of this run have the same key',
    );
  }
}
