#!/usr/bin/env node
/**
 * keystage-db: migrations for the Keystage database (see ../README.md).
 *
 *   node dist/cli.js deploy            apply pending migrations (creates the database if missing)
 *   node dist/cli.js status            compare the database with prisma/migrations
 *   node dist/cli.js create <name>     write a new migration for the changes in prisma/schema.prisma
 *   node dist/cli.js diff              print the SQL between prisma/migrations and the schema
 *   node dist/cli.js resolve --rolled-back|--applied <name>
 *
 * The database comes from DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/keystage).
 * Errors are one line on stderr and a non-zero exit code; set KEYSTAGE_DEBUG=1 for details.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  applyMigrations,
  createMigration,
  DEFAULT_DATABASE_URL,
  diffMigrationsToSchema,
  ensureDatabase,
  listMigrations,
  MigratorError,
  markMigrationApplied,
  markMigrationRolledBack,
  migrationStatus,
  parseDatabaseUrl,
} from './migrator.js';

const URL_VARIABLE = 'DATABASE_URL';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** pnpm runs package scripts in the package folder; paths given by the user are relative to where they typed. */
const userCwd = process.env.INIT_CWD || process.cwd();

const USAGE = `usage: keystage-db <command> [--schema <file>] [--migrations <dir>]
commands:
  deploy                 apply pending migrations (creates the database if it does not exist)
  status                 show which migrations are applied; exits 1 unless up to date
  create <name>          create prisma/migrations/<timestamp>_<name> from the schema changes
  diff                   print the SQL from the migrations to the schema; exits 2 if not empty
  resolve --rolled-back <name> | --applied <name>
                         record a failed migration as rolled back, or a migration as applied
environment:
  DATABASE_URL           PostgreSQL URL (default ${DEFAULT_DATABASE_URL})`;

class UsageError extends Error {}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function shown(path: string): string {
  const rel = relative(userCwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      schema: { type: 'string' },
      migrations: { type: 'string' },
      'rolled-back': { type: 'string' },
      applied: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    out(USAGE);
    return 0;
  }

  const databaseUrl = process.env[URL_VARIABLE] || DEFAULT_DATABASE_URL;
  const target = parseDatabaseUrl(databaseUrl); // fails early, before touching any file
  const where = `${target.database} on ${target.server}`;
  const schemaPath = resolve(userCwd, values.schema ?? resolve(repoRoot, 'prisma/schema.prisma'));
  const migrationsDir = resolve(userCwd, values.migrations ?? resolve(repoRoot, 'prisma/migrations'));

  switch (command) {
    case 'deploy': {
      expectArgs(rest, 0);
      if (await ensureDatabase(databaseUrl)) out(`Created database ${where}`);
      const applied = await applyMigrations({ databaseUrl, migrationsDir, createDatabase: false });
      if (applied.length === 0) {
        const count = (await listMigrations(migrationsDir)).length;
        const detail =
          count === 0 ? `no migrations in ${shown(migrationsDir)} yet` : plural(count, 'migration');
        out(`Database is up to date (${where}, ${detail})`);
      } else {
        out(`Applied ${plural(applied.length, 'migration')} to ${where}:`);
        for (const name of applied) out(`  ${name}`);
      }
      return 0;
    }

    case 'status': {
      expectArgs(rest, 0);
      const status = await migrationStatus({ databaseUrl, migrationsDir });
      const total = plural(status.localMigrations.length, 'migration');
      if (!status.databaseExists) {
        out(`Database ${where} does not exist; ${total} to apply (run pnpm db:migrate)`);
        return 1;
      }
      if (status.upToDate) {
        out(`Database is up to date (${where}, ${total} in ${shown(migrationsDir)})`);
        return 0;
      }
      out(`Database ${where} is not up to date (${total} in ${shown(migrationsDir)}):`);
      const list = (label: string, names: string[]) => {
        if (names.length === 0) return;
        out(`  ${label}:`);
        for (const name of names) out(`    ${name}`);
      };
      list('pending, run pnpm db:migrate', status.pending);
      list('failed, fix the database then run resolve', status.failed);
      list('applied but edited since', status.edited);
      list('applied but missing from the migrations folder', status.unknownInDatabase);
      return 1;
    }

    case 'create': {
      const name = rest.join(' ').trim();
      if (!name)
        throw new UsageError('create needs a migration name, e.g. `pnpm db:migration:create add_users`');
      const folder = await createMigration({ databaseUrl, schemaPath, migrationsDir, name });
      if (folder === null) {
        out(
          `No schema changes: ${shown(migrationsDir)} already matches ${shown(schemaPath)}; no migration created`,
        );
      } else {
        out(`Created ${shown(resolve(folder, 'migration.sql'))}`);
        out('Review it, then apply it with pnpm db:migrate');
      }
      return 0;
    }

    case 'diff': {
      expectArgs(rest, 0);
      const script = await diffMigrationsToSchema({ databaseUrl, schemaPath, migrationsDir });
      if (!script) {
        out(`No difference: ${shown(migrationsDir)} matches ${shown(schemaPath)}`);
        return 0;
      }
      out(script);
      return 2;
    }

    case 'resolve': {
      expectArgs(rest, 0);
      const rolledBack = values['rolled-back'];
      const applied = values.applied;
      if (!rolledBack === !applied)
        throw new UsageError('resolve needs either --rolled-back <name> or --applied <name>');
      if (rolledBack) {
        await markMigrationRolledBack({ databaseUrl, migrationsDir, name: rolledBack });
        out(`Recorded ${rolledBack} as rolled back in ${where}`);
      } else if (applied) {
        await markMigrationApplied({ databaseUrl, migrationsDir, name: applied });
        out(`Recorded ${applied} as applied in ${where}`);
      }
      return 0;
    }

    case undefined:
      throw new UsageError('missing command');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function expectArgs(rest: string[], count: number): void {
  if (rest.length > count) throw new UsageError(`unexpected argument "${rest[count]}"`);
}

function describe(error: unknown): string {
  if (error instanceof MigratorError) return error.describe(URL_VARIABLE);
  const message = error instanceof Error ? error.message : String(error);
  return `unexpected error: ${message.split('\n')[0]}`;
}

process.on('unhandledRejection', (error) => {
  process.stderr.write(`${describe(error)}\n`);
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message} (run with --help for usage)\n`);
      process.exit(2);
    }
    process.stderr.write(`${describe(error)}\n`);
    if (process.env.KEYSTAGE_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    process.exit(1);
  },
);
