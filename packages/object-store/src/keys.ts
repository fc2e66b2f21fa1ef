import { InvalidKeyError } from './errors.js';

/**
 * Object keys are `/`-separated paths of one or more segments. Each segment is 1 to 255 characters
 * from `[A-Za-z0-9._=-]` and is neither `.` nor `..`; there are no empty segments (so no leading,
 * trailing or doubled `/`). The whole key is at most {@link MAX_KEY_LENGTH} characters (S3 allows
 * 1024 bytes, and a store prefix or tenant namespace takes part of that).
 *
 * The charset is deliberately small: keys map one to one onto file names on every filesystem and
 * onto S3 keys without escaping, and nothing in a key can be interpreted as a path operator.
 */
export const MAX_KEY_LENGTH = 768;
/** A segment becomes a file or directory name in the local store: 255 is the usual name limit. */
export const MAX_SEGMENT_LENGTH = 255;

const SEGMENT = /^[A-Za-z0-9._=-]+$/;

/** Throws {@link InvalidKeyError} unless `key` is a valid object key; returns its segments. */
export function validateKey(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError('an object key is not empty');
  if (key.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`an object key is at most ${MAX_KEY_LENGTH} characters`);
  }
  const segments = key.split('/');
  for (const segment of segments) checkSegment(segment, key, 'key');
  return segments;
}

/** True when `key` is a valid object key. */
export function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws {@link InvalidKeyError} unless `prefix` is a valid listing prefix: the empty string, or the
 * beginning of a valid key. Prefixes match like S3's: by characters, not by whole segments, so
 * `runs/2024` matches `runs/2024/a` and `runs/2024-01/b`; end the prefix with `/` to stay inside
 * one "directory". Returns the complete segments before the last `/` (the directory to walk).
 */
export function validatePrefix(prefix: string): string[] {
  if (typeof prefix !== 'string') throw new InvalidKeyError('a prefix is a string');
  if (prefix.length === 0) return [];
  if (prefix.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`a prefix is at most ${MAX_KEY_LENGTH} characters`);
  }
  const segments = prefix.split('/');
  const last = segments.pop() ?? '';
  for (const segment of segments) checkSegment(segment, prefix, 'prefix');
  // The part after the last '/' may be empty or the start of a segment.
  if (last.length > 0) checkSegment(last, prefix, 'prefix');
  return segments;
}

/**
 * Throws {@link InvalidKeyError} unless `value` is a single valid key segment (no `/`); used for
 * tenant ids, which become one segment of the stored key.
 */
export function validateSegment(value: string, what: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.includes('/')) {
    throw new InvalidKeyError(`${what} is one non-empty key segment`);
  }
  checkSegment(value, value, what);
}

function checkSegment(segment: string, whole: string, what: string): void {
  if (segment.length === 0) {
    throw new InvalidKeyError(
      `${what} ${JSON.stringify(whole)} has an empty segment (leading, trailing or double '/')`,
    );
  }
  if (segment === '.' || segment === '..') {
    throw new InvalidKeyError(`${what} ${JSON.stringify(whole)} has a '.' or '..' segment`);
  }
  if (segment.length > MAX_SEGMENT_LENGTH) {
    throw new InvalidKeyError(`${what} segments are at most ${MAX_SEGMENT_LENGTH} characters`);
  }
  if (!SEGMENT.test(segment)) {
    throw new InvalidKeyError(`${what} ${JSON.stringify(whole)} has characters outside [A-Za-z0-9._=-]`);
  }
}
