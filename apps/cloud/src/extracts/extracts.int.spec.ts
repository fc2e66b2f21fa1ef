import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createPrismaClient, type PrismaClient } from '@keystage/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/db.js';
import { json } from '../../../../test/support/http.js';
import { PasswordHasher } from '../auth/password-hasher.js';
import { type RunningServer, startServer } from '../bootstrap.js';
import { loadConfig } from '../config/config.js';
import { TenancyRepository } from '../tenancy/tenancy.repository.js';

const LIBRARY = resolve(import.meta.dirname, '../../../../packages/extract-spec/library');
let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaClient;
let partnerA: string;
let partnerB: string;
const tokens: Record<string, string> = {};

async function call(path: string, init: { method?: string; token: string; body?: unknown }) {
  const res = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.token}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, body: await json(res) };
}

beforeAll(async () => {
  db = await createTestDatabase('extracts');
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'extracts-test-secret-'.padEnd(48, 'e'),
      PORT: '0',
      LOG_LEVEL: 'silent',
      PASSWORD_HASH_COST: '10',
      REDIS_PREFIX: `test-ext-${process.pid}`,
    }),
  );
  prisma = createPrismaClient(db.url);
  partnerA = (await prisma.partner.create({ data: { slug: 'msgs', name: 'Messages Ltd' } })).id;
  partnerB = (await prisma.partner.create({ data: { slug: 'other', name: 'Other Ltd' } })).id;
  const hash = await server.app.get(PasswordHasher).hash('extract test password');
  for (const [email, partnerId] of [
    ['dev@a.test', partnerA],
    ['dev@b.test', partnerB],
  ] as const) {
    await server.app
      .get(TenancyRepository)
      .upsertUserWithRole(
        { email, displayName: email, passwordHash: hash },
        { role: 'partner_developer', partnerId },
      );
    const res = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'extract test password' }),
    });
    tokens[email] = (await json(res)).accessToken;
  }
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await prisma?.$disconnect();
  await db?.drop();
});

describe('extracts: validate, publish immutable versions, diff', () => {
  const doc = () => readFileSync(resolve(LIBRARY, 'parent-messaging.yaml'), 'utf8');

  it('validates a library document and reports the MIS permissions it needs', async () => {
    const res = await call(`/partners/${partnerA}/extracts/validate`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: doc() },
    });
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    expect(res.body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body.permissions.groups.map((g: { group: string }) => g.group).length).toBeGreaterThan(0);
  });

  it('lists every problem of a bad document at once, with paths and SQL positions', async () => {
    const bad = doc()
      .replace('mis: DEMO_SQLITE', 'mis: EXCEL')
      .replace('key: [pupil_id]', 'key: [no_such_column]')
      .replace(
        'SELECT s.person_id AS pupil_id,',
        'DELETE FROM sims.stud_student; SELECT s.person_id AS pupil_id,',
      );
    const res = await call(`/partners/${partnerA}/extracts/validate`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: bad },
    });
    expect(res.body.ok).toBe(false);
    const paths = res.body.problems.map((p: { path: string }) => p.path);
    expect(paths).toContain('mis');
    expect(paths.some((p: string) => p.startsWith('datasets.0.key'))).toBe(true);
    const publish = await call(`/partners/${partnerA}/extracts`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: bad },
    });
    expect(publish.status).toBe(422);
    expect(publish.body.code).toBe('extract.invalid');
    expect(publish.body.details.length).toBeGreaterThanOrEqual(2);
  });

  it('publishes version 1, does nothing for the same document, and makes version 2 for a change; the diff says it widens', async () => {
    const first = await call(`/partners/${partnerA}/extracts`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: doc() },
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ version: 1, created: true, misType: 'DEMO_SQLITE' });
    const again = await call(`/partners/${partnerA}/extracts`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: doc() },
    });
    expect(again.body).toMatchObject({ version: 1, created: false });

    const v1 = await call(`/partners/${partnerA}/extracts/${first.body.extractId}/versions/1`, {
      token: tokens['dev@a.test']!,
    });
    const wider = structuredClone(v1.body.document);
    const pupils = wider.datasets[0];
    pupils.sql = pupils.sql.replace(
      's.current_reg AS reg_group',
      's.current_reg AS reg_group,\n       s.ethnicity_code AS ethnicity',
    );
    pupils.variants.SIMS = pupils.variants.SIMS.replace(
      /(current_reg\S*\s+AS\s+reg_group)/i,
      '$1,\n       s.ethnicity_code AS ethnicity',
    );
    pupils.columns.push({
      name: 'ethnicity',
      type: 'string',
      nullable: true,
      description: 'Ethnicity code',
      category: 'special_category',
    });
    const second = await call(`/partners/${partnerA}/extracts`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: JSON.stringify(wider) },
    });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body.version).toBe(2);

    const diff = await call(`/partners/${partnerA}/extracts/${first.body.extractId}/versions/1/diff/2`, {
      token: tokens['dev@a.test']!,
    });
    expect(diff.body).toMatchObject({ from: 1, to: 2, widens: true, sqlChanged: ['pupils'] });
    expect(diff.body.columns).toEqual([
      { dataset: 'pupils', added: ['ethnicity'], removed: [], changed: [] },
    ]);
    expect(diff.body.columnsRead.added).toContain('sims.stud_student.ethnicity_code');
    expect(diff.body.categories.removed).toEqual([]);
    const back = await call(`/partners/${partnerA}/extracts/${first.body.extractId}/versions/2/diff/1`, {
      token: tokens['dev@a.test']!,
    });
    expect(back.body.widens).toBe(false);

    const versions = await call(`/partners/${partnerA}/extracts/${first.body.extractId}/versions`, {
      token: tokens['dev@a.test']!,
    });
    expect(versions.body.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(
      await prisma.auditEvent.count({ where: { action: 'extract.published', partnerId: partnerA } }),
    ).toBe(2);

    // Immutable: even the database refuses to change a published version.
    await expect(
      prisma.$executeRawUnsafe('UPDATE extract_versions SET document_hash = $1', 'f'.repeat(64)),
    ).rejects.toThrow(/not allowed/);

    // Another partner cannot reach it, even through its own path with this extract's id.
    const foreign = await call(`/partners/${partnerB}/extracts/${first.body.extractId}/versions`, {
      token: tokens['dev@b.test']!,
    });
    expect(foreign.status).toBe(404);
    const direct = await call(`/partners/${partnerA}/extracts/${first.body.extractId}/versions`, {
      token: tokens['dev@b.test']!,
    });
    expect(direct.status).toBe(403);
  });
});
