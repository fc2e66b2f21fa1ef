/**
 * Errors thrown by the migrator. Each has a one-line `message` meant for people; `describe()`
 * can name where the URL came from (e.g. the DATABASE_URL variable).
 */
export class MigratorError extends Error {
  constructor(
    message: string,
    readonly code: MigratorErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** One line; `source` names where the database URL came from, e.g. `DATABASE_URL`. */
  describe(_source?: string): string {
    return this.message;
  }
}

export type MigratorErrorCode =
  | 'INVALID_URL'
  | 'UNREACHABLE'
  | 'AUTH_FAILED'
  | 'DATABASE_MISSING'
  | 'CONNECTION_FAILED'
  | 'FILES'
  | 'MIGRATION_FAILED'
  | 'ENGINE';

export class InvalidDatabaseUrlError extends MigratorError {
  constructor(readonly reason: string) {
    super(`database URL is not a valid PostgreSQL URL: ${reason}`, 'INVALID_URL');
  }

  override describe(source?: string): string {
    return `${source ?? 'database URL'} is not a valid PostgreSQL URL: ${this.reason}`;
  }
}

export class DatabaseConnectionError extends MigratorError {
  constructor(
    code: 'UNREACHABLE' | 'AUTH_FAILED' | 'DATABASE_MISSING' | 'CONNECTION_FAILED',
    readonly server: string,
    readonly database: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(DatabaseConnectionError.text(code, server, database, reason), code, options);
  }

  override describe(source?: string): string {
    return DatabaseConnectionError.text(this.code, this.server, this.database, this.reason, source);
  }

  private static text(
    code: MigratorErrorCode,
    server: string,
    database: string,
    reason: string,
    source?: string,
  ): string {
    const from = source ? ` (${source})` : '';
    switch (code) {
      case 'UNREACHABLE':
        return `cannot reach PostgreSQL at ${server}${from}: ${reason}`;
      case 'AUTH_FAILED':
        return `PostgreSQL at ${server} refused the credentials${from}: ${reason}`;
      case 'DATABASE_MISSING':
        return `database "${database}" does not exist on PostgreSQL at ${server}${from}`;
      default:
        return `cannot connect to database "${database}" on PostgreSQL at ${server}${from}: ${reason}`;
    }
  }
}

/** The schema file or the migrations folder cannot be read or written. */
export class MigrationFilesError extends MigratorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'FILES', options);
  }
}

/** A migration's SQL failed while being applied. */
export class MigrationFailedError extends MigratorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'MIGRATION_FAILED', options);
  }
}

/** Any other error reported by the schema engine (invalid schema, drift, ...). */
export class SchemaEngineError extends MigratorError {
  constructor(
    message: string,
    readonly engineCode: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, 'ENGINE', options);
  }
}
