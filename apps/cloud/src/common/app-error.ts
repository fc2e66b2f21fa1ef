/**
 * A domain error with a stable, documented code (`agent.not_connected`, `extract.sql_not_read_only`).
 * The global filter turns it into `{ code, message, details, correlationId }` with `status`.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = 'AppError';
  }

  static notFound(what: string, details: unknown = null) {
    return new AppError(`${what}.not_found`, `${what.replace(/_/g, ' ')} not found`, 404, details);
  }
}

export interface ErrorBody {
  code: string;
  message: string;
  details: unknown;
  correlationId: string;
}
