/**
 * Stable codes for everything this package refuses. Messages name datasets, columns and change
 * numbers but never a value: rows are pupils' personal data and errors end up in logs.
 */
export const FormatErrorCode = {
  /** A format name that is not in {@link FORMATS} (for example a typo in an extract document). */
  UnknownFormat: 'formats.unknown_format',
  /** Change-set metadata is incomplete or inconsistent (a key column that is not a column…). */
  InvalidChangeSet: 'formats.invalid_change_set',
  /** One change is malformed: unknown op, missing key or row column, a value that is not a scalar. */
  InvalidChange: 'formats.invalid_change',
  /** The changes streamed do not add up to the metadata's `counts`. */
  CountMismatch: 'formats.count_mismatch',
  /** The datasets of a run cannot be written as OneRoster 1.2 CSV. */
  NotOneRoster: 'formats.not_oneroster',
  /** An argument is outside what the function accepts (no secrets, a negative timestamp…). */
  InvalidInput: 'formats.invalid_input',
} as const;
export type FormatErrorCode = (typeof FormatErrorCode)[keyof typeof FormatErrorCode];

/** The one error type thrown by this package. */
export class FormatError extends Error {
  override readonly name = 'FormatError';

  constructor(
    readonly code: FormatErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
