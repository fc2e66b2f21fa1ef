import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FormatError, FormatErrorCode } from './errors.js';

/**
 * HTTP headers of a webhook delivery. Header names are case-insensitive on the wire; these are the
 * spellings Keystage sends.
 */
export const WebhookHeader = {
  /** `t=<unix seconds>,v1=<hex HMAC-SHA256>`: see {@link signWebhook}. */
  Signature: 'Keystage-Signature',
  /** The same on every attempt to deliver one change set: a partner dedupes by it. */
  IdempotencyKey: 'Keystage-Idempotency-Key',
  /** Unique per delivery (an id to quote to support); not for deduplication. */
  DeliveryId: 'Keystage-Delivery-Id',
} as const;

/** How far a signature's timestamp may be from the verifier's clock, either way, by default. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** The prefix of a webhook secret; it tells a human (and secret scanners) what a leaked string is. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/**
 * A fresh webhook signing secret: `whsec_` + base64url of 32 random bytes (43 characters). The whole
 * string, prefix included, is the HMAC key: partners use it exactly as shown.
 */
export function generateWebhookSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export interface SignWebhookOptions {
  /** The partner's signing secret, used as the HMAC key as its UTF-8 bytes. */
  secret: string;
  /** When the request is sent, in whole seconds since the Unix epoch. */
  timestamp: number;
  /** The exact bytes of the request body (a string is taken as UTF-8). */
  body: Buffer | string;
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new FormatError(
      FormatErrorCode.InvalidInput,
      'a webhook timestamp is whole non-negative unix seconds',
    );
  }
}

function checkSecret(secret: string): void {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new FormatError(FormatErrorCode.InvalidInput, 'a webhook secret is a non-empty string');
  }
}

/** HMAC-SHA256(key = UTF-8 of `secret`, message = `<timestamp>.` followed by the body bytes). */
function signature(secret: string, timestamp: number, body: Buffer | string): Buffer {
  return createHmac('sha256', secret)
    .update(`${timestamp}.`, 'utf8')
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest();
}

/**
 * The `Keystage-Signature` header value for one request: `t=<timestamp>,v1=<signature>`, where the
 * signature is the lowercase hex of HMAC-SHA256 keyed with the secret's UTF-8 bytes over the ASCII
 * timestamp, a `.`, and then the body's bytes exactly as sent. Signing the timestamp with the body
 * lets a receiver refuse an old request replayed (see {@link verifyWebhook}).
 */
export function signWebhook({ secret, timestamp, body }: SignWebhookOptions): string {
  checkSecret(secret);
  checkTimestamp(timestamp);
  return `t=${timestamp},v1=${signature(secret, timestamp, body).toString('hex')}`;
}

export interface VerifyWebhookOptions {
  /** The secrets to accept: the current one and, while rotating, the previous one. */
  secrets: readonly string[];
  /** The `Keystage-Signature` header as received. */
  header: string | undefined;
  /** The raw request body as received: the bytes, not JSON parsed and re-serialised. */
  body: Buffer | string;
  /** Largest allowed distance between the timestamp and `now`; {@link DEFAULT_WEBHOOK_TOLERANCE_SECONDS}. */
  toleranceSeconds?: number;
  /** The verifier's clock in unix seconds; the system clock unless given. */
  now?: number;
}

export type WebhookRejection =
  | 'malformed_header'
  | 'timestamp_too_old'
  | 'timestamp_in_future'
  | 'no_matching_signature';

export type VerifyWebhookResult = { ok: true } | { ok: false; reason: WebhookRejection };

const TIMESTAMP = /^\d{1,15}$/;
const HEX_SIGNATURE = /^[0-9a-fA-F]{64}$/;

/** Parses `t=…,v1=…[,v1=…]`; other schemes (a future `v2`) are skipped. Undefined when malformed. */
function parseHeader(header: string): { timestamp: number; signatures: Buffer[] } | undefined {
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const equals = part.indexOf('=');
    if (equals <= 0) return undefined;
    const name = part.slice(0, equals).trim();
    const value = part.slice(equals + 1).trim();
    if (name === 't') {
      if (timestamp !== undefined || !TIMESTAMP.test(value)) return undefined;
      timestamp = Number(value);
    } else if (name === 'v1') {
      if (!HEX_SIGNATURE.test(value)) return undefined;
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === undefined || signatures.length === 0) return undefined;
  return { timestamp, signatures };
}

/**
 * Checks a `Keystage-Signature` header against the raw body, in this order: the header must parse
 * (`malformed_header`); its timestamp must be within `toleranceSeconds` of `now`
 * (`timestamp_too_old`, `timestamp_in_future`); and one of its `v1` signatures must equal the
 * HMAC under one of `secrets` (`no_matching_signature`), compared in constant time. Every secret is
 * tried, so a partner can accept the previous secret during a rotation. Throws only for a caller's
 * mistake (no secrets, a negative tolerance), never for what a request contains.
 */
export function verifyWebhook({
  secrets,
  header,
  body,
  toleranceSeconds = DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  now = Math.floor(Date.now() / 1000),
}: VerifyWebhookOptions): VerifyWebhookResult {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new FormatError(FormatErrorCode.InvalidInput, 'verifyWebhook needs at least one secret');
  }
  for (const secret of secrets) checkSecret(secret);
  if (!Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    throw new FormatError(FormatErrorCode.InvalidInput, 'toleranceSeconds must be a non-negative number');
  }
  if (!Number.isFinite(now)) throw new FormatError(FormatErrorCode.InvalidInput, 'now must be unix seconds');
  const parsed = typeof header === 'string' ? parseHeader(header) : undefined;
  if (!parsed) return { ok: false, reason: 'malformed_header' };
  if (now - parsed.timestamp > toleranceSeconds) return { ok: false, reason: 'timestamp_too_old' };
  if (parsed.timestamp - now > toleranceSeconds) return { ok: false, reason: 'timestamp_in_future' };
  for (const secret of secrets) {
    const expected = signature(secret, parsed.timestamp, body);
    for (const received of parsed.signatures) {
      if (timingSafeEqual(expected, received)) return { ok: true };
    }
  }
  return { ok: false, reason: 'no_matching_signature' };
}
