import { resolve } from 'node:path';
import { createDatabase, dropDatabase, withDatabase } from '@keystage/db/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { killAll, STACK_LINE, spawnProcess, uniquePrefix } from './support/process.js';

// The built control plane as a real process: what an operator sees on bad configuration,
// and a clean start/stop. Run after `pnpm build` (the README's test command does it).
const MAIN = resolve(import.meta.dirname, '../apps/cloud/dist/main.js');
const SECRET = 'process-test-secret-'.padEnd(48, 'x');

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('cloud_proc');
});
afterAll(async () => {
  killAll();
  await db?.drop();
});

async function failsWith(env: Record<string, string>, pattern: RegExp) {
  const p = spawnProcess([MAIN], {
    LOG_LEVEL: 'silent',
    PORT: '0',
    REDIS_PREFIX: uniquePrefix('proc'),
    ...env,
  });
  const { code } = await p.exited();
  const lines = p.output().trim().split('\n');
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(p.output()).not.toMatch(STACK_LINE);
}

describe('control plane process: bad configuration', () => {
  it('missing secret → one line naming KEYSTAGE_SECRET', async () => {
    await failsWith(
      { DATABASE_URL: db.url },
      /^keystage: invalid configuration: KEYSTAGE_SECRET is required/,
    );
  });

  it('malformed database URL → one line naming DATABASE_URL', async () => {
    await failsWith(
      { DATABASE_URL: 'postgres//oops', KEYSTAGE_SECRET: SECRET },
      /DATABASE_URL must be a PostgreSQL URL/,
    );
  });

  it('unreachable database → one line naming DATABASE_URL and the endpoint', async () => {
    await failsWith(
      { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/keystage', KEYSTAGE_SECRET: SECRET },
      /^keystage: cannot reach PostgreSQL at 127\.0\.0\.1:1 \(DATABASE_URL\): .*ECONNREFUSED/,
    );
  });

  it('unreachable Redis → one line naming REDIS_URL', async () => {
    await failsWith(
      { DATABASE_URL: db.url, REDIS_URL: 'redis://127.0.0.1:1', KEYSTAGE_SECRET: SECRET },
      /^keystage: cannot reach Redis at 127\.0\.0\.1:1 \(REDIS_URL\)/,
    );
  });

  it('a database without the schema → tells the operator to migrate', async () => {
    const emptyUrl = withDatabase(db.url, `${new URL(db.url).pathname.slice(1)}_empty`);
    await createDatabase(emptyUrl, { replace: true });
    try {
      await failsWith(
        { DATABASE_URL: emptyUrl, KEYSTAGE_SECRET: SECRET },
        /has no Keystage schema: run `pnpm db:migrate`/,
      );
    } finally {
      await dropDatabase(emptyUrl);
    }
  });
});

describe('control plane process: start and stop', () => {
  it('serves /health/ready and stops cleanly on SIGINT', async () => {
    const p = spawnProcess([MAIN], {
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: SECRET,
      PORT: '0',
      LOG_LEVEL: 'warn',
      REDIS_PREFIX: uniquePrefix('proc'),
    });
    const [, url] = await p.waitFor(/listening on (http:\/\/\S+)/);
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(200);
    const started = Date.now();
    p.child.kill('SIGINT');
    const { code } = await p.exited(15_000);
    expect(code).toBe(0);
    expect(p.output()).toMatch(/keystage: stopped/);
    expect(p.output()).not.toMatch(STACK_LINE);
    // Recorded for the reader, not asserted: timing belongs to benchmarks.
    console.warn(`control plane stopped ${Date.now() - started} ms after SIGINT`);
  });
});
