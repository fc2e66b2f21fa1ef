import { CryptoError, CryptoErrorCode } from './errors.js';

/** Deeper nesting than this is refused rather than risking a stack overflow on hostile input. */
export const CANONICAL_JSON_MAX_DEPTH = 64;

/**
 * The one JSON text of `value` that every signer and verifier agree on, so a signature over it
 * survives a trip through any JSON parser and re-serialiser:
 * - object keys sorted by UTF-16 code units (JavaScript's default string order), no whitespace;
 * - strings and numbers written exactly as `JSON.stringify` writes them (`-0` becomes `0`).
 *
 * For the values it accepts, the output equals RFC 8785 (JSON Canonicalization Scheme).
 *
 * Only plain JSON data is accepted. It throws `crypto.not_canonicalizable` for: `undefined`
 * (also as an object property or array element: JSON.stringify would silently drop or null it, so
 * the signer and verifier could disagree), functions, symbols, bigint (no exact JSON form: send
 * big integers as strings), NaN and ±Infinity, objects that are not plain (Date, Map, Buffer,
 * class instances: convert them explicitly), sparse arrays, cycles, and nesting deeper than
 * {@link CANONICAL_JSON_MAX_DEPTH}.
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, '$', new Set(), 0);
  return parts.join('');
}

function write(value: unknown, out: string[], path: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value} is not a JSON number`);
      out.push(JSON.stringify(value));
      return;
    case 'object':
      break;
    default:
      refuse(path, `a ${typeof value} has no canonical JSON form`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (depth >= CANONICAL_JSON_MAX_DEPTH) refuse(path, `nesting deeper than ${CANONICAL_JSON_MAX_DEPTH}`);
  if (ancestors.has(value)) refuse(path, 'a cycle');
  ancestors.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      if (!(i in value)) refuse(`${path}[${i}]`, 'a hole in a sparse array');
      write(value[i], out, `${path}[${i}]`, ancestors, depth + 1);
    }
    out.push(']');
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      refuse(path, `a ${value.constructor?.name ?? 'non-plain'} object (only plain objects and arrays)`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) refuse(path, 'a symbol-keyed property');
    const record = value as Record<string, unknown>;
    // Default sort compares UTF-16 code units, which is exactly RFC 8785's key order.
    const keys = Object.keys(record).sort();
    out.push('{');
    keys.forEach((key, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(key), ':');
      write(record[key], out, `${path}.${key}`, ancestors, depth + 1);
    });
    out.push('}');
  }
  ancestors.delete(value);
}

function refuse(path: string, what: string): never {
  throw new CryptoError(CryptoErrorCode.NotCanonicalizable, `cannot canonicalise ${path}: ${what}`);
}
