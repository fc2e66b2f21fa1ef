import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPrismaClient, type PrismaClient } from '@keystage/db';
import { generateToSqlite } from '@keystage/demo-mis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/db.js';
import { json } from '../../../../test/support/http.js';
import { AgreementsService } from '../agreements/agreements.service.js';
import { PasswordHasher } from '../auth/password-hasher.js';
import type { RoleName } from '../auth/principal.js';
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
let extractId: string;
let previewMis: string;
let schoolA: string;
let schoolB: string;

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
  previewMis = join(mkdtempSync(join(tmpdir(), 'ks-preview-')), 'school.sqlite');
  await generateToSqlite(previewMis, { preset: 'tiny', seed: 3 });
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'extracts-test-secret-'.padEnd(48, 'e'),
      PORT: '0',
      LOG_LEVEL: 'silent',
      PASSWORD_HASH_COST: '10',
      REDIS_PREFIX: `test-ext-${process.pid}`,
      PREVIEW_MIS_PATH: previewMis,
    }),
  );
  prisma = createPrismaClient(db.url);
  partnerA = (await prisma.partner.create({ data: { slug: 'msgs', name: 'Messages Ltd' } })).id;
  partnerB = (await prisma.partner.create({ data: { slug: 'other', name: 'Other Ltd' } })).id;
  const hash = await server.app.get(PasswordHasher).hash('extract test password');
  schoolA = (
    await prisma.school.create({
      data: { urn: '400001', laEstab: '873/7001', name: 'A School', misType: 'DEMO_SQLITE' },
    })
  ).id;
  schoolB = (
    await prisma.school.create({
      data: { urn: '400002', laEstab: '873/7002', name: 'B School', misType: 'DEMO_SQLITE' },
    })
  ).id;
  const people: [string, RoleName, { partnerId?: string; schoolId?: string }][] = [
    ['dev@a.test', 'partner_developer', { partnerId: partnerA }],
    ['dev@b.test', 'partner_developer', { partnerId: partnerB }],
    ['admin@a.test', 'partner_admin', { partnerId: partnerA }],
    ['admin@school-a.test', 'school_admin', { schoolId: schoolA }],
    ['admin@school-b.test', 'school_admin', { schoolId: schoolB }],
  ];
  for (const [email, role, tenant] of people) {
    await server.app
      .get(TenancyRepository)
      .upsertUserWithRole({ email, displayName: email, passwordHash: hash }, { role, ...tenant });
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
    extractId = first.body.extractId;
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

describe('data agreements', () => {
  async function versionId(n: number) {
    return (await prisma.extractVersion.findFirstOrThrow({ where: { extractId, version: n } })).id;
  }

  it('approve → runs allowed; a wider version needs a new approval; a narrower one carries over; revoke stops runs and asks for deletion', async () => {
    const agreements = server.app.get(AgreementsService);
    const v1 = await versionId(1);
    const v2 = await versionId(2);
    expect(await agreements.coverage(schoolA, v1)).toEqual({ covered: false, reason: 'no_agreement' });

    const asked = await call(`/partners/${partnerA}/agreements`, {
      method: 'POST',
      token: tokens['admin@a.test']!,
      body: {
        schoolId: schoolA,
        extractVersionIds: [v1],
        purpose: 'Texts and emails home',
        lawfulBasis: 'public_task',
        retentionDays: 365,
      },
    });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body.status).toBe('REQUESTED');
    expect(Object.keys(asked.body.extractVersions[0].columns)).toEqual(expect.arrayContaining(['pupils']));
    const id = asked.body.id;

    // Only the school's own admin decides; a developer cannot even ask.
    expect(
      (
        await call(`/schools/${schoolB}/agreements/${id}/approve`, {
          method: 'POST',
          token: tokens['admin@school-b.test']!,
          body: {},
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await call(`/schools/${schoolA}/agreements/${id}/approve`, {
          method: 'POST',
          token: tokens['admin@school-b.test']!,
          body: {},
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await call(`/partners/${partnerA}/agreements`, {
          method: 'POST',
          token: tokens['dev@a.test']!,
          body: {},
        })
      ).status,
    ).toBe(403);
    expect(
      (await call(`/schools/${schoolB}/agreements`, { token: tokens['admin@school-b.test']! })).body,
    ).toEqual([]);

    const approved = await call(`/schools/${schoolA}/agreements/${id}/approve`, {
      method: 'POST',
      token: tokens['admin@school-a.test']!,
      body: { note: 'ok' },
    });
    expect(approved.body.status).toBe('APPROVED');
    expect(
      (
        await call(`/schools/${schoolA}/agreements/${id}/approve`, {
          method: 'POST',
          token: tokens['admin@school-a.test']!,
          body: {},
        })
      ).status,
    ).toBe(409);
    expect(await agreements.coverage(schoolA, v1)).toMatchObject({
      covered: true,
      agreementId: id,
      carriedOver: false,
    });
    expect(await agreements.coverage(schoolB, v1)).toEqual({ covered: false, reason: 'no_agreement' });
    expect(await agreements.coverage(schoolA, v2)).toEqual({ covered: false, reason: 'widens' });

    // A version that reads less than the approved one is covered without a new approval.
    const v1doc = (
      await call(`/partners/${partnerA}/extracts/${extractId}/versions/1`, { token: tokens['dev@a.test']! })
    ).body.document;
    const narrower = structuredClone(v1doc);
    const pupils = narrower.datasets[0];
    pupils.sql = pupils.sql.replace(/,\s*s\.current_reg AS reg_group/, '');
    pupils.variants.SIMS = pupils.variants.SIMS.replace(/,\s*s\.current_reg\S*\s+AS\s+reg_group/i, '');
    pupils.columns = pupils.columns.filter((c: { name: string }) => c.name !== 'reg_group');
    const v3 = await call(`/partners/${partnerA}/extracts`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document: JSON.stringify(narrower) },
    });
    expect(v3.status, JSON.stringify(v3.body)).toBe(201);
    expect(await agreements.coverage(schoolA, v3.body.id)).toMatchObject({
      covered: true,
      agreementId: id,
      approvedVersion: 1,
      carriedOver: true,
    });

    // Revoke: queued runs are cancelled at once, the partner is asked to delete.
    const run = await prisma.run.create({
      data: {
        partnerId: partnerA,
        schoolId: schoolA,
        agreementId: id,
        extractVersionId: v1,
        trigger: 'SCHEDULED',
        paramsHash: '0'.repeat(64),
        dueAt: new Date(Date.now() + 3600_000),
        deadlineAt: new Date(Date.now() + 7200_000),
      },
    });
    const revoked = await call(`/schools/${schoolA}/agreements/${id}/revoke`, {
      method: 'POST',
      token: tokens['admin@school-a.test']!,
      body: { reason: 'no longer using this service' },
    });
    expect(revoked.status).toBe(200);
    // The run made here and the scheduled run approval planned are both stopped.
    expect(revoked.body).toMatchObject({ status: 'REVOKED', runsCancelled: 2, deletionRequested: true });
    expect((await prisma.run.findUniqueOrThrow({ where: { id: run.id } })).state).toBe('CANCELLED');
    expect(await prisma.run.count({ where: { agreementId: id, state: { not: 'CANCELLED' } } })).toBe(0);
    expect(await prisma.schedule.count({ where: { agreementId: id, active: true } })).toBe(0);
    expect(await agreements.coverage(schoolA, v1)).toEqual({ covered: false, reason: 'no_agreement' });
    const actions = (
      await prisma.auditEvent.findMany({ where: { targetId: id }, orderBy: { seq: 'asc' } })
    ).map((e) => e.action);
    expect(actions).toEqual([
      'agreement.requested',
      'agreement.approved',
      'agreement.revoked',
      'agreement.deletion_requested',
    ]);
  });

  it('refuses versions of another partner and unknown schools', async () => {
    const v1 = await versionId(1);
    const foreign = await call(`/partners/${partnerB}/agreements`, {
      method: 'POST',
      token: tokens['admin@a.test']!,
      body: {
        schoolId: schoolA,
        extractVersionIds: [v1],
        purpose: 'x',
        lawfulBasis: 'consent',
        retentionDays: 30,
      },
    });
    expect(foreign.status).toBe(403);
    const bad = await call(`/partners/${partnerA}/agreements`, {
      method: 'POST',
      token: tokens['admin@a.test']!,
      body: {
        schoolId: '00000000-0000-4000-8000-000000000000',
        extractVersionIds: [v1],
        purpose: 'x',
        lawfulBasis: 'consent',
        retentionDays: 30,
      },
    });
    expect(bad.status).toBe(404);
  });
});

describe('minimum-necessary MIS permissions per school', () => {
  it('aggregates the groups over every approved extract, says what breaks without one, and prints it in the CLI', async () => {
    const token = tokens['dev@a.test']!;
    const ids: string[] = [];
    for (const file of ['cashless-catering.yaml', 'absence-alerts.yaml']) {
      const document = readFileSync(resolve(LIBRARY, file), 'utf8');
      const published = await call(`/partners/${partnerA}/extracts`, {
        method: 'POST',
        token,
        body: { document },
      });
      expect(published.status, JSON.stringify(published.body)).toBe(201);
      ids.push(published.body.id);
    }
    const asked = await call(`/partners/${partnerA}/agreements`, {
      method: 'POST',
      token: tokens['admin@a.test']!,
      body: {
        schoolId: schoolB,
        extractVersionIds: ids,
        purpose: 'Catering and absence calls',
        lawfulBasis: 'public_task',
        retentionDays: 90,
      },
    });
    const none = await call(`/schools/${schoolB}/permissions`, { token: tokens['admin@school-b.test']! });
    expect(none.body.groups).toEqual([]);
    await call(`/schools/${schoolB}/agreements/${asked.body.id}/approve`, {
      method: 'POST',
      token: tokens['admin@school-b.test']!,
      body: {},
    });

    const report = await call(`/schools/${schoolB}/permissions`, { token: tokens['admin@school-b.test']! });
    expect(report.status).toBe(200);
    expect(report.body.extracts).toHaveLength(2);
    const groups = report.body.groups.map((g: { group: string }) => g.group);
    expect(groups.length).toBeGreaterThan(0);
    expect(report.body.perExtract).toHaveLength(2);

    const breaks = await call(
      `/schools/${schoolB}/permissions/what-breaks?group=${encodeURIComponent(groups[0])}`,
      { token: tokens['admin@school-b.test']! },
    );
    expect(breaks.status).toBe(200);
    expect(breaks.body.broken.length).toBeGreaterThan(0);
    const unknown = await call(`/schools/${schoolB}/permissions/what-breaks?group=Caretaker`, {
      token: tokens['admin@school-b.test']!,
    });
    expect(unknown.status).toBe(404);
    // Another school's admin sees nothing of it.
    expect(
      (await call(`/schools/${schoolB}/permissions`, { token: tokens['admin@school-a.test']! })).status,
    ).toBe(403);

    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const cli = resolve(import.meta.dirname, '../../dist/cli.js');
    const out = await promisify(execFile)(process.execPath, [cli, 'permissions', '--school', '400002'], {
      env: { ...process.env, DATABASE_URL: db.url },
    });
    expect(out.stdout).toMatch(/MIS permission groups for school 400002 \(2 approved extract versions\)/);
    for (const g of groups) expect(out.stdout).toContain(g);
  });
});

describe('preview of a draft against the demo MIS', () => {
  it('returns the first rows, the column types, the row count and the time', async () => {
    const document = readFileSync(resolve(LIBRARY, 'parent-messaging.yaml'), 'utf8');
    const res = await call(`/partners/${partnerA}/extracts/preview`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document, limit: 5 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.dataset).toBe('pupils');
    expect(res.body.rows).toHaveLength(5);
    expect(res.body.rowCount).toBeGreaterThan(5);
    expect(res.body.columns.map((c: { name: string }) => c.name)).toEqual([
      'pupil_id',
      'upn',
      'admission_number',
      'legal_forename',
      'legal_surname',
      'preferred_forename',
      'preferred_surname',
      'year_group',
      'reg_group',
    ]);
    expect(res.body.elapsedMs).toBeGreaterThanOrEqual(0);
    const contacts = await call(`/partners/${partnerA}/extracts/preview`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: { document, dataset: 'nope' },
    });
    expect(contacts.status).toBe(422);
    expect(contacts.body.details.datasets).toContain('pupils');
  });

  it('applies the same validation as the agent and refuses other MIS kinds', async () => {
    const document = readFileSync(resolve(LIBRARY, 'parent-messaging.yaml'), 'utf8');
    const bad = await call(`/partners/${partnerA}/extracts/preview`, {
      method: 'POST',
      token: tokens['dev@a.test']!,
      body: {
        document: document.replace(
          'SELECT s.person_id AS pupil_id,',
          'UPDATE sims.sims_person SET surname = 1; SELECT s.person_id AS pupil_id,',
        ),
      },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('extract.invalid');
  });
});
