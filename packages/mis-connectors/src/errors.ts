/**
 * Errors with a stable `code` for programs and a one-line `message` for people. Messages are
 * built by the connectors, never passed through blindly: no password, no connection string
 * with a password, no row values (a data error says which SQLSTATE/number, not the value).
 * The driver's error is deliberately NOT kept as `cause`, because loggers serialise causes.
 */
export const MIS_ERROR_CODES = [
  /** The server cannot be reached: refused, timed out, unknown host, database missing, too many connections. */
  'mis.unavailable',
  /** The server refused the login (wrong password, unknown user). */
  'mis.auth_failed',
  /** The database refused the statement: no privilege, or a write in the read-only mode. */
  'mis.permission_denied',
  /** Any other failure of the statement (syntax, unknown column, data error). */
  'mis.query_failed',
  /** The stream was cancelled by `cancel()`, an AbortSignal, or the server admin. */
  'mis.cancelled',
  /** The stream passed its `timeoutMs` deadline. */
  'mis.timeout',
  /** A parameter is missing, unused placeholder syntax is used, or a value does not fit its type. */
  'mis.bad_parameter',
  /** The connection settings are incomplete or invalid (including a password inside a URL). */
  'mis.bad_config',
  /** A stream is already running on this connector. */
  'mis.busy',
  /** SQL Server only: the login can write and the connector refuses to run with it. */
  'mis.account_can_write',
] as const;
export type MisErrorCode = (typeof MIS_ERROR_CODES)[number];

export class MisError extends Error {
  constructor(
    readonly code: MisErrorCode,
    message: string,
    /** The driver's own code (`25006`, `ER_ACCESS_DENIED_ERROR`, `SQLITE_READONLY`, `ELOGIN`), when any. */
    readonly driverCode?: string,
  ) {
    super(message);
    this.name = 'MisError';
  }

  toJSON(): { code: MisErrorCode; message: string; driverCode?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.driverCode ? { driverCode: this.driverCode } : {}),
    };
  }
}

export function isMisError(err: unknown): err is MisError {
  return err instanceof MisError;
}

/** Network-level error codes of Node sockets and DNS: all mean "cannot reach". */
export const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ECONNABORTED',
]);

export function networkReason(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return 'host unreachable';
    default:
      return 'connection lost';
  }
}

/** Removes a secret from a message (defence in depth: messages are built without it anyway). */
export function withoutSecret(message: string, secret: string | undefined): string {
  let out = message.split('\n')[0] ?? '';
  if (secret && secret.length >= 3) out = out.split(secret).join('***');
  return out.replace(/(\/\/[^:/@\s]+):[^@/\s]*@/g, '$1:***@');
}

export function errorCodeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : typeof c === 'number' ? String(c) : undefined;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
