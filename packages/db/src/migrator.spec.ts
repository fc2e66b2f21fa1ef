import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../../../test/support/db.js';
import {
  applyMigrations,
  createMigration,
  diffMigrationsToSchema,
  dropDatabase,
  ensureDatabase,
  listMigrations,
  MigrationFailedError,
  migrationSlug,
  migrationStatus,
  withDatabase,
} from './migrator.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const realSchema = join(repoRoot, 'prisma/schema.prisma');
const realMigrations = join(repoRoot, 'prisma/migrations');
const cliPath = join(repoRoot, 'packages/db/dist/cli.js');
const serverUrl = inject('keystageTestServerUrl');
/** For direct queries: the server's maintenance database (the one in serverUrl may not exist). */
const adminUrl = withDatabase(serverUrl, 'postgres');

const HEADER = `generator client {
  provider = "prisma-client"
  output   = "./generated"
}

datasource db {
  provider = "postgresql"
}
`;

const WIDGETS = `
model Widget {
  id        String   @id @default(uuid()) @db.Uuid
  name      String   @db.VarChar(100)
  createdAt DateTime @default(now()) @map("created_at") @db.Timestamptz(3)

  @@map("widgets")
}
`;

const WIDGETS_WITH_COLOR = WIDGETS.replace(
  'name      String   @db.VarChar(100)',
  'name      String   @db.VarChar(100)\n  color     String?  @db.VarChar(20)',
);

let workDir: string;
const databases: string[] = [];

function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

function databaseUrl(prefix: string): string {
  const url = withDatabase(serverUrl, uniqueName(prefix));
  databases.push(url);
  return url;
}

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function writeSchema(name: string, models: string): Promise<string> {
  const path = join(workDir, name);
  await writeFile(path, HEADER + models, 'utf8');
  return path;
}

/** A migrations folder holding one migration that creates `widgets`. */
async function widgetMigrations(): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'migrations-'));
  const folder = await createMigration({
    databaseUrl: serverUrl,
    schemaPath: await writeSchema('widgets.prisma', WIDGETS),
    migrationsDir: dir,
    name: 'init',
  });
  expect(folder).not.toBeNull();
  return dir;
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'keystage-migrator-'));
});

afterAll(async () => {
  for (const url of databases) await dropDatabase(url);
  await rm(workDir, { recursive: true, force: true });
});

describe('applyMigrations', () => {
  it('creates the database and the schema, then does nothing the second time', async () => {
    const migrationsDir = await widgetMigrations();
    const [migration] = await listMigrations(migrationsDir);
    const url = databaseUrl('ks_apply');

    expect(await applyMigrations({ databaseUrl: url, migrationsDir })).toEqual([migration]);

    const tables = await query<{ table_name: string }>(
      url,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(['_prisma_migrations', 'widgets']);
    const history = await query<{ migration_name: string; finished_at: Date | null }>(
      url,
      'SELECT migration_name, finished_at FROM _prisma_migrations',
    );
    expect(history).toHaveLength(1);
    expect(history[0]?.migration_name).toBe(migration);
    expect(history[0]?.finished_at).toBeInstanceOf(Date);

    expect(await applyMigrations({ databaseUrl: url, migrationsDir })).toEqual([]);
    expect(await query(url, 'SELECT 1 FROM _prisma_migrations')).toHaveLength(1);

    const status = await migrationStatus({ databaseUrl: url, migrationsDir });
    expect(status).toMatchObject({ databaseExists: true, upToDate: true, pending: [], failed: [] });
  });

  it('reports pending migrations without creating the database', async () => {
    const migrationsDir = await widgetMigrations();
    const url = databaseUrl('ks_status');
    const status = await migrationStatus({ databaseUrl: url, migrationsDir });
    expect(status.databaseExists).toBe(false);
    expect(status.upToDate).toBe(false);
    expect(status.pending).toEqual(await listMigrations(migrationsDir));
    expect(
      await query(adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [new URL(url).pathname.slice(1)]),
    ).toEqual([]);
  });

  it('names the migration that failed and records it as failed', async () => {
    const migrationsDir = await widgetMigrations();
    const broken = join(migrationsDir, '29990101000000_broken');
    await mkdir(broken);
    await writeFile(join(broken, 'migration.sql'), 'ALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n');
    const url = databaseUrl('ks_failed');

    const error = await applyMigrations({ databaseUrl: url, migrationsDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect((error as Error).message).toContain('29990101000000_broken');
    expect((error as Error).message).not.toContain('\n');

    const status = await migrationStatus({ databaseUrl: url, migrationsDir });
    expect(status.failed).toEqual(['29990101000000_broken']);
  });
});

describe('createMigration', () => {
  it('writes a migration holding the schema change, in a copy of the migrations folder', async () => {
    const original = await widgetMigrations();
    const copy = join(workDir, 'copy-with-color');
    await cp(original, copy, { recursive: true });
    const before = await listMigrations(copy);

    const folder = await createMigration({
      databaseUrl: serverUrl,
      schemaPath: await writeSchema('with-color.prisma', WIDGETS_WITH_COLOR),
      migrationsDir: copy,
      name: 'Add widget color',
    });

    expect(folder).not.toBeNull();
    const after = await listMigrations(copy);
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatch(/^\d{14}_add_widget_color$/);
    expect(join(copy, after.at(-1)!)).toBe(folder);
    expect(after.at(-1)! > before.at(-1)!).toBe(true);
    const sql = await readFile(join(folder!, 'migration.sql'), 'utf8');
    expect(sql).toContain('ALTER TABLE "widgets" ADD COLUMN     "color" VARCHAR(20)');
    expect(sql).not.toContain('CREATE TABLE');
    expect(await readFile(join(copy, 'migration_lock.toml'), 'utf8')).toContain('provider = "postgresql"');
    // The original folder is untouched.
    expect(await listMigrations(original)).toEqual(before);

    // The new folder applies on top of the old ones.
    const url = databaseUrl('ks_color');
    expect(await applyMigrations({ databaseUrl: url, migrationsDir: copy })).toEqual(after);
    const columns = await query<{ column_name: string }>(
      url,
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'widgets' ORDER BY ordinal_position`,
    );
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'name', 'created_at', 'color']);
  });

  it('creates nothing when the schema has not changed', async () => {
    const migrationsDir = await widgetMigrations();
    const before = await readdir(migrationsDir, { recursive: true });
    const folder = await createMigration({
      databaseUrl: serverUrl,
      schemaPath: await writeSchema('same.prisma', WIDGETS),
      migrationsDir,
      name: 'nothing',
    });
    expect(folder).toBeNull();
    expect(await readdir(migrationsDir, { recursive: true })).toEqual(before);
  });

  it('starts a migrations folder from nothing, and leaves no shadow database behind', async () => {
    const url = databaseUrl('ks_shadow');
    await ensureDatabase(url);
    const migrationsDir = join(workDir, 'fresh', 'migrations');
    const folder = await createMigration({
      databaseUrl: url,
      schemaPath: await writeSchema('fresh.prisma', WIDGETS),
      migrationsDir,
      name: 'init',
    });
    expect(folder).not.toBeNull();
    expect(await readFile(join(folder!, 'migration.sql'), 'utf8')).toContain('CREATE TABLE "widgets"');
    expect(existsSync(join(migrationsDir, 'migration_lock.toml'))).toBe(true);
    // The shadow database is named after the target one; the target itself is left empty.
    const name = new URL(url).pathname.slice(1);
    const leftovers = await query(adminUrl, 'SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `${name}_shadow_%`,
    ]);
    expect(leftovers).toEqual([]);
    expect(await query(url, `SELECT 1 FROM information_schema.tables WHERE table_schema = 'public'`)).toEqual(
      [],
    );
  });

  it('turns names into folder names the way prisma migrate dev does', () => {
    expect(migrationSlug('init')).toBe('init');
    expect(migrationSlug('Add userRoles!')).toBe('add_user_roles');
    expect(migrationSlug('  --  ')).toBe('');
  });
});

describe('the real prisma/migrations folder', () => {
  it('exists and agrees with prisma/schema.prisma', async () => {
    const migrations = await listMigrations(realMigrations);
    expect(
      migrations.length,
      'prisma/migrations has no migration yet: create the initial one with `pnpm db:migration:create init`',
    ).toBeGreaterThan(0);
    expect(await readFile(join(realMigrations, 'migration_lock.toml'), 'utf8')).toContain(
      'provider = "postgresql"',
    );
    const sql = await diffMigrationsToSchema({
      databaseUrl: serverUrl,
      schemaPath: realSchema,
      migrationsDir: realMigrations,
    });
    expect(
      sql,
      'prisma/schema.prisma has changes that no migration holds: run `pnpm db:migration:create <name>`',
    ).toBe('');
  });

  it('is fully applied in the test template database (copied by createTestDatabase)', async () => {
    const db = await createTestDatabase('ks_template_check');
    try {
      const status = await migrationStatus({ databaseUrl: db.url, migrationsDir: realMigrations });
      expect(status.databaseExists).toBe(true);
      expect(status.pending).toEqual([]);
      expect(status.upToDate).toBe(true);
      expect(await applyMigrations({ databaseUrl: db.url, migrationsDir: realMigrations })).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});

describe('cli', () => {
  function runCli(args: string[], env: Record<string, string>) {
    expect(existsSync(cliPath), `${cliPath} is missing: run \`pnpm --filter @keystage/db run build\``).toBe(
      true,
    );
    const result = spawnSync(process.execPath, [cliPath, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  function expectOneLineError(result: { status: number | null; stdout: string; stderr: string }): string {
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at |Error:|node:internal/);
    expect(result.stdout).toBe('');
    return lines[0]!;
  }

  it('reports an unreachable server in one line, naming DATABASE_URL', () => {
    const line = expectOneLineError(
      runCli(['deploy'], { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/keystage' }),
    );
    expect(line).toBe('cannot reach PostgreSQL at 127.0.0.1:1 (DATABASE_URL): connection refused');
  });

  it('reports a malformed URL in one line, naming DATABASE_URL', () => {
    for (const url of ['not a url', 'mysql://root@127.0.0.1/keystage', 'postgresql://127.0.0.1:5432/']) {
      const line = expectOneLineError(runCli(['deploy'], { DATABASE_URL: url }));
      expect(line).toMatch(/^DATABASE_URL is not a valid PostgreSQL URL/);
      expect(line).not.toContain(url);
    }
    const status = expectOneLineError(runCli(['status'], { DATABASE_URL: 'http://x' }));
    expect(status).toMatch(/^DATABASE_URL is not a valid PostgreSQL URL/);
  });

  it('deploys, then says the database is up to date; create without changes creates nothing', async () => {
    const migrationsDir = await widgetMigrations();
    const url = databaseUrl('ks_cli');
    const env = { DATABASE_URL: url };

    const first = runCli(['deploy', '--migrations', migrationsDir], env);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('Applied 1 migration');
    expect(first.stdout).toContain((await listMigrations(migrationsDir))[0]);

    const second = runCli(['deploy', '--migrations', migrationsDir], env);
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/^Database is up to date/);

    const before = await readdir(migrationsDir, { recursive: true });
    const create = runCli(
      ['create', 'nothing', '--migrations', migrationsDir, '--schema', join(workDir, 'widgets.prisma')],
      env,
    );
    expect(create.status).toBe(0);
    expect(create.stdout).toMatch(/^No schema changes/);
    expect(await readdir(migrationsDir, { recursive: true })).toEqual(before);
  });
});
