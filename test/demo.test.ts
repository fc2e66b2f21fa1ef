import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dropDatabase, withDatabase } from '@keystage/db/migrator';
import { afterAll, describe, expect, it } from 'vitest';
import { json } from './support/http.js';
import { killAll, STACK_LINE, spawnProcess, uniquePrefix } from './support/process.js';

// `pnpm demo` is `pnpm build && node apps/cloud/dist/demo.js`; this runs the second half as a real
// process against a database that does not exist yet, as on a fresh machine.
const DEMO = resolve(import.meta.dirname, '../apps/cloud/dist/demo.js');
const serverUrl = process.env.KEYSTAGE_TEST_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseUrl = withDatabase(serverUrl, `keystage_demo_test_${process.pid}`);
const misPath = join(mkdtempSync(join(tmpdir(), 'ks-demo-')), 'school.sqlite');

afterAll(async () => {
  killAll();
  await dropDatabase(databaseUrl);
});

describe('pnpm demo', () => {
  it('migrates a fresh database, serves, answers /health/ready, and stops on Ctrl+C', async () => {
    const env = {
      DATABASE_URL: databaseUrl,
      PORT: '0',
      KEYSTAGE_SECRET: 'demo-test-'.padEnd(40, 'x'),
      REDIS_PREFIX: uniquePrefix('demo'),
      DEMO_MIS_PATH: misPath,
      DEMO_MIS_PRESET: 'tiny',
      DEMO_STATE_DIR: join(mkdtempSync(join(tmpdir(), 'ks-demo-state-')), 'state'),
      DEMO_OUTPUT_DIR: join(mkdtempSync(join(tmpdir(), 'ks-demo-out-')), 'out'),
      OBJECT_STORE_DIR: join(mkdtempSync(join(tmpdir(), 'ks-demo-obj-')), 'objects'),
    };
    const first = spawnProcess([DEMO], env);
    await first.waitFor(/applied \d+ migration\(s\): \d+_init/, 60_000);
    await first.waitFor(/generating the demo MIS \(tiny\)/, 60_000);
    const [, url] = await first.waitFor(/control plane\s+(http:\/\/\S+)/, 60_000);
    await first.waitFor(/demo school\s+.+\(URN \d{6}, id [0-9a-f-]{36}\)/);
    const [, email, password] = await first.waitFor(/support login\s+(\S+) \/ (\S+)/);
    const login = await fetch(`${url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    expect(login.status).toBe(200);
    await first.waitFor(/demo partner\s+Demo Partner Ltd .*: 10 library extracts, approved by the school/);
    await first.waitFor(/API docs\s+http:\/\/\S+\/api\/docs/);
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(200);
    expect((await json(res)).status).toBe('ready');
    first.child.kill('SIGINT');
    expect((await first.exited(15_000)).code).toBe(0);
    expect(first.output()).not.toMatch(STACK_LINE);

    // A second start finds the database up to date.
    const second = spawnProcess([DEMO], env);
    await second.waitFor(/database is up to date/, 60_000);
    await second.waitFor(/demo MIS: .+ \(kept;/, 60_000);
    await second.waitFor(/control plane\s+http/, 60_000);
    second.child.kill('SIGINT');
    expect((await second.exited(15_000)).code).toBe(0);

    // Another secret (another checkout's .keystage/demo-secret) cannot open the stored keys: the
    // control plane refuses to start and says why, instead of failing every enrolment later.
    const other = spawnProcess([DEMO], { ...env, KEYSTAGE_SECRET: 'another-secret-'.padEnd(40, 'y') });
    const refused = await other.exited(60_000);
    expect(refused.code).toBe(1);
    expect(other.output()).toMatch(
      /KEYSTAGE_SECRET is not the secret this database's (job-signing|result-wrapping) key was stored with/,
    );
    expect(other.output()).not.toMatch(STACK_LINE);
  }, 150_000);
});
