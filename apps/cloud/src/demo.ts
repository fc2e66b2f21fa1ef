/**
 * `pnpm demo`: the whole system on local defaults. Migrates the database, prepares the demo school,
 * boots the control plane (all roles), enrols and starts the school's agent, plays the partner (a
 * webhook receiver and a pull client writing every change set under ./demo-output) and prints runs
 * as they move. `pnpm demo --once` runs every demo extract now, waits for every delivery, prints a
 * summary and exits (0 when everything was delivered). Ctrl+C stops it cleanly.
 * Every default can be overridden with the same variables as production (see README).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { applyMigrations, DEFAULT_DATABASE_URL } from '@keystage/db/migrator';
import { generate, getPreset, openMis } from '@keystage/demo-mis';
import { LIBRARY_EXTRACTS, libraryDocumentText } from '@keystage/extract-spec';
import type { INestApplicationContext } from '@nestjs/common';
import { AgentsService } from './agents/agents.service.js';
import { AgreementsService } from './agreements/agreements.service.js';
import { ApiKeysService } from './api-keys/api-keys.service.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { exitWithError, preflight, type RunningServer, runUntilSignalled, startServer } from './bootstrap.js';
import { describeEndpoint, loadConfig } from './config/config.js';
import type { CloudConfig } from './config/config.schema.js';
import { PrismaProvider } from './database/prisma.provider.js';
import { DeliveryService } from './deliveries/delivery.service.js';
import { DemoAgent, PullClient, type Received, WebhookReceiver } from './demo-partner.js';
import { ExtractsService } from './extracts/extracts.service.js';
import { RunsService } from './runs/runs.service.js';
import { TenancyRepository } from './tenancy/tenancy.repository.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const AGENT_CLI = join(ROOT, 'apps/agent/dist/cli.js');
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

interface DemoContext {
  server: RunningServer;
  config: CloudConfig;
  school: Awaited<ReturnType<typeof seedDemoTenancy>>;
  received: Received[];
  agent: DemoAgent;
  receiver: WebhookReceiver;
  pull: PullClient;
}

/** The partner's webhook, pull client and API key; the school's agent, enrolled once and started. */
async function startOutsideWorld(
  server: RunningServer,
  config: CloudConfig,
  school: Awaited<ReturnType<typeof seedDemoTenancy>>,
  misPath: string,
  outputDir: string,
  onReceived: (r: Received) => void,
): Promise<Omit<DemoContext, 'server' | 'config' | 'school' | 'received'>> {
  const deliveries = server.app.get(DeliveryService);
  const receiver = new WebhookReceiver(outputDir, onReceived);
  const url = await receiver.start();
  await deliveries.setWebhook(school.partner.id, url, SYSTEM);
  // The demo is the partner: it takes a fresh secret each start (the previous one stays valid).
  receiver.secrets = [(await deliveries.rotateSecret(school.partner.id, SYSTEM)).secret];
  const keyInput = {
    name: `demo pull client ${new Date().toISOString()}`,
    scopes: ['deliveries:read', 'runs:read', 'runs:write'],
    expiresInDays: 1,
  };
  const apiKeys = server.app.get(ApiKeysService);
  const { key } = await apiKeys.create(school.partner.id, keyInput, SYSTEM);
  const pull = new PullClient(server.url, school.partner.id, key, outputDir, onReceived);
  pull.start();
  // The agent's data directory belongs to one database and school: enrol again when either changed.
  const agentDir = join(process.env.DEMO_STATE_DIR || STATE_DIR, 'demo-agent');
  const identity = `${config.databaseUrl}|${school.id}|${misPath}|${server.url}`;
  const marker = join(agentDir, '..', 'demo-agent.enrolled-for');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== identity) {
    rmSync(agentDir, { recursive: true, force: true });
  }
  const agent = new DemoAgent(AGENT_CLI, agentDir);
  if (!agent.enrolled) {
    const { token } = await server.app.get(AgentsService).createEnrolmentToken(school.id, 1, SYSTEM);
    await agent.enrol(server.url, token, misPath);
    mkdirSync(dirname(marker), { recursive: true, mode: 0o700 });
    writeFileSync(marker, identity, { mode: 0o600 });
  }
  agent.start((line) => {
    if (/"level":"(warn|error)"/.test(line) && !/heartbeat/.test(line)) say(`  agent: ${line}`);
  });
  return { agent, receiver, pull };
}

/** Prints each run's state changes as they happen. */
function watchRuns(server: RunningServer, schoolId: string): () => void {
  const runs = server.app.get(RunsService);
  const seen = new Map<string, string>();
  const started = new Date();
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const page = await runs.list({ schoolId, from: new Date(started.getTime() - 60_000) }, { limit: 200 });
      for (const r of page.items.reverse()) {
        if (seen.get(r.id) === r.state || r.state === 'SCHEDULED') continue;
        seen.set(r.id, r.state);
        const counts =
          r.state === 'PROCESSED' || r.state === 'DELIVERED'
            ? `  rows ${r.rowCount ?? 0}, +${r.insertCount ?? 0} ~${r.updateCount ?? 0} -${r.deleteCount ?? 0}`
            : r.state === 'UPLOADED'
              ? `  rows ${r.rowCount ?? 0}`
              : r.errorMessage
                ? `  ${r.errorMessage}`
                : '';
        say(`  run ${r.extract.name.padEnd(22)} ${r.state.toLowerCase().padEnd(10)}${counts}`);
      }
    } catch {
      // shutting down
    } finally {
      busy = false;
    }
  }, 500);
  return () => clearInterval(timer);
}

const TERMINAL = new Set(['DELIVERED', 'FAILED', 'MISSED', 'CANCELLED']);

/** `--once`: every library extract now; wait for every delivery; print a summary. */
async function runOnce(ctx: DemoContext, outputDir: string, timeoutMs: number): Promise<boolean> {
  const runs = ctx.server.app.get(RunsService);
  const extracts = await ctx.server.app.get(PrismaProvider).client.extract.findMany({
    where: { partnerId: ctx.school.partner.id },
    select: { id: true, name: true },
    orderBy: { name: 'asc' },
  });
  const started = new Map<string, { runId: string; name: string; at: number }>();
  for (const e of extracts) {
    const run = await runs.runNow(
      ctx.school.partner.id,
      { schoolId: ctx.school.id, extractId: e.id },
      SYSTEM,
    );
    started.set(run.id, { runId: run.id, name: e.name, at: Date.now() });
  }
  say(`• running ${started.size} extracts now (one at a time at the school) …`);
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, Awaited<ReturnType<RunsService['get']>> & { ms: number }>();
  while (done.size < started.size && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    for (const s of started.values()) {
      if (done.has(s.runId)) continue;
      const run = await runs.get(s.runId, {});
      if (TERMINAL.has(run.state))
        done.set(s.runId, { ...run, ms: (run.finishedAt?.getTime() ?? Date.now()) - s.at });
    }
  }
  say('');
  say('  extract                 state       rows   inserts  updates  deletes   time');
  let ok = true;
  for (const s of started.values()) {
    const r = done.get(s.runId);
    if (!r) {
      ok = false;
      say(`  ${s.name.padEnd(22)}  timed out`);
      continue;
    }
    if (r.state !== 'DELIVERED') ok = false;
    say(
      `  ${s.name.padEnd(22)}  ${r.state.toLowerCase().padEnd(10)} ${String(r.rowCount ?? 0).padStart(6)} ${String(r.insertCount ?? 0).padStart(9)} ${String(r.updateCount ?? 0).padStart(8)} ${String(r.deleteCount ?? 0).padStart(8)} ${(r.ms / 1000).toFixed(1).padStart(6)} s${r.state === 'DELIVERED' ? '' : `   ${r.errorMessage ?? ''}`}`,
    );
  }
  const files = ctx.received.filter((r) => !r.duplicate);
  say('');
  say(
    `  ${files.length} change set(s) written under ${outputDir} (${ctx.received.length - files.length} duplicate(s) dropped by idempotency key)`,
  );
  return ok;
}

async function main(): Promise<void> {
  const once = process.argv.includes('--once');
  const env: Record<string, string | undefined> = { ...process.env };
  env.DATABASE_URL ||= DEFAULT_DATABASE_URL;
  if (!env.KEYSTAGE_SECRET && !env.KEYSTAGE_SECRET_FILE) env.KEYSTAGE_SECRET = demoSecret();
  env.LOG_LEVEL ||= 'warn';
  const misPath = resolve(env.DEMO_MIS_PATH || join(ROOT, 'data/demo-school.sqlite'));
  const outputDir = resolve(env.DEMO_OUTPUT_DIR || 'demo-output');
  // Partners preview draft extracts against the demo school.
  env.PREVIEW_MIS_PATH ||= misPath;
  env.OBJECT_STORE_DIR ||= join(ROOT, 'data/objects');
  env.FILE_DROP_DIR ||= join(outputDir, 'files');
  // Retry a refused webhook quickly in the demo (production waits longer).
  env.WEBHOOK_RETRY_BASE_MS ||= '500';
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
  mkdirSync(outputDir, { recursive: true });

  const announce = (server: RunningServer, school: Awaited<ReturnType<typeof seedDemoTenancy>>) => {
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
    say(`  demo output    ${outputDir}   (webhook/, pull/, files/: one file per change set)`);
  };

  const received: Received[] = [];
  const onReceived = (r: Received) => {
    received.push(r);
    if (!once) say(`  received ${r.via.padEnd(7)} ${r.key}${r.duplicate ? ' (duplicate, dropped)' : ''}`);
  };

  if (once) {
    let server: RunningServer | undefined;
    let world: Awaited<ReturnType<typeof startOutsideWorld>> | undefined;
    let ok = false;
    try {
      await preflight(config);
      server = await startServer(config);
      const school = await seedDemoTenancy(server.app, misPath, demoPassword);
      announce(server, school);
      world = await startOutsideWorld(server, config, school, misPath, outputDir, onReceived);
      const stopWatching = watchRuns(server, school.id);
      ok = await runOnce(
        { server, config, school, received, ...world },
        outputDir,
        Number(env.DEMO_ONCE_TIMEOUT_MS || 600_000),
      );
      stopWatching();
      await world.pull.poll();
    } catch (err) {
      say(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
      ok = false;
    } finally {
      world?.pull.stop();
      await world?.agent.stop();
      await world?.receiver.stop();
      await server?.stop();
    }
    if (!ok) say('demo --once: not every extract was delivered (see above)');
    process.exit(ok ? 0 : 1);
  }

  let world: Awaited<ReturnType<typeof startOutsideWorld>> | undefined;
  const stopWorld = async () => {
    world?.pull.stop();
    await world?.agent.stop();
    await world?.receiver.stop();
  };
  process.once('SIGINT', () => void stopWorld());
  process.once('SIGTERM', () => void stopWorld());
  await runUntilSignalled(
    () => config,
    async (server) => {
      const school = await seedDemoTenancy(server.app, misPath, demoPassword);
      world = await startOutsideWorld(server, config, school, misPath, outputDir, onReceived);
      watchRuns(server, school.id);
      announce(server, school);
      say('Runs happen on their schedules; `pnpm demo --once` runs everything now. Press Ctrl+C to stop.');
    },
  );
}

main().catch(exitWithError);
