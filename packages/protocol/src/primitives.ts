import { z } from 'zod';
import { MAX_MESSAGE_TEXT_LENGTH } from './limits.js';

// Field types shared by the messages. Binary data is standard base64 (padded); random identifiers
// meant for URLs and headers (nonces) are base64url without padding; hashes are lowercase hex.

/** An RFC 9562 UUID: message ids, agent ids, run ids, extract version ids. */
export const Uuid = z.uuid();
/** An instant as ISO 8601 in UTC with `Z`, e.g. `2025-03-01T09:00:00.000Z`. */
export const IsoDateTime = z.iso.datetime();
/** A `major.minor` protocol version, e.g. `1.0`. */
export const ProtocolVersionText = z.string().regex(/^(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})$/);
/** A sha256 digest as 64 lowercase hex characters. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
/** Binary data as standard base64 with padding. */
export const Base64 = z.base64();
/** A server or envelope nonce: at least 32 random bytes as unpadded base64url. */
export const Nonce = z.base64url().min(43).max(128);
/** An Ed25519 signature: 64 bytes as base64 (88 characters). */
export const Signature = z.base64().length(88);
/** A count or size: a safe non-negative integer. */
export const Count = z.int().min(0);
/** Human-readable text (never pupil data, never secrets). */
export const MessageText = z.string().max(MAX_MESSAGE_TEXT_LENGTH);
/** A software version as reported by the software itself (`1.4.2`, `15.6 (Debian)` …). */
export const SoftwareVersion = z.string().min(1).max(128);

/**
 * The school's MIS as the agent is configured for it (the same values as the control plane's
 * `MisType`). The database engine and its version travel separately, as free text.
 */
export const MisKind = z.enum(['SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL', 'OTHER']);
export type MisKind = z.infer<typeof MisKind>;
