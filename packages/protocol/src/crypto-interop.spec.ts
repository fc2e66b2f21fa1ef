import { describe, expect, it } from 'vitest';
// The crypto package's sources, not a dependency: this test proves the two packages agree on the
// wire forms (signed job, auth signature, chunk, wrapped key) without coupling their builds.
import {
  decryptChunk,
  encryptChunk,
  generateDataKey,
  generateSigningKeyPair,
  generateWrappingKeyPair,
  publicKeyFingerprint,
  sha256Hex,
  sign,
  signEnvelope,
  unwrapKeyForRecipient,
  verify,
  verifyEnvelope,
  wrapKeyForRecipient,
} from '../../crypto/src/index.js';
import { exampleMessage } from './examples.js';
import { authSigningInput } from './handshake.messages.js';
import type { JobSpec } from './job.messages.js';
import { createMessage, encodeMessage, parseMessage } from './parse.js';
import { PROTOCOL_VERSION } from './version.js';

const jobKeys = generateSigningKeyPair();
const resultKeys = generateWrappingKeyPair();
const NOW = new Date('2025-03-01T09:00:00.000Z');

function jobSpec(): JobSpec {
  const sql = 'SELECT pupil_id, surname FROM pupils WHERE year_group = :year';
  return {
    runId: '7b0e2c3a-8c1f-4c55-9a55-0e1f6a2b9d10',
    extractVersionId: '0d8f2a61-2f6e-4f0b-8a9e-54c3b8a1e2f4',
    datasetName: 'pupils',
    sql,
    sqlSha256: sha256Hex(sql),
    parameters: [{ name: 'year', type: 'integer', value: 7 }],
    deadline: '2025-03-01T10:00:00.000Z',
    resultKey: {
      alg: 'X25519',
      keyId: publicKeyFingerprint(resultKeys.publicKey),
      publicKey: resultKeys.publicKey,
    },
  };
}

/** Cloud side: sign and send. Agent side: parse and verify. */
function sendAndReceive(payload: JobSpec) {
  const job = signEnvelope(payload, jobKeys.privateKey, { kind: 'job', now: NOW });
  const wire = encodeMessage(createMessage('job.offer', { job }));
  const received = parseMessage(wire);
  if (!received.ok || received.message.type !== 'job.offer') throw new Error('offer did not parse');
  return verifyEnvelope<JobSpec>(received.message.body.job, jobKeys.publicKey, { kind: 'job', now: NOW });
}

describe('@keystage/crypto output fits the protocol', () => {
  it('a signed job survives encode → parse and verifies on the agent', () => {
    const result = sendAndReceive(jobSpec());
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.envelope.payload.sqlSha256).toBe(sha256Hex(result.envelope.payload.sql));
  });

  it('a job from a newer minor, with fields this version does not know, still verifies', () => {
    const result = sendAndReceive({ ...jobSpec(), rowLimit: 1_000_000, hints: { timeoutMs: 5_000 } });
    expect(result.ok).toBe(true);
  });

  it('a job changed in transit does not verify', () => {
    const job = signEnvelope(jobSpec(), jobKeys.privateKey, { kind: 'job', now: NOW });
    const wire = encodeMessage(createMessage('job.offer', { job })).replace('year_group', 'year_grouP');
    const received = parseMessage(wire);
    if (!received.ok || received.message.type !== 'job.offer') throw new Error('offer did not parse');
    expect(
      verifyEnvelope(received.message.body.job, jobKeys.publicKey, { kind: 'job', now: NOW }),
    ).toMatchObject({
      ok: false,
      code: 'envelope.bad_signature',
    });
  });

  it('an auth signature over the challenge fits the auth message and verifies', () => {
    const agent = generateSigningKeyPair();
    const challenge = exampleMessage('challenge');
    const agentId = '3f1c9e52-6b7a-4d1e-9c2f-8a5b4e7d6c01';
    const input = { nonce: challenge.body.nonce, agentId, protocolVersion: PROTOCOL_VERSION };
    const auth = createMessage('auth', {
      agentId,
      signature: sign(authSigningInput(input), agent.privateKey),
    });
    const received = parseMessage(encodeMessage(auth));
    if (!received.ok || received.message.type !== 'auth') throw new Error('auth did not parse');
    expect(verify(authSigningInput(input), received.message.body.signature, agent.publicKey)).toBe(true);
    expect(
      verify(
        authSigningInput({ ...input, protocolVersion: '1.99' }),
        received.message.body.signature,
        agent.publicKey,
      ),
    ).toBe(false);
  });

  it('an encrypted chunk and the wrapped data key travel and open on the cloud side', () => {
    const runId = jobSpec().runId;
    const dataKey = generateDataKey();
    const wrapped = wrapKeyForRecipient(dataKey, resultKeys.publicKey, runId);
    const accept = createMessage('job.accept', {
      runId,
      dataKey: { keyId: publicKeyFingerprint(resultKeys.publicKey), wrapped: wrapped.toString('base64') },
    });
    const sealed = encryptChunk(Buffer.from('{"pupil_id":1}\n'), dataKey, { runId, seq: 0 });
    const chunk = createMessage('chunk', {
      runId,
      seq: 0,
      byteLength: sealed.length,
      sha256: sha256Hex(sealed),
      payload: sealed.toString('base64'),
    });

    const gotAccept = parseMessage(encodeMessage(accept));
    const gotChunk = parseMessage(encodeMessage(chunk));
    if (!gotAccept.ok || gotAccept.message.type !== 'job.accept') throw new Error('accept did not parse');
    if (!gotChunk.ok || gotChunk.message.type !== 'chunk') throw new Error('chunk did not parse');
    const key = unwrapKeyForRecipient(
      Buffer.from(gotAccept.message.body.dataKey.wrapped, 'base64'),
      resultKeys.privateKey,
      runId,
    );
    const bytes = Buffer.from(gotChunk.message.body.payload, 'base64');
    expect(sha256Hex(bytes)).toBe(gotChunk.message.body.sha256);
    expect(decryptChunk(bytes, key, { runId, seq: gotChunk.message.body.seq }).toString()).toBe(
      '{"pupil_id":1}\n',
    );
  });
});
