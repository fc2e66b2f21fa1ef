import { Controller, Get, Module } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/db.js';
import { json } from '../../../test/support/http.js';
import { Public } from './auth/policy.js';
import { startServer } from './bootstrap.js';
import { loadConfig } from './config/config.js';

// A route that takes a while, mounted only in this test, to have a request truly in flight
// when shutdown begins.
@Public()
@Controller('test-slow')
class SlowController {
  @Get()
  async slow(): Promise<{ done: true }> {
    await new Promise((r) => setTimeout(r, 700));
    return { done: true };
  }
}

@Module({ controllers: [SlowController] })
class SlowModule {}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('cloud_shutdown');
});
afterAll(async () => {
  await db?.drop();
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, refuses new connections, then closes', async () => {
    const server = await startServer(
      loadConfig({ DATABASE_URL: db.url, KEYSTAGE_SECRET: 'k'.repeat(40), PORT: '0', LOG_LEVEL: 'silent' }),
      { imports: [SlowModule] },
    );
    const inFlight = fetch(`${server.url}/test-slow`);
    await new Promise((r) => setTimeout(r, 200)); // the request has reached the handler
    let stopped = false;
    const stopping = server.stop().then(() => {
      stopped = true;
    });
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ done: true });
    await stopping;
    expect(stopped).toBe(true);
    await expect(fetch(`${server.url}/health/live`)).rejects.toThrow();
  });
});
