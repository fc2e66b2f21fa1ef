/**
 * Database migrations for Keystage, without Prisma's native engines.
 *
 * Same on-disk format as `prisma migrate`: `<migrationsDir>/<timestamp>_<name>/migration.sql`
 * plus `migration_lock.toml`, and the same `_prisma_migrations` history table, so a machine that
 * can run the Prisma CLI may use `prisma migrate deploy` on the same folder and database.
 * The work is done by Prisma's WebAssembly schema engine (see ./wasm-engine.ts).
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { MigrationList, SchemaContainer, SchemaFilter } from '@prisma/schema-engine-wasm';
import { type ParsedDatabaseUrl, parseDatabaseUrl, quoteIdentifier, withDatabase } from './database-url.js';
import {
  DatabaseConnectionError,
  MigrationFailedError,
  MigrationFilesError,
  SchemaEngineError,
} from './errors.js';
import { connectClient, oneLine, withAdminClient, withSchemaEngine } from './wasm-engine.js';

export {
  DEFAULT_DATABASE_URL,
  type ParsedDatabaseUrl,
  parseDatabaseUrl,
  withDatabase,
} from './database-url.js';
export * from './errors.js';

const LOCKFILE = 'migration_lock.toml';
const MIGRATION_FILE = 'migration.sql';
const NO_FILTER: SchemaFilter = { externalTables: [], externalEnums: [] };

export interface DatabaseOptions {
  /** PostgreSQL URL of the database to migrate, e.g. `postgresql://postgres@127.0.0.1:5432/keystage`. */
  databaseUrl: string;
}

export interface MigrationsOptions extends DatabaseOptions {
  /** The migrations folder, e.g. `<repo>/prisma/migrations`. A missing folder means "no migrations". */
  migrationsDir: string;
  /** Receives the schema engine's log lines (JSON strings), for debugging. */
  onEngineLog?: (line: string) => void;
}

export interface SchemaOptions extends MigrationsOptions {
  /** A `.prisma` file, or a folder whose `.prisma` files (recursively) form the schema. */
  schemaPath: string;
}

export interface ApplyMigrationsOptions extends MigrationsOptions {
  /** Create the database when it does not exist (default true). */
  createDatabase?: boolean;
}

export interface CreateMigrationOptions extends SchemaOptions {
  /** The migration's name; the folder becomes `<timestamp>_<name>`. */
  name: string;
}

export interface MigrationStatus {
  /** False when the database itself does not exist (nothing is applied then). */
  databaseExists: boolean;
  /** Whether the `_prisma_migrations` table exists. */
  hasMigrationsTable: boolean;
  /** Migration folder names found on disk, in order. */
  localMigrations: string[];
  /** On disk, not yet applied to the database. */
  pending: string[];
  /** Recorded as applied in the database but missing from the folder. */
  unknownInDatabase: string[];
  /** Recorded as failed in the database (a failed migration blocks deploys until resolved). */
  failed: string[];
  /** Applied, but the file on disk changed since (checksum mismatch). */
  edited: string[];
  /** True when nothing is pending, unknown, failed or edited. */
  upToDate: boolean;
}

// ---------------------------------------------------------------------------------------------

/**
 * Applies every migration of `migrationsDir` that the database has not recorded yet, like
 * `prisma migrate deploy`. Creates the database first when it does not exist (unless
 * `createDatabase: false`). Returns the names of the migrations just applied, in order: empty when
 * the database was already up to date.
 */
export async function applyMigrations(options: ApplyMigrationsOptions): Promise<string[]> {
  const target = parseDatabaseUrl(options.databaseUrl);
  if (options.createDatabase ?? true) await ensureDatabaseExists(target);
  else await checkConnection(target);
  const migrationsList = await readMigrationsList(options.migrationsDir);
  try {
    const output = await withSchemaEngine(target, { onLog: options.onEngineLog }, (engine) =>
      engine.applyMigrations({ migrationsList, filters: NO_FILTER }),
    );
    return output.appliedMigrationNames;
  } catch (error) {
    throw await nameFailedMigration(target, error);
  }
}

/**
 * The engine reports a failing migration's SQL error without saying which migration it was; the
 * history table knows (a started, unfinished, not rolled back row).
 */
async function nameFailedMigration(target: ParsedDatabaseUrl, error: unknown): Promise<unknown> {
  if (!(error instanceof SchemaEngineError)) return error;
  let failed: string | undefined;
  try {
    const client = await connectClient(target);
    try {
      const result = await client.query<{ migration_name: string }>(
        `SELECT migration_name FROM _prisma_migrations
          WHERE finished_at IS NULL AND rolled_back_at IS NULL
          ORDER BY started_at DESC LIMIT 1`,
      );
      failed = result.rows[0]?.migration_name;
    } finally {
      await client.end().catch(() => {});
    }
  } catch {
    return error;
  }
  if (!failed || error.message.includes(failed)) return error;
  const reason = error.message.replace(/^external connector error:?\s*/i, '');
  return new MigrationFailedError(
    `migration ${failed} failed: ${reason} (it is recorded as failed: fix the database, then record it with resolve --rolled-back or --applied)`,
    { cause: error },
  );
}

/**
 * Writes a new migration `<migrationsDir>/<timestamp>_<name>/migration.sql` holding the SQL that
 * takes a database from "all migrations applied" to `schemaPath`, like
 * `prisma migrate dev --create-only`. Returns the new folder's path, or null (and writes nothing)
 * when the migrations already match the schema. Also writes `migration_lock.toml`.
 *
 * The database itself is not changed (it need not even exist): `databaseUrl` names the PostgreSQL
 * server on which a temporary shadow database replays the existing migrations.
 */
export async function createMigration(options: CreateMigrationOptions): Promise<string | null> {
  const slug = migrationSlug(options.name);
  if (!slug) throw new MigrationFilesError(`"${options.name}" is not a usable migration name`);
  const migrationsDir = resolve(options.migrationsDir);
  // The wasm engine's own createMigration() cannot use an external shadow database ("PostgreSQL
  // shadow DB must be provided through an external factory"), so do what it does: diff
  // "all migrations applied" against the schema, and write the script ourselves.
  const script = await diffMigrationsToSchema({ ...options, migrationsDir });
  if (!script) return null;

  const existing = await listMigrations(migrationsDir);
  const folder = join(migrationsDir, `${nextTimestamp(existing)}_${slug}`);
  try {
    await mkdir(migrationsDir, { recursive: true });
    await mkdir(folder); // fails if it exists: never overwrite a migration
    await writeFile(join(folder, MIGRATION_FILE), `${script}\n`, 'utf8');
    if (!(await readFile(join(migrationsDir, LOCKFILE), 'utf8').catch(() => null))) {
      await writeFile(join(migrationsDir, LOCKFILE), lockfileText('postgresql'), 'utf8');
    }
  } catch (error) {
    throw new MigrationFilesError(`cannot write the migration ${folder}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
  return folder;
}

/**
 * The folder-name part of a migration name, as `prisma migrate dev --name` makes it: lower case,
 * words joined by `_` ("Add userRoles!" becomes "add_user_roles"), at most 200 characters.
 */
export function migrationSlug(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 200);
}

/** `YYYYMMDDHHMMSS` (UTC) like Prisma, but always later than the last existing migration. */
function nextTimestamp(existing: string[]): string {
  const format = (date: Date) => date.toISOString().replace(/\D/g, '').slice(0, 14);
  let stamp = format(new Date());
  const last = existing
    .map((name) => /^(\d{14})_/.exec(name)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort()
    .at(-1);
  if (last && stamp <= last) {
    const date = new Date(
      Date.UTC(
        +last.slice(0, 4),
        +last.slice(4, 6) - 1,
        +last.slice(6, 8),
        +last.slice(8, 10),
        +last.slice(10, 12),
        +last.slice(12, 14) + 1,
      ),
    );
    stamp = format(date);
  }
  return stamp;
}

/**
 * Compares the database's migration history with `migrationsDir`, like `prisma migrate status`.
 * Read-only: does not create the database nor the history table.
 */
export async function migrationStatus(options: MigrationsOptions): Promise<MigrationStatus> {
  const target = parseDatabaseUrl(options.databaseUrl);
  const migrationsList = await readMigrationsList(options.migrationsDir);
  const localMigrations = migrationsList.migrationDirectories.map((d) => d.path);
  try {
    await checkConnection(target);
  } catch (error) {
    if (error instanceof DatabaseConnectionError && error.code === 'DATABASE_MISSING') {
      return summarize(false, false, localMigrations, localMigrations, [], [], []);
    }
    throw error;
  }
  const diagnosis = await withSchemaEngine(target, { onLog: options.onEngineLog }, (engine) =>
    engine.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters: NO_FILTER }),
  );
  const history = diagnosis.history;
  const pending =
    history && history.diagnostic !== 'migrationsDirectoryIsBehind' ? history.unappliedMigrationNames : [];
  const unknown =
    history && history.diagnostic !== 'databaseIsBehind' ? history.unpersistedMigrationNames : [];
  return summarize(
    true,
    diagnosis.hasMigrationsTable,
    localMigrations,
    pending,
    unknown,
    diagnosis.failedMigrationNames,
    diagnosis.editedMigrationNames,
  );
}

/**
 * The SQL that would take a database with every migration of `migrationsDir` applied to the
 * schema at `schemaPath`: an empty string when the migrations and the schema agree. The migrations
 * are replayed in a temporary shadow database on the server of `databaseUrl`.
 */
export async function diffMigrationsToSchema(options: SchemaOptions): Promise<string> {
  const target = await serverTarget(parseDatabaseUrl(options.databaseUrl));
  const files = await readSchemaFiles(options.schemaPath);
  const migrationsList = await readMigrationsList(options.migrationsDir);
  const result = await withSchemaEngine(target, { onLog: options.onEngineLog }, (engine) =>
    engine.diff({
      from: { tag: 'migrations', ...migrationsList },
      to: { tag: 'schemaDatamodel', files },
      script: true,
      exitCode: null,
      filters: NO_FILTER,
    }),
  );
  return normalizeScript(result.stdout ?? '');
}

export interface ResolveMigrationOptions extends MigrationsOptions {
  /** The migration folder name, e.g. `20250101120000_init`. */
  name: string;
}

/**
 * Records a failed migration as rolled back (after fixing the database by hand), so that deploys
 * may run again, like `prisma migrate resolve --rolled-back <name>`.
 */
export async function markMigrationRolledBack(options: ResolveMigrationOptions): Promise<void> {
  const target = parseDatabaseUrl(options.databaseUrl);
  await checkConnection(target);
  await withSchemaEngine(target, { onLog: options.onEngineLog }, (engine) =>
    engine.markMigrationRolledBack({ migrationName: options.name }),
  );
}

/**
 * Records a migration as applied without running it (its changes were made by hand), like
 * `prisma migrate resolve --applied <name>`.
 */
export async function markMigrationApplied(options: ResolveMigrationOptions): Promise<void> {
  const target = parseDatabaseUrl(options.databaseUrl);
  await checkConnection(target);
  const migrationsList = await readMigrationsList(options.migrationsDir);
  await withSchemaEngine(target, { onLog: options.onEngineLog }, (engine) =>
    engine.markMigrationApplied({ migrationName: options.name, migrationsList }),
  );
}

// ---------------------------------------------------------------------------------------------
// Databases (also used by the test support code).

/** Creates the database of `databaseUrl` when it does not exist. Returns true if it created it. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  return ensureDatabaseExists(parseDatabaseUrl(databaseUrl));
}

/**
 * Creates the database of `databaseUrl`, optionally as a copy of `template` (fast: PostgreSQL
 * copies the files). Fails if it exists, unless `replace` is set (then it is dropped first).
 */
export async function createDatabase(
  databaseUrl: string,
  options: { template?: string; replace?: boolean } = {},
): Promise<void> {
  const target = parseDatabaseUrl(databaseUrl);
  await withAdminClient(target, async (client) => {
    if (options.replace) {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(target.database)} WITH (FORCE)`);
    }
    const template = options.template ? ` TEMPLATE ${quoteIdentifier(options.template)}` : '';
    await client.query(`CREATE DATABASE ${quoteIdentifier(target.database)}${template}`);
  });
}

/** Drops the database of `databaseUrl` if it exists, closing other sessions (WITH (FORCE)). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const target = parseDatabaseUrl(databaseUrl);
  await withAdminClient(target, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(target.database)} WITH (FORCE)`),
  );
}

/** Names of the migration folders in `migrationsDir`, in the order they apply. */
export async function listMigrations(migrationsDir: string): Promise<string[]> {
  return (await readMigrationsList(migrationsDir)).migrationDirectories.map((d) => d.path);
}

async function ensureDatabaseExists(target: ParsedDatabaseUrl): Promise<boolean> {
  try {
    await checkConnection(target);
    return false;
  } catch (error) {
    if (!(error instanceof DatabaseConnectionError) || error.code !== 'DATABASE_MISSING') throw error;
  }
  return withAdminClient(target, async (client) => {
    try {
      await client.query(`CREATE DATABASE ${quoteIdentifier(target.database)}`);
      return true;
    } catch (error) {
      // Someone else created it in the meantime.
      if ((error as { code?: string }).code === '42P04') return false;
      throw new DatabaseConnectionError(
        'CONNECTION_FAILED',
        target.server,
        target.database,
        `cannot create the database: ${oneLine((error as Error).message)}`,
        { cause: error },
      );
    }
  });
}

/** Fails with a clear {@link DatabaseConnectionError} unless the database accepts a connection. */
async function checkConnection(target: ParsedDatabaseUrl): Promise<void> {
  const client = await connectClient(target);
  await client.end().catch(() => {});
}

/**
 * For operations that only need the server (the shadow database does the work): the engine still
 * opens its main connection at start-up, so when the target database does not exist, point that
 * connection at the maintenance database instead. Fails unless the server is reachable.
 */
async function serverTarget(target: ParsedDatabaseUrl): Promise<ParsedDatabaseUrl> {
  try {
    await checkConnection(target);
    return target;
  } catch (error) {
    if (!(error instanceof DatabaseConnectionError) || error.code !== 'DATABASE_MISSING') throw error;
  }
  const database = await withAdminClient(target, async (client) => client.database ?? 'postgres');
  return parseDatabaseUrl(withDatabase(target.url, database));
}

// ---------------------------------------------------------------------------------------------
// Files.

/** Reads the migrations folder the way the Prisma CLI does (a missing folder is an empty list). */
async function readMigrationsList(migrationsDir: string): Promise<MigrationList> {
  const baseDir = resolve(migrationsDir);
  const lockfileContent = await readFile(join(baseDir, LOCKFILE), 'utf8').catch(() => null);
  let entries: Array<{ name: string; isDirectory(): boolean }> = [];
  try {
    entries = await readdir(baseDir, { withFileTypes: true });
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') {
      throw new MigrationFilesError(
        `cannot read the migrations folder ${baseDir}: ${describeFsError(error)}`,
        { cause: error },
      );
    }
  }
  const directories = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b));
  const migrationDirectories = await Promise.all(
    directories.map(async (name) => {
      const content = await readFile(join(baseDir, name, MIGRATION_FILE), 'utf8').then(
        (value) => ({ tag: 'ok' as const, value }),
        (error: Error) => ({ tag: 'error' as const, value: error.message }),
      );
      return { path: name, migrationFile: { path: MIGRATION_FILE, content } };
    }),
  );
  return {
    baseDir,
    // The engine needs the lockfile to know the connector; this tool is PostgreSQL-only, so a
    // missing one (e.g. no migrations yet) is supplied in memory. A different provider is kept,
    // so the engine reports the mismatch.
    lockfile: { path: LOCKFILE, content: lockfileContent ?? lockfileText('postgresql') },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** Reads a schema file, or every `.prisma` file under a folder (multi-file schemas). */
async function readSchemaFiles(schemaPath: string): Promise<SchemaContainer[]> {
  const root = resolve(schemaPath);
  let paths: string[];
  try {
    const info = await stat(root);
    if (info.isDirectory()) {
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      paths = entries
        .filter((e) => e.isFile() && e.name.endsWith('.prisma'))
        .map((e) => join(e.parentPath, e.name))
        .sort();
    } else {
      paths = [root];
    }
    if (paths.length === 0) throw new MigrationFilesError(`no .prisma file under ${root}`);
    return await Promise.all(paths.map(async (path) => ({ path, content: await readFile(path, 'utf8') })));
  } catch (error) {
    if (error instanceof MigrationFilesError) throw error;
    throw new MigrationFilesError(`cannot read the Prisma schema ${root}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
}

function lockfileText(provider: string): string {
  return `# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "${provider}"\n`;
}

/** The engine answers an empty diff with a comment only: report it as an empty string. */
function normalizeScript(script: string): string {
  const meaningful = script
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('--'))
    .join('\n');
  return meaningful.trim() === '' ? '' : script.trim();
}

function describeFsError(error: unknown): string {
  const err = error as { code?: string; message?: string; path?: string };
  if (err.code === 'ENOENT') return 'no such file or directory';
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  if (err.code === 'EEXIST') return 'it already exists';
  return oneLine(err.message ?? String(error)).replace(err.path ? ` '${err.path}'` : '', '');
}

function summarize(
  databaseExists: boolean,
  hasMigrationsTable: boolean,
  localMigrations: string[],
  pending: string[],
  unknownInDatabase: string[],
  failed: string[],
  edited: string[],
): MigrationStatus {
  return {
    databaseExists,
    hasMigrationsTable,
    localMigrations,
    pending,
    unknownInDatabase,
    failed,
    edited,
    upToDate: pending.length + unknownInDatabase.length + failed.length + edited.length === 0,
  };
}
