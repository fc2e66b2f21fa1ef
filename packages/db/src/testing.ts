/**
 * Test databases: a template database with every migration applied, built once per test run, and
 * throw-away databases copied from it (`CREATE DATABASE x TEMPLATE t` copies files: fast).
 * Used by test/support/global-setup.ts and test/support/db.ts.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDatabaseUrl, quoteIdentifier, withDatabase } from './database-url.js';
import { applyMigrations, createDatabase, dropDatabase } from './migrator.js';
import { withAdminClient } from './wasm-engine.js';

export const TEST_TEMPLATE_DATABASE = 'keystage_test_template';

export interface BuildTemplateOptions {
  /** Any URL of the PostgreSQL server to use; its database part is ignored. */
  serverUrl: string;
  /** The migrations folder to apply; a missing folder gives an empty template. */
  migrationsDir: string;
  /** Template database name (default `keystage_test_template`). */
  name?: string;
}

/**
 * (Re)builds the template database: the migrations are applied to a fresh, uniquely named database,
 * which then replaces the template in one short step (drop + rename, under an advisory lock). A
 * concurrent test run thus never sees a half-built template. Returns the applied migration names.
 */
export async function buildTemplateDatabase(options: BuildTemplateOptions): Promise<string[]> {
  const name = options.name ?? TEST_TEMPLATE_DATABASE;
  const buildName = `${name.slice(0, 40)}_build_${randomBytes(4).toString('hex')}`;
  const buildUrl = withDatabase(options.serverUrl, buildName);
  await createDatabase(buildUrl, { replace: true });
  try {
    const applied = await applyMigrations({
      databaseUrl: buildUrl,
      migrationsDir: options.migrationsDir,
      createDatabase: false,
    });
    await withAdminClient(parseDatabaseUrl(buildUrl), async (client) => {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
      try {
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
        await client.query(`ALTER DATABASE ${quoteIdentifier(buildName)} RENAME TO ${quoteIdentifier(name)}`);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
      }
    });
    return applied;
  } catch (error) {
    await dropDatabase(buildUrl).catch(() => {});
    throw error;
  }
}

export interface TestDatabase {
  /** URL of the new database. */
  url: string;
  /** Its name. */
  name: string;
  /** Drops it (closing any session still connected). */
  drop(): Promise<void>;
}

/**
 * Creates a database named `<prefix>_<random>` as a copy of `template`. Retries for a few seconds
 * while the template is busy (another session connected, or a concurrent run swapping it in).
 */
export async function createDatabaseFromTemplate(options: {
  serverUrl: string;
  template: string;
  prefix: string;
}): Promise<TestDatabase> {
  const prefix =
    options.prefix
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .slice(0, 40) || 'test';
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const url = withDatabase(options.serverUrl, name);
  const deadline = Date.now() + 15_000;
  for (let attempt = 1; ; attempt++) {
    try {
      await createDatabase(url, { template: options.template });
      break;
    } catch (error) {
      const code = (error as { code?: string }).code;
      // 55006: template in use by other users; 3D000: template missing (being swapped in).
      const transient = code === '55006' || code === '3D000';
      if (!transient || Date.now() > deadline) {
        if (code === '3D000') {
          throw new Error(
            `template database "${options.template}" does not exist: is test/support/global-setup.ts the vitest globalSetup?`,
            { cause: error },
          );
        }
        throw error;
      }
      await sleep(Math.min(50 * attempt, 500));
    }
  }
  return { url, name, drop: () => dropDatabase(url) };
}
