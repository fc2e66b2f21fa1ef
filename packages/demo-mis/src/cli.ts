#!/usr/bin/env node
/**
 * demo-mis: generate the demo school into SQLite / PostgreSQL / MariaDB, and apply a day of
 * change to it.
 *
 *   demo-mis generate --preset secondary --out ./data/school.sqlite [--pg URL] [--mysql URL] [--seed N]
 *   demo-mis mutate --db <sqlite path | postgres URL | mysql URL> [--day N]
 *
 * Errors (bad options included) are one line on stderr and exit code 1; KEYSTAGE_DEBUG=1 adds
 * the stack trace.
 */
import { isAbsolute, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DIALECTS, type Dialect, schemaSql } from './ddl.js';
import { describeError } from './errors.js';
import { generate } from './generate.js';
import { mutate } from './mutate.js';
import { PRESET_NAMES, PRESETS } from './presets.js';
import { parseTarget } from './targets.js';

/** pnpm runs package scripts in the package folder; paths the user typed are relative to where they typed. */
const userCwd = process.env.INIT_CWD || process.cwd();
const debug = process.env.KEYSTAGE_DEBUG === '1';

function userPath(path: string): string {
  return isAbsolute(path) ? path : resolve(userCwd, path);
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function fail(err: unknown): void {
  process.stderr.write(`demo-mis: ${describeError(err)}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}

function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min}`);
    }
    return Number(value);
  };
}

function formatCount(n: number): string {
  return n.toLocaleString('en-GB');
}

function table(rows: [string, string][], header: [string, string]): string[] {
  const w0 = Math.max(header[0].length, ...rows.map((r) => r[0].length));
  const w1 = Math.max(header[1].length, ...rows.map((r) => r[1].length));
  const line = (a: string, b: string) => `${a.padEnd(w0)}  ${b.padStart(w1)}`;
  return [line(...header), `${'-'.repeat(w0)}  ${'-'.repeat(w1)}`, ...rows.map((r) => line(...r))];
}

interface GenerateCliOptions {
  preset: (typeof PRESET_NAMES)[number];
  out?: string;
  pg?: string;
  mysql?: string;
  seed: number;
  quiet?: boolean;
}

async function runGenerate(opts: GenerateCliOptions): Promise<void> {
  if (!opts.out && !opts.pg && !opts.mysql) {
    throw new InvalidArgumentError('nothing to write: give --out <file>, --pg <url> or --mysql <url>');
  }
  const showProgress = !opts.quiet && process.stderr.isTTY === true;
  const bar = showProgress
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${opts.preset} |{bar}| {percentage}% | {value}/{total} rows | {table}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  try {
    const result = await generate({
      preset: opts.preset,
      seed: opts.seed,
      targets: {
        ...(opts.out ? { sqlite: userPath(opts.out) } : {}),
        ...(opts.pg ? { postgres: opts.pg } : {}),
        ...(opts.mysql ? { mysql: opts.mysql } : {}),
      },
      onProgress: (done, total, tableName) => {
        if (!bar) return;
        if (!started) {
          bar.start(total, 0, { table: tableName });
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, { table: tableName });
      },
    });
    bar?.stop();
    if (opts.quiet) return;
    const rows = Object.entries(result.counts).map(([name, n]) => [name, formatCount(n)] as [string, string]);
    rows.push(['total', formatCount(result.totalRows)]);
    for (const line of table(rows, ['table', 'rows'])) out(line);
    out();
    out(`preset ${result.preset}, seed ${result.seed}, today ${result.today}`);
    out(`written to ${result.targets.join(', ')} in ${(result.elapsedMs / 1000).toFixed(1)} s`);
  } finally {
    bar?.stop();
  }
}

interface MutateCliOptions {
  db: string;
  day?: number;
  json?: boolean;
  quiet?: boolean;
}

async function runMutate(opts: MutateCliOptions): Promise<void> {
  const target = parseTarget(opts.db);
  const report = await mutate(
    target.kind === 'sqlite' ? userPath(target.path) : opts.db,
    opts.day === undefined ? {} : { day: opts.day },
  );
  if (opts.json) {
    out(JSON.stringify(report, null, 2));
    return;
  }
  if (opts.quiet) return;
  for (const line of report.summary) out(line);
  out();
  const rows = Object.entries(report.changes).map(
    ([name, c]) =>
      [name, `+${c.inserted.length} ~${c.updated.length} -${c.deleted.length}`] as [string, string],
  );
  for (const line of table(rows, ['table', 'inserted ~updated -deleted'])) out(line);
}

export function buildProgram(): Command {
  const program = new Command('demo-mis')
    .description('The Keystage demo MIS: a synthetic, SIMS-shaped school in SQLite, PostgreSQL or MariaDB.')
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (message, write) => write(`demo-mis: ${message.replace(/^error: /, '')}`),
    });

  program
    .command('generate')
    .description('generate the demo school into a SQLite file and/or PostgreSQL and/or MariaDB')
    .addOption(
      new Option('-p, --preset <name>', 'size of the school').choices([...PRESET_NAMES]).default('secondary'),
    )
    .option('-o, --out <file>', 'SQLite file to create (replaced if it exists); attach it as "sims"')
    .option('--pg <url>', 'PostgreSQL URL; schema "sims" in that database is dropped and re-created')
    .option(
      '--mysql <url>',
      'MariaDB/MySQL URL; database from the path (default "sims"), demo tables re-created',
    )
    .option('-s, --seed <n>', 'seed: the same seed gives the same data', wholeNumber('--seed', 0), 1)
    .option('-q, --quiet', 'no progress bar and no summary')
    .addHelpText(
      'after',
      `\nPresets:\n${PRESET_NAMES.map((n) => `  ${n.padEnd(10)} ${PRESETS[n].description}`).join('\n')}\n\nExample:\n  demo-mis generate --preset secondary --out ./data/school.sqlite --pg postgres://postgres@127.0.0.1:5432/keystage_demo`,
    )
    .action(async (opts: GenerateCliOptions) => {
      await runGenerate(opts).catch(fail);
    });

  program
    .command('mutate')
    .description('apply one school day of change (marks, corrections, a leaver, a joiner …) and report it')
    .requiredOption(
      '-d, --db <target>',
      'SQLite file, postgres:// URL or mysql:// URL of a generated demo MIS',
    )
    .option(
      '--day <n>',
      'day after the generated "today" (default: the next one not yet applied)',
      wholeNumber('--day', 1),
    )
    .option('--json', 'print the full report (every key) as JSON')
    .option('-q, --quiet', 'print nothing on success')
    .action(async (opts: MutateCliOptions) => {
      await runMutate(opts).catch(fail);
    });

  program
    .command('ddl')
    .description('print the CREATE TABLE statements for one dialect')
    .addOption(new Option('--dialect <name>', 'SQL dialect').choices([...DIALECTS]).default('postgres'))
    .action((opts: { dialect: Dialect }) => {
      process.stdout.write(schemaSql(opts.dialect, opts.dialect === 'postgres' ? 'sims' : undefined));
    });

  program
    .command('presets')
    .description('list the presets')
    .action(() => {
      for (const n of PRESET_NAMES) out(`${n.padEnd(10)} ${PRESETS[n].description}`);
    });

  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    fail(err);
  });
