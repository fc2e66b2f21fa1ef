import { DemoMisError } from './errors.js';
import { createGenerator, type GenerateOptions } from './generator.js';
import { TABLES } from './tables.js';
import { MysqlWriter } from './writers/mysql.js';
import { PostgresWriter } from './writers/postgres.js';
import { SqliteWriter } from './writers/sqlite.js';
import type { RowWriter } from './writers/writer.js';

export interface GenerateTargets {
  /** SQLite file to create (replaced if it exists). */
  readonly sqlite?: string;
  /** PostgreSQL URL; schema `sims` is dropped and re-created in that database. */
  readonly postgres?: string;
  /** MySQL/MariaDB URL; database from the path, default `sims`. */
  readonly mysql?: string;
}

export interface GenerateRunOptions extends GenerateOptions {
  readonly targets: GenerateTargets;
  /** Called after each batch with rows written so far and the (estimated) total. */
  readonly onProgress?: (done: number, total: number, table: string) => void;
}

export interface GenerateResult {
  readonly preset: string;
  readonly seed: number;
  /** The generated "today" (the data's clock). */
  readonly today: string;
  /** Rows per table, in table order. */
  readonly counts: Readonly<Record<string, number>>;
  readonly totalRows: number;
  readonly targets: readonly string[];
  readonly elapsedMs: number;
}

/**
 * Generates the demo school once and writes it to every given target. All targets are
 * opened (and so checked) before any work starts; on failure every target is rolled back.
 */
export async function generate(options: GenerateRunOptions): Promise<GenerateResult> {
  const started = performance.now();
  const writers: RowWriter[] = [];
  if (options.targets.sqlite !== undefined) writers.push(new SqliteWriter(options.targets.sqlite));
  if (options.targets.postgres !== undefined) writers.push(new PostgresWriter(options.targets.postgres));
  if (options.targets.mysql !== undefined) writers.push(new MysqlWriter(options.targets.mysql));
  if (writers.length === 0) {
    throw new DemoMisError(
      'demo_mis.bad_option',
      'nothing to write: give a SQLite file, a PostgreSQL URL or a MariaDB URL',
    );
  }
  const opened: RowWriter[] = [];
  try {
    for (const w of writers) {
      await w.open();
      opened.push(w);
    }
    const generator = createGenerator(options);
    const total = generator.estimatedRows;
    const counts: Record<string, number> = Object.fromEntries(TABLES.map((t) => [t.name, 0]));
    let done = 0;
    for (const batch of generator.batches()) {
      for (const w of writers) await w.write(batch);
      counts[batch.table.name] = (counts[batch.table.name] ?? 0) + batch.rows.length;
      done += batch.rows.length;
      options.onProgress?.(done, Math.max(total, done), batch.table.name);
    }
    for (const w of writers) await w.close();
    return {
      preset: generator.preset.name,
      seed: generator.seed,
      today: generator.world.today,
      counts,
      totalRows: done,
      targets: writers.map((w) => w.display),
      elapsedMs: performance.now() - started,
    };
  } catch (err) {
    for (const w of opened) await w.abort().catch(() => {});
    throw err;
  }
}

export function generateToSqlite(path: string, options: GenerateOptions): Promise<GenerateResult> {
  return generate({ ...options, targets: { sqlite: path } });
}

export function generateToPostgres(url: string, options: GenerateOptions): Promise<GenerateResult> {
  return generate({ ...options, targets: { postgres: url } });
}

export function generateToMysql(url: string, options: GenerateOptions): Promise<GenerateResult> {
  return generate({ ...options, targets: { mysql: url } });
}
