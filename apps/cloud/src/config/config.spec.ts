import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const good = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/keystage',
  KEYSTAGE_SECRET: 'x'.repeat(40),
};

function problems(env: Record<string, string | undefined>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults: all roles, port 3000, local Redis', () => {
    const c = loadConfig(good);
    expect([...c.roles]).toEqual(['api', 'gateway', 'worker']);
    expect(c.port).toBe(3000);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.shutdownTimeoutMs).toBe(10_000);
  });

  it('names a missing required variable', () => {
    expect(problems({ DATABASE_URL: good.DATABASE_URL })).toMatch(/KEYSTAGE_SECRET is required but not set/);
    expect(problems({ KEYSTAGE_SECRET: good.KEYSTAGE_SECRET })).toMatch(
      /DATABASE_URL is required but not set/,
    );
  });

  it('treats an empty variable as unset', () => {
    expect(problems({ ...good, KEYSTAGE_SECRET: '' })).toMatch(/KEYSTAGE_SECRET is required/);
  });

  it('names malformed values and says what is expected', () => {
    expect(problems({ ...good, DATABASE_URL: 'not a url' })).toMatch(/DATABASE_URL must be a PostgreSQL URL/);
    expect(problems({ ...good, DATABASE_URL: 'mysql://root@localhost/x' })).toMatch(/DATABASE_URL must be/);
    expect(problems({ ...good, REDIS_URL: 'http://x' })).toMatch(/REDIS_URL must be a Redis URL/);
    expect(problems({ ...good, PORT: 'eighty' })).toMatch(/^invalid configuration: PORT /);
    expect(problems({ ...good, PORT: '70000' })).toMatch(/PORT/);
    expect(problems({ ...good, KEYSTAGE_SECRET: 'short' })).toMatch(/KEYSTAGE_SECRET must be at least 32/);
    expect(problems({ ...good, KEYSTAGE_ROLES: 'api,cron' })).toMatch(/KEYSTAGE_ROLES .*unknown: cron/);
  });

  it('reports every problem at once', () => {
    const msg = problems({ DATABASE_URL: 'nope', PORT: '-1' });
    expect(msg).toMatch(/DATABASE_URL/);
    expect(msg).toMatch(/PORT/);
    expect(msg).toMatch(/KEYSTAGE_SECRET/);
  });

  it('selects roles', () => {
    expect([...loadConfig({ ...good, KEYSTAGE_ROLES: 'worker, api,worker' }).roles]).toEqual([
      'worker',
      'api',
    ]);
  });

  it('reads secrets from *_FILE and refuses both forms at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ks-config-'));
    const file = join(dir, 'secret');
    writeFileSync(file, `${'s'.repeat(48)}\n`);
    const c = loadConfig({ DATABASE_URL: good.DATABASE_URL, KEYSTAGE_SECRET_FILE: file });
    expect(c.secret).toBe('s'.repeat(48));
    expect(problems({ ...good, KEYSTAGE_SECRET_FILE: file })).toMatch(
      /KEYSTAGE_SECRET and KEYSTAGE_SECRET_FILE/,
    );
    expect(problems({ DATABASE_URL: good.DATABASE_URL, KEYSTAGE_SECRET_FILE: join(dir, 'none') })).toMatch(
      /KEYSTAGE_SECRET_FILE: cannot read .* \(ENOENT\)/,
    );
  });

  it('never echoes a secret value in its message', () => {
    const msg = problems({
      ...good,
      DATABASE_URL: 'postgresql://user:hunter2hunter2@',
      KEYSTAGE_SECRET: 'hunter2',
    });
    expect(msg).not.toMatch(/hunter2/);
  });
});
