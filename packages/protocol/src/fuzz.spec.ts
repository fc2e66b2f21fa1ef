import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES } from './catalogue.js';
import { exampleMessage } from './examples.js';
import { encodeMessage, type ParseResult, parseMessage } from './parse.js';

// Bounded, seeded fuzzing: the same inputs on every run (a failure reproduces), a few thousand
// cases in well under a second. The property: parseMessage never throws, always returns a result of
// the documented shape, and whatever it accepts is a valid message that encodes again.

/** mulberry32: a tiny deterministic PRNG, good enough to spread test inputs. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CODES = new Set([
  'protocol.malformed',
  'protocol.unknown_type',
  'protocol.too_large',
  'protocol.version_unsupported',
]);

function check(raw: string | Uint8Array): ParseResult {
  let parsed: ParseResult | undefined;
  expect(() => {
    parsed = parseMessage(raw, { maxBytes: 4_096 });
  }).not.toThrow();
  const result = parsed as ParseResult;
  if (result.ok) {
    expect(() => encodeMessage(result.message)).not.toThrow();
  } else {
    expect(CODES.has(result.error.code)).toBe(true);
    expect(typeof result.error.message).toBe('string');
  }
  return result;
}

const examples = MESSAGE_TYPES.map((type) => encodeMessage(exampleMessage(type)));
const FRAGMENTS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ':',
  ',',
  'null',
  'true',
  '-1e999',
  '"type"',
  '"body"',
  '\\u0000',
  '\\ud800',
  '__proto__',
  '"1.0"',
  '"2.0"',
  ' ',
];

function randomValue(random: () => number, depth = 0): unknown {
  const pick = Math.floor(random() * (depth > 2 ? 6 : 8));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return [0, -1, 1.5, 2 ** 53, -(2 ** 60), 1e308][Math.floor(random() * 6)];
    case 3:
      return [
        '',
        'x'.repeat(Math.floor(random() * 300)),
        '2025-03-01T09:00:00Z',
        '00000000-0000-0000-0000-000000000000',
        '\u0000',
        '💥',
      ][Math.floor(random() * 6)];
    case 4:
      return 'AAAA';
    case 5:
      return undefined;
    case 6:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, (_, i) => [`k${i}`, randomValue(random, depth + 1)]),
      );
  }
}

/** Replaces, deletes or adds one field somewhere in a parsed message. */
function mutate(value: unknown, random: () => number): unknown {
  if (typeof value !== 'object' || value === null) return randomValue(random);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 0 || random() < 0.1) {
    record[['type', 'body', 'id', 'extra', 'protocolVersion'][Math.floor(random() * 5)]!] =
      randomValue(random);
    return record;
  }
  const key = keys[Math.floor(random() * keys.length)]!;
  const roll = random();
  if (roll < 0.2) delete record[key];
  else if (roll < 0.5) record[key] = randomValue(random);
  else record[key] = mutate(record[key], random);
  return record;
}

describe('parseMessage under fuzzing', () => {
  it('survives random bytes', () => {
    const random = prng(1);
    for (let i = 0; i < 1_000; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 600));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      expect(check(bytes).ok).toBe(false);
    }
  });

  it('survives random JSON-ish text', () => {
    const random = prng(2);
    for (let i = 0; i < 1_000; i++) {
      const parts = Array.from(
        { length: Math.floor(random() * 40) },
        () => FRAGMENTS[Math.floor(random() * FRAGMENTS.length)],
      );
      check(parts.join(''));
    }
  });

  it('survives byte flips, truncations and splices of valid messages', () => {
    const random = prng(3);
    for (let i = 0; i < 1_500; i++) {
      const source = Buffer.from(examples[i % examples.length]!, 'utf8');
      const roll = random();
      let bytes: Buffer;
      if (roll < 0.4) {
        bytes = Buffer.from(source);
        for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
          bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        }
      } else if (roll < 0.7) {
        bytes = source.subarray(0, Math.floor(random() * source.length));
      } else {
        const other = Buffer.from(examples[Math.floor(random() * examples.length)]!, 'utf8');
        bytes = Buffer.concat([
          source.subarray(0, Math.floor(random() * source.length)),
          other.subarray(Math.floor(random() * other.length)),
        ]);
      }
      check(bytes);
    }
  });

  it('survives structural mutations of valid messages, and accepts only what is still valid', () => {
    const random = prng(4);
    let accepted = 0;
    for (let i = 0; i < 2_000; i++) {
      const value = JSON.parse(examples[i % examples.length]!);
      for (let steps = 1 + Math.floor(random() * 3); steps > 0; steps--) mutate(value, random);
      const text = JSON.stringify(value);
      if (text === undefined) continue;
      if (check(text).ok) accepted++;
    }
    // Some mutations only touch ignored fields: the fuzzer does reach the accepting path too.
    expect(accepted).toBeGreaterThan(0);
  });
});
