import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createIndexSql, createTableSql } from '../ddl.js';
import { DemoMisError } from '../errors.js';
import type { Batch } from '../generator.js';
import { TABLES, type TableDef } from '../tables.js';
import type { RowWriter } from './writer.js';

/** Rows per INSERT statement: fewer calls into SQLite, far faster than one row at a time. */
const ROWS_PER_STATEMENT = 64;

/**
 * Checks that `path` can be created or replaced, creating missing parent directories
 * (`--out ./data/school.sqlite` in a fresh checkout) but not the file itself.
 */
export function checkWritablePath(path: string): void {
  const full = resolve(path);
  const dir = dirname(full);
  if (existsSync(full) && statSync(full).isDirectory()) {
    throw new DemoMisError('demo_mis.target_unwritable', `cannot write ${path}: it is a directory`);
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOTDIR' || code === 'EEXIST' ? 'a parent is not a directory' : (err as Error).message;
    throw new DemoMisError('demo_mis.target_unwritable', `cannot write ${path}: ${why}`, { cause: err });
  }
  if (!statSync(dir).isDirectory()) {
    throw new DemoMisError(
      'demo_mis.target_unwritable',
      `cannot write ${path}: ${dirname(path)} is not a directory`,
    );
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new DemoMisError(
      'demo_mis.target_unwritable',
      `cannot write ${path}: no write permission in ${dirname(path)}`,
    );
  }
}

/**
 * Writes the demo MIS into a SQLite file. The file holds the tables in its main schema, so
 * a consumer runs `ATTACH DATABASE 'school.sqlite' AS sims` and queries `sims.stud_student`.
 * It is written to a temporary name and renamed at the end, so a failed run leaves the old
 * file alone; the same seed gives a byte-identical file.
 */
export class SqliteWriter implements RowWriter {
  readonly display: string;
  private readonly temp: string;
  private db: Database.Database | null = null;
  private readonly statements = new Map<string, { one: Database.Statement; many: Database.Statement }>();

  constructor(private readonly path: string) {
    this.display = path;
    this.temp = `${resolve(path)}.partial`;
  }

  async open(): Promise<void> {
    checkWritablePath(this.path);
    rmSync(this.temp, { force: true });
    try {
      this.db = new Database(this.temp);
    } catch (err) {
      throw new DemoMisError(
        'demo_mis.target_unwritable',
        `cannot write ${this.path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const db = this.db;
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('cache_size = -65536');
    db.pragma('temp_store = FILE');
    db.exec('BEGIN');
    for (const t of TABLES) db.exec(createTableSql('sqlite', t));
  }

  async write(batch: Batch): Promise<void> {
    const db = this.db;
    if (!db) throw new Error('SqliteWriter.write before open');
    const { one, many } = this.statementsFor(batch.table);
    const rows = batch.rows;
    let i = 0;
    const flat: unknown[] = [];
    for (; i + ROWS_PER_STATEMENT <= rows.length; i += ROWS_PER_STATEMENT) {
      flat.length = 0;
      for (let k = i; k < i + ROWS_PER_STATEMENT; k++) {
        const row = rows[k]!;
        for (let c = 0; c < row.length; c++) flat.push(row[c]);
      }
      many.run(flat);
    }
    for (; i < rows.length; i++) one.run(rows[i]!);
  }

  private statementsFor(table: TableDef): { one: Database.Statement; many: Database.Statement } {
    let s = this.statements.get(table.name);
    if (!s) {
      const cols = table.columns.map((c) => c.name).join(', ');
      const tuple = `(${table.columns.map(() => '?').join(', ')})`;
      const db = this.db!;
      s = {
        one: db.prepare(`INSERT INTO ${table.name} (${cols}) VALUES ${tuple}`),
        many: db.prepare(
          `INSERT INTO ${table.name} (${cols}) VALUES ${Array(ROWS_PER_STATEMENT).fill(tuple).join(', ')}`,
        ),
      };
      this.statements.set(table.name, s);
    }
    return s;
  }

  async close(): Promise<void> {
    const db = this.db;
    if (!db) return;
    for (const t of TABLES) for (const sql of createIndexSql('sqlite', t)) db.exec(sql);
    db.exec('ANALYZE');
    db.exec('COMMIT');
    db.close();
    this.db = null;
    try {
      renameSync(this.temp, resolve(this.path));
    } catch (err) {
      rmSync(this.temp, { force: true });
      throw new DemoMisError(
        'demo_mis.target_unwritable',
        `cannot write ${this.path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async abort(): Promise<void> {
    try {
      this.db?.close();
    } finally {
      this.db = null;
      rmSync(this.temp, { force: true });
    }
  }
}
