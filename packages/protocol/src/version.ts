/**
 * The protocol version this build speaks, `major.minor`.
 *
 * - Same major: compatible. A minor release only adds (optional fields, new message types, new
 *   codes); a receiver ignores fields it does not know, and a sender uses additions only once the
 *   peer's version (from the envelope) shows it knows them.
 * - A new major may break anything; peers of different majors refuse each other at connect.
 *
 * Every change to the message catalogue needs a bump here, an entry in docs/protocol.md's history
 * and a regenerated catalogue snapshot (the catalogue test says how).
 */
export const PROTOCOL_VERSION = '1.3';

/** Versions the control plane built from this package accepts: its own major, any minor up to its own. */
export const SUPPORTED_PROTOCOL_VERSIONS = { min: '1.0', max: PROTOCOL_VERSION } as const;

export interface ProtocolVersion {
  major: number;
  minor: number;
}

const VERSION = /^(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})$/;

/** `'1.2'` → `{ major: 1, minor: 2 }`; undefined for anything else (no leading zeros, no patch). */
export function parseProtocolVersion(text: unknown): ProtocolVersion | undefined {
  if (typeof text !== 'string') return undefined;
  const match = VERSION.exec(text);
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** True when two versions can talk: both valid and of the same major. */
export function isCompatibleVersion(a: string, b: string): boolean {
  const left = parseProtocolVersion(a);
  const right = parseProtocolVersion(b);
  return left !== undefined && right !== undefined && left.major === right.major;
}

/**
 * The version two compatible peers share: the lower minor of the same major, i.e. the newest
 * feature set both know. Undefined when they are not compatible.
 */
export function negotiateVersion(a: string, b: string): string | undefined {
  const left = parseProtocolVersion(a);
  const right = parseProtocolVersion(b);
  if (!left || !right || left.major !== right.major) return undefined;
  return `${left.major}.${Math.min(left.minor, right.minor)}`;
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b` (both must be valid). */
export function compareVersions(a: string, b: string): number {
  const left = parseProtocolVersion(a);
  const right = parseProtocolVersion(b);
  if (!left || !right) throw new RangeError(`not a protocol version: ${left ? b : a}`);
  return left.major - right.major || left.minor - right.minor;
}
