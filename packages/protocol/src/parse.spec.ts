import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, type MessageType, maySend } from './catalogue.js';
import { exampleMessage } from './examples.js';
import {
  MAX_CHUNK_BYTES,
  MAX_CHUNK_FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_PARAMETER_STRING_LENGTH,
  MAX_PARAMETERS,
  MAX_SQL_LENGTH,
} from './limits.js';
import {
  createMessage,
  encodeChunkFrame,
  encodeMessage,
  errorReplyFor,
  ProtocolEncodeError,
  parseChunkFrame,
  parseMessage,
} from './parse.js';
import { PROTOCOL_VERSION } from './version.js';

/** Parses, expecting failure, and returns the error. */
function parseError(raw: string | Uint8Array, options?: { maxBytes?: number }) {
  const result = parseMessage(raw, options);
  if (result.ok) throw new Error(`expected a parse error, got a ${result.message.type}`);
  return result.error;
}

/** A valid example as a plain JSON object, for tests that break it. */
function exampleJson(type: MessageType): {
  id: string;
  body: Record<string, unknown>;
  [key: string]: unknown;
} {
  return JSON.parse(JSON.stringify(exampleMessage(type)));
}

describe('every message', () => {
  it.each(MESSAGE_TYPES)('%s round-trips through encodeMessage and parseMessage', (type) => {
    const message = exampleMessage(type);
    const text = encodeMessage(message);
    expect(parseMessage(text)).toEqual({ ok: true, message });
    expect(parseMessage(Buffer.from(text, 'utf8'))).toEqual({ ok: true, message });
  });

  it.each(MESSAGE_TYPES)('%s is refused when its body is missing or empty', (type) => {
    const { body: _body, ...envelope } = exampleJson(type);
    expect(parseError(JSON.stringify(envelope))).toMatchObject({ code: 'protocol.malformed' });
    if (type !== 'heartbeat.ack') {
      expect(parseError(JSON.stringify({ ...envelope, body: {} }))).toMatchObject({
        code: 'protocol.malformed',
        details: { type, messageId: envelope.id },
      });
    }
  });

  it('narrows on type', () => {
    const result = parseMessage(encodeMessage(exampleMessage('chunk.ack')));
    if (!result.ok || result.message.type !== 'chunk.ack') throw new Error('expected a chunk.ack');
    // Compiles only because the union narrowed: body is ChunkAck's.
    expect(result.message.body.credits).toBe(8);
  });
});

describe('the envelope', () => {
  it('createMessage fills id, version, time and replyTo', () => {
    const message = createMessage(
      'work.pull',
      { maxJobs: 2 },
      { replyTo: '5a4f1e2d-3c4b-4a59-8e7f-6a5b4c3d2e1f' },
    );
    expect(message).toMatchObject({
      protocolVersion: PROTOCOL_VERSION,
      type: 'work.pull',
      body: { maxJobs: 2 },
    });
    expect(message.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(message.replyTo).toBe('5a4f1e2d-3c4b-4a59-8e7f-6a5b4c3d2e1f');
    expect(Date.parse(message.sentAt)).not.toBeNaN();
    expect(createMessage('work.pull', { maxJobs: 2 }).id).not.toBe(message.id);
    expect(createMessage('work.pull', { maxJobs: 2 })).not.toHaveProperty('replyTo');
  });

  it.each([
    ['id', 'not-a-uuid'],
    ['id', undefined],
    ['sentAt', '01/03/2025 09:00'],
    ['sentAt', undefined],
    ['replyTo', 'nope'],
  ])('refuses %s = %s', (field, value) => {
    const json = exampleJson('heartbeat');
    json[field] = value;
    expect(parseError(JSON.stringify(json)).code).toBe('protocol.malformed');
  });

  it('tolerates unknown fields from a newer minor and drops them', () => {
    const json = exampleJson('heartbeat');
    json.protocolVersion = '1.7';
    json.trace = 'abc';
    json.body.cpuLoad = 0.3;
    const result = parseMessage(JSON.stringify(json));
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.message.protocolVersion).toBe('1.7');
      expect(result.message).not.toHaveProperty('trace');
      expect(result.message.body).not.toHaveProperty('cpuLoad');
    }
  });

  it('keeps unknown fields inside a signed job, because the signature covers them', () => {
    const json = exampleJson('job.offer');
    const job = json.body.job as { extra?: number; payload: Record<string, unknown> };
    job.extra = 1;
    job.payload.futureOption = { nested: true };
    const result = parseMessage(JSON.stringify(json));
    if (!result.ok || result.message.type !== 'job.offer') throw new Error('expected a job.offer');
    expect(result.message.body.job).toMatchObject({ extra: 1, payload: { futureOption: { nested: true } } });
  });
});

describe('parseMessage refuses, with typed errors and without throwing', () => {
  it.each([
    ['empty', ''],
    ['not JSON', 'hello'],
    ['truncated JSON', '{"id":'],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a JSON number', '42'],
    ['a JSON string', '"hello"'],
  ])('%s → protocol.malformed', (_label, raw) => {
    expect(parseError(raw)).toMatchObject({ code: 'protocol.malformed', details: {} });
  });

  it('bytes that are not UTF-8 → protocol.malformed', () => {
    expect(parseError(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])).code).toBe('protocol.malformed');
  });

  it('input that is neither text nor bytes → protocol.malformed', () => {
    expect(parseError(42 as unknown as string).code).toBe('protocol.malformed');
    expect(parseError(undefined as unknown as string).code).toBe('protocol.malformed');
  });

  it('a missing or malformed protocol version → protocol.malformed', () => {
    for (const version of [undefined, '1', '1.0.0', 1, 'one']) {
      const json = { ...exampleJson('hello'), protocolVersion: version };
      expect(parseError(JSON.stringify(json))).toMatchObject({
        code: 'protocol.malformed',
        message: expect.stringMatching(/protocolVersion/),
      });
    }
  });

  it('another major → protocol.version_unsupported with the supported range, even with a body we cannot read', () => {
    const json = { ...exampleJson('hello'), protocolVersion: '2.0', body: { whatever: 'v2 looks like' } };
    expect(parseError(JSON.stringify(json))).toEqual({
      code: 'protocol.version_unsupported',
      message: expect.stringContaining('2.0'),
      details: {
        messageId: json.id,
        type: 'hello',
        received: '2.0',
        supported: { min: '1.0', max: PROTOCOL_VERSION },
      },
    });
  });

  it('an unknown type → protocol.unknown_type, naming it and the message id', () => {
    const json = { ...exampleJson('hello'), type: 'job.offr' };
    expect(parseError(JSON.stringify(json))).toEqual({
      code: 'protocol.unknown_type',
      message: 'unknown message type',
      details: { messageId: json.id, type: 'job.offr' },
    });
    expect(parseError(JSON.stringify({ ...json, type: '__proto__' })).code).toBe('protocol.unknown_type');
    expect(parseError(JSON.stringify({ ...json, type: 'toString' })).code).toBe('protocol.unknown_type');
    expect(parseError(JSON.stringify({ ...json, type: 7 })).code).toBe('protocol.malformed');
  });

  it('a wrong shape → protocol.malformed with the paths at fault', () => {
    const json = exampleJson('heartbeat');
    json.body.queueDepth = -1;
    json.body.misKind = 'ORACLE';
    const error = parseError(JSON.stringify(json));
    expect(error.code).toBe('protocol.malformed');
    expect(error.details.issues?.map((i) => i.path)).toEqual(['body.misKind', 'body.queueDepth']);
  });

  it('lists at most ten issues', () => {
    const json = exampleJson('heartbeat');
    json.body = Object.fromEntries(Object.keys(json.body).map((key) => [key, { wrong: true }]));
    json.sentAt = 'yesterday';
    json.replyTo = 'nobody';
    const issues = parseError(JSON.stringify(json)).details.issues ?? [];
    expect(issues).toHaveLength(11);
    expect(issues.at(-1)).toEqual({ path: '', message: expect.stringMatching(/^and \d+ more$/) });
  });

  it('an oversized frame → protocol.too_large, before it is parsed', () => {
    const big = `{"pad":"${'x'.repeat(MAX_FRAME_BYTES)}"}`;
    expect(parseError(big)).toEqual({
      code: 'protocol.too_large',
      message: expect.any(String),
      details: { size: big.length, limit: MAX_FRAME_BYTES },
    });
    expect(parseError(Buffer.from(big)).code).toBe('protocol.too_large');
    // Not JSON at all, but too large is what is reported: the size is checked first.
    expect(parseError('x'.repeat(MAX_FRAME_BYTES + 1)).code).toBe('protocol.too_large');
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    const message = encodeMessage(exampleMessage('job.cancel', { reason: 'é'.repeat(500) }));
    const bytes = Buffer.byteLength(message);
    expect(parseMessage(message, { maxBytes: bytes }).ok).toBe(true);
    expect(parseError(message, { maxBytes: bytes - 1 })).toMatchObject({
      code: 'protocol.too_large',
      details: { size: bytes },
    });
    expect(message.length).toBeLessThan(bytes - 1);
  });
});

describe('message rules beyond the field types', () => {
  it('a version refusal must state the supported range', () => {
    const json = exampleJson('refused');
    delete json.body.supported;
    expect(parseError(JSON.stringify(json)).details.issues).toEqual([
      { path: 'body.supported', message: 'a version refusal states the supported range' },
    ]);
    json.body.code = 'agent.revoked';
    expect(parseMessage(JSON.stringify(json)).ok).toBe(true);
  });

  it('a chunk byteLength must be the decoded payload length', () => {
    const json = exampleJson('chunk');
    json.body.byteLength = 6;
    expect(parseError(JSON.stringify(json)).details.issues?.[0]?.path).toBe('body.byteLength');
    json.body.payload = 'aGVsbG8'; // unpadded base64 is not accepted
    expect(parseMessage(JSON.stringify(json)).ok).toBe(false);
  });

  it('job parameters have unique names, known types and bounded count', () => {
    const offer = exampleJson('job.offer');
    const payload = (offer.body.job as { payload: { parameters: unknown[]; sql: string } }).payload;
    payload.parameters = [
      { name: 'year', type: 'integer', value: 7 },
      { name: 'year', type: 'integer', value: 8 },
    ];
    expect(parseError(JSON.stringify(offer)).details.issues?.[0]?.path).toBe(
      'body.job.payload.parameters.1.name',
    );
    payload.parameters = [{ name: 'year', type: 'float', value: 7 }];
    expect(parseMessage(JSON.stringify(offer)).ok).toBe(false);
    payload.parameters = [{ name: 'year', type: 'integer', value: 7.5 }];
    expect(parseMessage(JSON.stringify(offer)).ok).toBe(false);
    payload.parameters = [{ name: 'year', type: 'integer', value: null }];
    expect(parseMessage(JSON.stringify(offer)).ok).toBe(true);
    payload.parameters = Array.from({ length: MAX_PARAMETERS + 1 }, (_, i) => ({
      name: `p${i}`,
      type: 'boolean',
      value: true,
    }));
    expect(parseMessage(JSON.stringify(offer)).ok).toBe(false);
    payload.parameters = [];
    payload.sql = 'S'.repeat(MAX_SQL_LENGTH + 1);
    expect(parseMessage(JSON.stringify(offer)).ok).toBe(false);
  });
});

describe('limits fit in a frame', () => {
  it('the largest legal chunk encodes within the frame limit', () => {
    const payload = Buffer.alloc(MAX_CHUNK_BYTES, 0xff).toString('base64');
    const chunk = exampleMessage('chunk', { byteLength: MAX_CHUNK_BYTES, payload });
    expect(Buffer.byteLength(encodeMessage(chunk))).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(() =>
      encodeMessage(exampleMessage('chunk', { byteLength: MAX_CHUNK_BYTES + 3, payload: `${payload}AAAA` })),
    ).toThrow(ProtocolEncodeError);
  });

  it('the largest legal job offer encodes within the frame limit, even when every character needs escaping', () => {
    const offer = exampleMessage('job.offer');
    // U+0001 is written as \u0001: six bytes per character, the worst case of JSON.
    offer.body.job.payload.sql = '\u0001'.repeat(MAX_SQL_LENGTH);
    offer.body.job.payload.parameters = Array.from({ length: MAX_PARAMETERS }, (_, i) => ({
      name: `p${i}`.padEnd(64, '_'),
      type: 'string' as const,
      value: '\u0001'.repeat(MAX_PARAMETER_STRING_LENGTH),
    }));
    expect(Buffer.byteLength(encodeMessage(offer))).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });
});

describe('encodeMessage', () => {
  it('refuses to send an invalid message, naming the problem', () => {
    const bad = exampleMessage('chunk.ack', { credits: -1 });
    expect(() => encodeMessage(bad)).toThrowError(/body\.credits/);
    try {
      encodeMessage(bad);
    } catch (error) {
      expect(error).toMatchObject({ code: 'protocol.malformed', issues: [{ path: 'body.credits' }] });
    }
    expect(() => encodeMessage({ ...bad, type: 'nope' } as never)).toThrowError(/unknown message type/);
  });

  it('refuses to send more than the frame limit', () => {
    expect(() => encodeMessage(exampleMessage('job.cancel'), { maxBytes: 100 })).toThrowError(
      expect.objectContaining({ code: 'protocol.too_large' }),
    );
  });
});

describe('errorReplyFor', () => {
  it('answers a parse error with a valid error message addressed to the offending message', () => {
    const json = { ...exampleJson('hello'), type: 'job.offr' };
    const reply = errorReplyFor(parseError(JSON.stringify(json)));
    expect(reply).toMatchObject({
      type: 'error',
      replyTo: json.id,
      body: { code: 'protocol.unknown_type', details: { type: 'job.offr' } },
    });
    expect(parseMessage(encodeMessage(reply)).ok).toBe(true);
  });

  it('has no replyTo when the id could not be read', () => {
    const reply = errorReplyFor(parseError('garbage'));
    expect(reply).not.toHaveProperty('replyTo');
    expect(reply.body.code).toBe('protocol.malformed');
    expect(parseMessage(encodeMessage(reply)).ok).toBe(true);
  });
});

describe('maySend', () => {
  it('knows which side sends what', () => {
    expect(maySend('agent', 'hello')).toBe(true);
    expect(maySend('cloud', 'hello')).toBe(false);
    expect(maySend('cloud', 'job.offer')).toBe(true);
    expect(maySend('agent', 'job.offer')).toBe(false);
    expect(maySend('agent', 'error')).toBe(true);
    expect(maySend('cloud', 'error')).toBe(true);
  });
});

describe('binary chunk frames (1.3)', () => {
  const bytes = Buffer.from('hello');
  const header = () => exampleMessage('chunk.data', { byteLength: bytes.length });
  const frameError = (frame: Uint8Array, maxBytes?: number) => {
    const result = parseChunkFrame(frame, maxBytes === undefined ? {} : { maxBytes });
    if (result.ok) throw new Error('expected a parse error');
    return result.error;
  };

  it('round-trips the header and the bytes, which are not base64', () => {
    const frame = encodeChunkFrame(header(), bytes);
    expect(frame.subarray(frame.length - bytes.length)).toEqual(bytes);
    expect(frame.includes(bytes.toString('base64'))).toBe(false);
    const parsed = parseChunkFrame(frame);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.message).toEqual(header());
    expect(parsed.payload).toEqual(bytes);
    // A Uint8Array (not a Buffer) reads the same.
    const plain = new Uint8Array(frame.length);
    plain.set(frame);
    expect(parseChunkFrame(plain).ok).toBe(true);
  });

  it('the largest legal chunk fits a frame', () => {
    const big = Buffer.alloc(MAX_CHUNK_BYTES, 0xff);
    const frame = encodeChunkFrame(exampleMessage('chunk.data', { byteLength: big.length }), big);
    expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(frame.length).toBeLessThan(4 + MAX_CHUNK_FRAME_HEADER_BYTES + MAX_CHUNK_BYTES);
  });

  it('refuses to encode bytes that are not byteLength long, or another message', () => {
    expect(() => encodeChunkFrame(header(), Buffer.from('hello!'))).toThrow(/payload has 6/);
    expect(() => encodeChunkFrame(exampleMessage('heartbeat') as never, bytes)).toThrow(ProtocolEncodeError);
  });

  it('refuses malformed frames with typed errors, the header read like any message', () => {
    const frame = encodeChunkFrame(header(), bytes);
    expect(frameError(frame.subarray(0, 3)).code).toBe('protocol.malformed');
    const huge = Buffer.from(frame);
    huge.writeUInt32BE(MAX_CHUNK_FRAME_HEADER_BYTES + 1, 0);
    expect(frameError(huge).message).toMatch(/header length/);
    const past = Buffer.from(frame);
    past.writeUInt32BE(frame.length, 0);
    expect(frameError(past).message).toMatch(/header length/);
    // One byte more or less than byteLength.
    expect(frameError(Buffer.concat([frame, Buffer.from('!')])).message).toMatch(/byteLength/);
    expect(frameError(frame.subarray(0, frame.length - 1)).message).toMatch(/byteLength/);
    // A text message in a binary frame.
    const heartbeat = Buffer.from(encodeMessage(exampleMessage('heartbeat')));
    const wrapped = Buffer.concat([Buffer.alloc(4), heartbeat]);
    wrapped.writeUInt32BE(heartbeat.length, 0);
    expect(frameError(wrapped)).toMatchObject({ code: 'protocol.malformed', details: { type: 'heartbeat' } });
    // A header that breaks its schema, and one that is not JSON.
    const bad = Buffer.from(JSON.stringify({ ...header(), body: { ...header().body, seq: -1 } }));
    const badFrame = Buffer.concat([Buffer.alloc(4), bad, bytes]);
    badFrame.writeUInt32BE(bad.length, 0);
    expect(frameError(badFrame).details.issues?.[0]?.path).toBe('body.seq');
    const junk = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('{x'), bytes]);
    expect(frameError(junk).message).toMatch(/not JSON/);
    expect(frameError(frame, frame.length - 1).code).toBe('protocol.too_large');
  });
});
