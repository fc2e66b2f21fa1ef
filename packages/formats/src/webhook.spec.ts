import { execFileSync } from 'node:child_process';
import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
  WebhookHeader,
} from './webhook.js';

// Spy on timingSafeEqual (otherwise unchanged) to check signatures are compared in constant time.
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return { ...original, timingSafeEqual: vi.fn(original.timingSafeEqual) };
});

const SECRET = 'whsec_MfKQ9r7xwVv4Xw1kS0eJ3o6bTnq9Z2yL8pC5dA7uHgE';
const NOW = 1_700_000_000;
const BODY = '{"hello":"world","n":1}';

/**
 * The recipe of docs/delivery-formats.md, implemented again here without the package's code:
 * lowercase hex of HMAC-SHA256, key = the secret's UTF-8 bytes, message = `<t>.` + the body bytes.
 */
function independentSign(secret: string, t: number, body: Buffer): string {
  const hmac = nodeCrypto.createHmac('sha256', Buffer.from(secret, 'utf8'));
  hmac.update(Buffer.concat([Buffer.from(`${t}.`, 'ascii'), body]));
  return `t=${t},v1=${hmac.digest('hex')}`;
}

describe('signWebhook', () => {
  it('matches the fixed test vector in the docs (computed with openssl)', () => {
    // printf '%s' '1700000000.{"hello":"world","n":1}' | openssl dgst -sha256 -hmac "$SECRET"
    const expected = 't=1700000000,v1=5eb145822dad0052fd9c101856e3af742386b96ec7f847d6de15c82890ca85c1';
    expect(signWebhook({ secret: SECRET, timestamp: NOW, body: BODY })).toBe(expected);
    expect(signWebhook({ secret: SECRET, timestamp: NOW, body: Buffer.from(BODY) })).toBe(expected);
    expect(readFileSync(new URL('../../../docs/delivery-formats.md', import.meta.url), 'utf8')).toContain(
      expected,
    );
  });

  it('equals the independent implementation for binary and unicode bodies', () => {
    const bodies = [Buffer.alloc(0), Buffer.from('Zoë 😀\r\n'), nodeCrypto.randomBytes(4096)];
    for (const body of bodies) {
      expect(signWebhook({ secret: SECRET, timestamp: NOW, body })).toBe(independentSign(SECRET, NOW, body));
    }
  });

  it('refuses a bad timestamp or secret', () => {
    for (const timestamp of [-1, 1.5, Number.NaN, 2 ** 60]) {
      expect(() => signWebhook({ secret: SECRET, timestamp, body: BODY })).toThrowError(
        expect.objectContaining({ code: 'formats.invalid_input' }),
      );
    }
    expect(() => signWebhook({ secret: '', timestamp: NOW, body: BODY })).toThrowError(/secret/);
  });
});

describe('verifyWebhook', () => {
  const header = independentSign(SECRET, NOW, Buffer.from(BODY));
  const verify = (options: Partial<Parameters<typeof verifyWebhook>[0]>) =>
    verifyWebhook({ secrets: [SECRET], header, body: BODY, now: NOW, ...options });

  beforeEach(() => {
    vi.mocked(nodeCrypto.timingSafeEqual).mockClear();
  });

  it('accepts a signature made by the independent implementation, compared in constant time', () => {
    expect(verify({})).toEqual({ ok: true });
    expect(verify({ body: Buffer.from(BODY) })).toEqual({ ok: true });
    expect(nodeCrypto.timingSafeEqual).toHaveBeenCalled();
  });

  it('accepts its own signature at the edges of the tolerance, and not beyond', () => {
    const signed = signWebhook({ secret: SECRET, timestamp: NOW, body: BODY });
    expect(verify({ header: signed, now: NOW + DEFAULT_WEBHOOK_TOLERANCE_SECONDS })).toEqual({ ok: true });
    expect(verify({ header: signed, now: NOW - DEFAULT_WEBHOOK_TOLERANCE_SECONDS })).toEqual({ ok: true });
    expect(verify({ header: signed, now: NOW + 301 })).toEqual({ ok: false, reason: 'timestamp_too_old' });
    expect(verify({ header: signed, now: NOW - 301 })).toEqual({ ok: false, reason: 'timestamp_in_future' });
    expect(verify({ header: signed, now: NOW + 3600, toleranceSeconds: 3600 })).toEqual({ ok: true });
  });

  it('refuses a tampered body', () => {
    expect(verify({ body: BODY.replace('1', '2') })).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verify({ body: `${BODY} ` })).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verify({ body: JSON.stringify(JSON.parse(BODY), null, 1) })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
  });

  it('refuses the wrong secret, a changed timestamp and a changed signature', () => {
    expect(verify({ secrets: [generateWebhookSecret()] })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
    expect(verify({ header: header.replace(`t=${NOW}`, `t=${NOW + 1}`) })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
    const flipped = header.slice(0, -1) + (header.endsWith('0') ? '1' : '0');
    expect(verify({ header: flipped })).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it('refuses an old replayed request even with a genuine signature', () => {
    const old = independentSign(SECRET, NOW - 3600, Buffer.from(BODY));
    expect(verify({ header: old })).toEqual({ ok: false, reason: 'timestamp_too_old' });
  });

  it('accepts the previous secret during a rotation, and not once it is dropped', () => {
    const next = generateWebhookSecret();
    const signedWithOld = signWebhook({ secret: SECRET, timestamp: NOW, body: BODY });
    const signedWithNew = signWebhook({ secret: next, timestamp: NOW, body: BODY });
    expect(verify({ secrets: [next, SECRET], header: signedWithOld })).toEqual({ ok: true });
    expect(verify({ secrets: [next, SECRET], header: signedWithNew })).toEqual({ ok: true });
    expect(verify({ secrets: [next], header: signedWithOld })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
  });

  it('accepts any of several v1 signatures and ignores other schemes', () => {
    const v1 = header.split(',v1=')[1]!;
    expect(verify({ header: `t=${NOW},v1=${'0'.repeat(64)},v1=${v1}` })).toEqual({ ok: true });
    expect(verify({ header: `v2=abc, t=${NOW} , v1=${v1.toUpperCase()}` })).toEqual({ ok: true });
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['without a timestamp', `v1=${'a'.repeat(64)}`],
    ['without a signature', `t=${NOW}`],
    ['with a non-numeric timestamp', `t=soon,v1=${'a'.repeat(64)}`],
    ['with two timestamps', `t=${NOW},t=${NOW},v1=${'a'.repeat(64)}`],
    ['with a short signature', `t=${NOW},v1=abcd`],
    ['with a non-hex signature', `t=${NOW},v1=${'z'.repeat(64)}`],
    ['with a part that is not name=value', `t=${NOW},v1`],
  ])('calls a header %s malformed', (_label, bad) => {
    expect(verify({ header: bad })).toEqual({ ok: false, reason: 'malformed_header' });
  });

  it('throws for a caller mistake, not a request', () => {
    expect(() => verify({ secrets: [] })).toThrowError(
      expect.objectContaining({ code: 'formats.invalid_input' }),
    );
    expect(() => verify({ toleranceSeconds: -1 })).toThrowError(
      expect.objectContaining({ code: 'formats.invalid_input' }),
    );
  });
});

describe('generateWebhookSecret', () => {
  it('is whsec_ and base64url of 32 random bytes, fresh each time', () => {
    const secrets = new Set(Array.from({ length: 50 }, generateWebhookSecret));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(secret.slice(6), 'base64url')).toHaveLength(32);
    }
  });
});

describe('headers', () => {
  it('are named as documented', () => {
    expect(WebhookHeader).toEqual({
      Signature: 'Keystage-Signature',
      IdempotencyKey: 'Keystage-Idempotency-Key',
      DeliveryId: 'Keystage-Delivery-Id',
    });
    const docs = readFileSync(new URL('../../../docs/delivery-formats.md', import.meta.url), 'utf8');
    for (const name of Object.values(WebhookHeader)) expect(docs).toContain(`\`${name}\``);
  });
});

describe('the partner verification snippet in docs/delivery-formats.md', () => {
  const docs = readFileSync(new URL('../../../docs/delivery-formats.md', import.meta.url), 'utf8');
  const snippet = [...docs.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((code) => code.includes('export function verifyKeystageSignature'));

  it('is there, short, and needs nothing but node:crypto', () => {
    expect(snippet).toBeDefined();
    expect(snippet!.trim().split('\n').length).toBeLessThanOrEqual(22);
    expect([...snippet!.matchAll(/from '([^']+)'/g)].map((m) => m[1])).toEqual(['node:crypto']);
  });

  it('run in plain Node, agrees with signWebhook and verifyWebhook', () => {
    const now = Math.floor(Date.now() / 1000);
    const next = generateWebhookSecret();
    const cases = [
      { secrets: [SECRET], header: signWebhook({ secret: SECRET, timestamp: now, body: BODY }), body: BODY },
      {
        secrets: [next, SECRET],
        header: signWebhook({ secret: SECRET, timestamp: now, body: BODY }),
        body: BODY,
      },
      {
        secrets: [SECRET],
        header: signWebhook({ secret: SECRET, timestamp: now, body: BODY }),
        body: `${BODY}x`,
      },
      { secrets: [next], header: signWebhook({ secret: SECRET, timestamp: now, body: BODY }), body: BODY },
      {
        secrets: [SECRET],
        header: signWebhook({ secret: SECRET, timestamp: now - 600, body: BODY }),
        body: BODY,
      },
      { secrets: [SECRET], header: 't=abc,v1=00', body: BODY },
      { secrets: [SECRET], header: undefined, body: BODY },
    ];
    const driver = `${snippet}
const cases = JSON.parse(process.argv[1]);
process.stdout.write(JSON.stringify(cases.map((c) => verifyKeystageSignature(c.secrets, c.header, Buffer.from(c.body)))));`;
    const output = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', driver, JSON.stringify(cases)],
      {
        encoding: 'utf8',
      },
    );
    const fromSnippet = JSON.parse(output) as boolean[];
    expect(fromSnippet).toEqual([true, true, false, false, false, false, false]);
    const fromPackage = cases.map(
      (c) => verifyWebhook({ secrets: c.secrets, header: c.header, body: c.body }).ok,
    );
    expect(fromSnippet).toEqual(fromPackage);
  });
});
