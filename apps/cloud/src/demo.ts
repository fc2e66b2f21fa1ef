/**
 * `pnpm demo`: the whole system on local defaults. Migrates the database, prepares the demo school,
 * boots the control plane (all roles) and prints what runs where. Ctrl+C stops it cleanly.
 * Every default can be overridden with the same variables as production (see README).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { applyMigrations, DEFAULT_DATABASE_URL } from '@keystage/db/migrator';
import { generate, getPreset, openMis } from '@keystage/demo-mis';
import { LIBRARY_EXTRACTS, libraryDocumentText } from '@keystage/extract-spec';
import type { INestApplicationContext } from '@nestjs/common';
import { AgreementsService } from './agreements/agreements.service.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { exitWithError, runUntilSignalled } from './bootstrap.js';
import { describeEndpoint, loadConfig } from './config/config.js';
import { ExtractsService } from './extracts/extracts.service.js';
import { TenancyRepository } from './tenancy/tenancy.repository.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const STATE_DIR = join(ROOT, '.keystage');

const say = (line: string) => process.stderr.write(`${line}\n`);

/** A per-checkout secret, made once and kept in .keystage/ (0600) so tokens survive restarts. */
function demoSecret(): string {
  const file = join(STATE_DIR, 'demo-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

const DEMO_SUPPORT_EMAIL = 'support@demo.keystage.local';
const DEMO_PARTNER_SLUG = 'demo-partner';
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: 'demo' };

function demoSupportPassword(): string {
  const file = join(STATE_DIR, 'demo-support-password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const password = randomBytes(12).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** The demo MIS's school as a Keystage school, and a support account to explore the API with. */
async function seedDemoTenancy(app: INestApplicationContext, misPath: string, password: string) {
  const mis = await openMis(misPath);
  let row: Record<string, unknown> | undefined;
  try {
    [row] = await mis.all(
      `SELECT school_name, lea_code, estab, urn FROM ${mis.table('sims_school')} WHERE status = 'S'`,
    );
  } finally {
    await mis.close();
  }
  if (!row) throw new Error('the demo MIS has no school row');
  const tenancy = app.get(TenancyRepository);
  const urn = String(row.urn).padStart(6, '0');
  const school =
    (await tenancy.listSchools()).find((s) => s.urn === urn) ??
    (await tenancy.createSchool({
      urn,
      laEstab: `${String(row.lea_code).padStart(3, '0')}/${String(row.estab).padStart(4, '0')}`,
      name: String(row.school_name),
      misType: 'DEMO_SQLITE',
    }));
  const hash = await app.get(PasswordHasher).hash(password);
  await tenancy.upsertUserWithRole(
    { email: DEMO_SUPPORT_EMAIL, displayName: 'Demo support', passwordHash: hash },
    { role: 'support' },
  );

  // A demo partner with the extract library, and the school's approval of all of it.
  const partner =
    (await tenancy.listPartners()).find((p) => p.slug === DEMO_PARTNER_SLUG) ??
    (await tenancy.createPartner({ slug: DEMO_PARTNER_SLUG, name: 'Demo Partner Ltd' }));
  const extracts = app.get(ExtractsService);
  const versionIds: string[] = [];
  for (const name of LIBRARY_EXTRACTS) {
    versionIds.push((await extracts.publish(partner.id, libraryDocumentText(name), SYSTEM)).id);
  }
  const agreements = app.get(AgreementsService);
  const existing = (await agreements.forSchool(school.id)).find(
    (a) => a.partnerId === partner.id && a.status === 'APPROVED',
  );
  const covered = new Set(existing?.extractVersions.map((v) => v.extractVersionId) ?? []);
  if (!existing || versionIds.some((id) => !covered.has(id))) {
    const asked = await agreements.request(
      partner.id,
      {
        schoolId: school.id,
        extractVersionIds: versionIds,
        purpose: 'Keystage demo: the ten library extracts',
        lawfulBasis: 'public_task',
        retentionDays: 30,
      },
      SYSTEM,
    );
    await agreements.approve(school.id, asked.id, 'approved by the demo', SYSTEM);
  }
  return { ...school, partner, extracts: versionIds.length };
}

async function main(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  env.DATABASE_URL ||= DEFAULT_DATABASE_URL;
  if (!env.KEYSTAGE_SECRET && !env.KEYSTAGE_SECRET_FILE) env.KEYSTAGE_SECRET = demoSecret();
  env.LOG_LEVEL ||= 'warn';
  const misPath = resolve(env.DEMO_MIS_PATH || join(ROOT, 'data/demo-school.sqlite'));
  // Partners preview draft extracts against the demo school.
  env.PREVIEW_MIS_PATH ||= misPath;
  const config = loadConfig(env);

  say(`• migrating ${describeEndpoint(config.databaseUrl)}${new URL(config.databaseUrl).pathname} …`);
  const applied = await applyMigrations({
    databaseUrl: config.databaseUrl,
    migrationsDir: join(ROOT, 'prisma/migrations'),
  });
  say(
    applied.length
      ? `  applied ${applied.length} migration(s): ${applied.join(', ')}`
      : '  database is up to date',
  );

  const preset = env.DEMO_MIS_PRESET || 'secondary';
  if (existsSync(misPath)) {
    say(`• demo MIS: ${misPath} (kept; delete it to generate a new one)`);
  } else {
    say(`• generating the demo MIS (${preset}) into ${misPath} …`);
    let shown = -1;
    const result = await generate({
      preset: getPreset(preset),
      targets: { sqlite: misPath },
      onProgress: (done, total) => {
        const pct = Math.floor((done / Math.max(1, total)) * 10) * 10;
        if (pct === shown || !process.stderr.isTTY) return;
        shown = pct;
        process.stderr.write(`  ${pct}%\r`);
      },
    });
    say(
      `  ${result.totalRows.toLocaleString('en-GB')} rows in ${(result.elapsedMs / 1000).toFixed(1)} s (school day ${result.today})`,
    );
  }
  const demoPassword = demoSupportPassword();

  await runUntilSignalled(
    () => config,
    async (server) => {
      const school = await seedDemoTenancy(server.app, misPath, demoPassword);
      say('');
      say('Keystage demo is running');
      say(`  control plane  ${server.url}   (roles: ${[...config.roles].join(', ')})`);
      say(`  API docs       ${server.url}/api/docs`);
      say(`  readiness      ${server.url}/health/ready`);
      say(`  PostgreSQL     ${describeEndpoint(config.databaseUrl)}${new URL(config.databaseUrl).pathname}`);
      say(`  Redis          ${describeEndpoint(config.redisUrl)}`);
      say(`  demo MIS       ${misPath}`);
      say(`  demo school    ${school.name} (URN ${school.urn}, id ${school.id})`);
      say(`  support login  ${DEMO_SUPPORT_EMAIL} / ${demoPassword}   (POST /auth/login)`);
      say(
        `  demo partner   ${school.partner.name} (id ${school.partner.id}): ${school.extracts} library extracts, approved by the school`,
      );
      say('Press Ctrl+C to stop.');
    },
  );
}

main().catch(exitWithError);
