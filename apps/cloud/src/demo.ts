/**
 * `pnpm demo`: the whole system on local defaults. Migrates the database, prepares the demo school,
 * boots the control plane (all roles) and prints what runs where. Ctrl+C stops it cleanly.
 * Every default can be overridden with the same variables as production (see README).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { applyMigrations, DEFAULT_DATABASE_URL } from '@keystage/db/migrator';
import { exitWithError, runUntilSignalled } from './bootstrap.js';
import { describeEndpoint, loadConfig } from './config/config.js';

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

async function main(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  env.DATABASE_URL ||= DEFAULT_DATABASE_URL;
  if (!env.KEYSTAGE_SECRET && !env.KEYSTAGE_SECRET_FILE) env.KEYSTAGE_SECRET = demoSecret();
  env.LOG_LEVEL ||= 'warn';
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

  await runUntilSignalled(
    () => config,
    (server) => {
      say('');
      say('Keystage demo is running');
      say(`  control plane  ${server.url}   (roles: ${[...config.roles].join(', ')})`);
      say(`  API docs       ${server.url}/api/docs`);
      say(`  readiness      ${server.url}/health/ready`);
      say(`  PostgreSQL     ${describeEndpoint(config.databaseUrl)}${new URL(config.databaseUrl).pathname}`);
      say(`  Redis          ${describeEndpoint(config.redisUrl)}`);
      say('Press Ctrl+C to stop.');
    },
  );
}

main().catch(exitWithError);
