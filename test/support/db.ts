import { inject } from 'vitest';
import { DEFAULT_DATABASE_URL } from '../../packages/db/src/migrator.js';
import {
  createDatabaseFromTemplate,
  TEST_TEMPLATE_DATABASE,
  type TestDatabase,
} from '../../packages/db/src/testing.js';

export type { TestDatabase } from '../../packages/db/src/testing.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of the template database holding every migration (see test/support/db.ts). */
    keystageTemplateDatabase: string;
    /** URL of the PostgreSQL server the tests use (its database part is not meaningful). */
    keystageTestServerUrl: string;
  }
}

/**
 * A fresh database with every migration applied, copied from the template that
 * ./global-setup.ts builds once per run (`CREATE DATABASE x TEMPLATE keystage_test_template`: fast).
 * Named `<prefix>_<time>_<random>`; call `drop()` when done (e.g. in afterAll).
 *
 * @example
 *   let db: TestDatabase;
 *   beforeAll(async () => { db = await createTestDatabase('runs_repo'); });
 *   afterAll(() => db.drop());
 */
export function createTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  return createDatabaseFromTemplate({
    serverUrl: provided('keystageTestServerUrl', 'KEYSTAGE_TEST_SERVER_URL') ?? DEFAULT_DATABASE_URL,
    template: provided('keystageTemplateDatabase', 'KEYSTAGE_TEST_TEMPLATE_DB') ?? TEST_TEMPLATE_DATABASE,
    prefix,
  });
}

function provided(
  key: 'keystageTestServerUrl' | 'keystageTemplateDatabase',
  variable: string,
): string | undefined {
  try {
    const value = inject(key);
    if (value) return value;
  } catch {
    // not inside a vitest worker
  }
  return process.env[variable] || undefined;
}
