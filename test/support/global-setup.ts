import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { DEFAULT_DATABASE_URL } from '../../packages/db/src/migrator.js';
import { buildTemplateDatabase, TEST_TEMPLATE_DATABASE } from '../../packages/db/src/testing.js';
// The ProvidedContext keys are declared in ./db.ts.
import type {} from './db.js';

/**
 * Vitest globalSetup: once per test run, (re)builds the template database `keystage_test_template`
 * with every migration of prisma/migrations applied, so that each test file can get its own database
 * quickly with `createTestDatabase()` from ./db.ts. With no migrations folder yet, the template is
 * simply empty.
 *
 * The server comes from TEST_DATABASE_URL, else DATABASE_URL, else the local default; only its
 * host, port and credentials are used.
 */
export default async function setup(project: TestProject): Promise<void> {
  // Pure-package test runs (no database needed) can skip the template: KEYSTAGE_NO_TEST_DB=1.
  if (process.env.KEYSTAGE_NO_TEST_DB === '1') return;
  const serverUrl = testServerUrl();
  const migrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
  const started = Date.now();
  const applied = await buildTemplateDatabase({ serverUrl, migrationsDir, name: TEST_TEMPLATE_DATABASE });
  if (process.env.KEYSTAGE_DEBUG) {
    console.warn(
      `[global-setup] ${TEST_TEMPLATE_DATABASE}: ${applied.length} migration(s) in ${Date.now() - started} ms`,
    );
  }
  project.provide('keystageTemplateDatabase', TEST_TEMPLATE_DATABASE);
  project.provide('keystageTestServerUrl', serverUrl);
  // For code outside vitest's inject() (e.g. helper processes spawned by tests).
  process.env.KEYSTAGE_TEST_TEMPLATE_DB = TEST_TEMPLATE_DATABASE;
  process.env.KEYSTAGE_TEST_SERVER_URL = serverUrl;
}

export function testServerUrl(): string {
  return process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
}
