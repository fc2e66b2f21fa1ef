import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { generateSigningKeyPair, verify } from './ed25519.js';
import { publicKeyFingerprint } from './keys.js';
import { envelopeSigningInput, signEnvelope, verifyEnvelope } from './signed-envelope.js';

const controlPlane = generateSigningKeyPair();
const NOW = new Date('2025-03-01T09:00:00.000Z');
const job = {
  runId: '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d10',
  extractVersionId: '0d8f2a61-2f6e-4f0b-8a9e-54c3b8a1e2f4',
  datasetName: 'pupils',
  sql: 'SELECT id, surname FROM pupils WHERE year_group = :year',
  sqlSha256: 'a'.repeat(64),
  parameters: [{ name: 'year', type: 'integer', value: 7 }],
  deadline: '2025-03-01T10:00:00.000Z',
};

function signed(overrides: Partial<Parameters<typeof signEnvelope>[2]> = {}) {
  return signEnvelope(job, controlPlane.privateKey, {
    kind: 'job',
    now: NOW,
    ttlMs: 5 * 60_000,
    ...overrides,
  });
}

/** What the agent sees: the envelope after a trip through the wire. */
function overTheWire<T>(envelope: T): unknown {
  return JSON.parse(JSON.stringify(envelope));
}

describe('signEnvelope / verifyEnvelope', () => {
  it('round-trips through JSON and carries nonce, key id and validity window inside the signature', () => {
    const envelope = signed();
    expect(envelope).toMatchObject({
      v: 1,
      alg: 'Ed25519',
      kind: 'job',
      keyId: publicKeyFingerprint(controlPlane.publicKey),
      issuedAt: '2025-03-01T09:00:00.000Z',
      expiresAt: '2025-03-01T09:05:00.000Z',
      payload: job,
    });
    expect(Buffer.from(envelope.nonce, 'base64url')).toHaveLength(32);
    const result = verifyEnvelope(overTheWire(envelope), controlPlane.publicKey, { kind: 'job', now: NOW });
    expect(result).toEqual({ ok: true, envelope });
  });

  it('verifies whatever order the wire put the keys in', () => {
    const envelope = signed();
    const reordered = Object.fromEntries(Object.entries(overTheWire(envelope) as object).reverse());
    (reordered as { payload: unknown }).payload = Object.fromEntries(Object.entries(job).reverse());
    expect(verifyEnvelope(reordered, controlPlane.publicKey, { kind: 'job', now: NOW }).ok).toBe(true);
  });

  it('uses a fresh nonce for every envelope', () => {
    expect(signed().nonce).not.toBe(signed().nonce);
  });

  it('signs exactly the documented input', () => {
    const envelope = signed();
    const { signature, ...rest } = envelope;
    expect(envelopeSigningInput(rest)).toBe(`keystage.signed-envelope.v1\n${canonicalJson(rest)}`);
    expect(verify(envelopeSigningInput(rest), signature, controlPlane.publicKey)).toBe(true);
  });

  const changes: Array<
    [string, (e: Record<string, unknown> & { payload: Record<string, unknown> }) => void]
  > = [
    ['the SQL', (e) => (e.payload.sql = `${e.payload.sql} OR 1=1`)],
    ['the SQL hash', (e) => (e.payload.sqlSha256 = 'b'.repeat(64))],
    ['the run id', (e) => (e.payload.runId = '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d11')],
    ['a parameter value', (e) => (e.payload.parameters = [{ name: 'year', type: 'integer', value: 8 }])],
    ['the deadline', (e) => (e.payload.deadline = '2025-03-02T10:00:00.000Z')],
    ['an added payload field', (e) => (e.payload.extra = true)],
    ['a removed payload field', (e) => delete e.payload.datasetName],
    ['the expiry', (e) => (e.expiresAt = '2025-03-01T09:06:00.000Z')],
    ['the issue time', (e) => (e.issuedAt = '2025-03-01T08:59:00.000Z')],
    ['the nonce', (e) => (e.nonce = Buffer.alloc(32, 7).toString('base64url'))],
    ['the kind', (e) => (e.kind = 'update')],
  ];
  it.each(changes)('refuses the envelope when %s changes', (_label, change) => {
    const tampered = overTheWire(signed()) as Parameters<(typeof changes)[number][1]>[0];
    change(tampered);
    const result = verifyEnvelope(tampered, controlPlane.publicKey, { kind: 'job', now: NOW });
    expect(result).toMatchObject({ ok: false, code: 'envelope.bad_signature' });
  });

  it('refuses an envelope signed by another key, whatever keyId it claims', () => {
    const attacker = generateSigningKeyPair();
    const forged = signEnvelope(job, attacker.privateKey, { kind: 'job', now: NOW });
    expect(verifyEnvelope(forged, controlPlane.publicKey, { kind: 'job', now: NOW })).toMatchObject({
      ok: false,
      code: 'envelope.unknown_key',
    });
    const lying = { ...forged, keyId: publicKeyFingerprint(controlPlane.publicKey) };
    expect(verifyEnvelope(lying, controlPlane.publicKey, { kind: 'job', now: NOW })).toMatchObject({
      ok: false,
      code: 'envelope.bad_signature',
    });
  });

  it('refuses unsigned and malformed envelopes without throwing', () => {
    const { signature: _signature, ...unsigned } = signed();
    const inputs: unknown[] = [
      unsigned,
      { ...signed(), signature: '' },
      { ...signed(), v: 2 },
      { ...signed(), alg: 'RS256' },
      { ...signed(), expiresAt: 'tomorrow' },
      { ...signed(), issuedAt: 1740819600000 },
      (() => {
        const { payload: _payload, ...rest } = signed();
        return rest;
      })(),
      null,
      'envelope',
      42,
      [],
    ];
    for (const input of inputs) {
      const result = verifyEnvelope(input, controlPlane.publicKey, { kind: 'job', now: NOW });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(['envelope.malformed', 'envelope.bad_signature']).toContain(result.code);
    }
    expect(verifyEnvelope(unsigned, controlPlane.publicKey, { kind: 'job', now: NOW })).toMatchObject({
      code: 'envelope.malformed',
    });
  });

  it('refuses an envelope of another kind', () => {
    const update = signed({ kind: 'agent-update' });
    expect(verifyEnvelope(update, controlPlane.publicKey, { kind: 'job', now: NOW })).toMatchObject({
      ok: false,
      code: 'envelope.wrong_kind',
    });
  });

  it('refuses expired and future envelopes, allowing the stated clock skew', () => {
    const envelope = signed(); // valid 09:00 → 09:05
    const at = (iso: string, clockSkewMs = 0) =>
      verifyEnvelope(envelope, controlPlane.publicKey, { kind: 'job', now: new Date(iso), clockSkewMs });
    expect(at('2025-03-01T09:05:00.000Z').ok).toBe(true);
    expect(at('2025-03-01T09:05:00.001Z')).toMatchObject({ ok: false, code: 'envelope.expired' });
    expect(at('2025-03-01T09:06:00.000Z', 60_000).ok).toBe(true);
    expect(at('2025-03-01T08:59:59.999Z')).toMatchObject({ ok: false, code: 'envelope.not_yet_valid' });
    expect(at('2025-03-01T08:59:00.000Z', 60_000).ok).toBe(true);
  });

  it('refuses a validity window longer than the verifier allows, so replay caches stay bounded', () => {
    const longLived = signed({ ttlMs: 48 * 60 * 60_000 });
    expect(verifyEnvelope(longLived, controlPlane.publicKey, { kind: 'job', now: NOW })).toMatchObject({
      ok: false,
      code: 'envelope.bad_lifetime',
    });
    expect(
      verifyEnvelope(longLived, controlPlane.publicKey, {
        kind: 'job',
        now: NOW,
        maxLifetimeMs: 72 * 3600_000,
      }).ok,
    ).toBe(true);
  });

  it('drops unsigned top-level fields from the verified envelope', () => {
    const withExtra = { ...(overTheWire(signed()) as object), note: 'not signed' };
    const result = verifyEnvelope<typeof job>(withExtra, controlPlane.publicKey, { kind: 'job', now: NOW });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.envelope).not.toHaveProperty('note');
  });

  it('refuses to sign what canonical JSON cannot represent', () => {
    expect(() =>
      signEnvelope({ at: new Date() }, controlPlane.privateKey, { kind: 'job' } as const),
    ).toThrowError(expect.objectContaining({ code: 'crypto.not_canonicalizable' }));
    expect(() => signEnvelope(job, controlPlane.privateKey, { kind: '' })).toThrowError(/kind/);
  });
});
