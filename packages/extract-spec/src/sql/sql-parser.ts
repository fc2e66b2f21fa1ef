/**
 * Loads node-sql-parser one dialect at a time. The package's main entry bundles every grammar
 * (2.5 MB); each `build/<dialect>.js` holds one (200–300 kB), so the agent only pays for the
 * dialect it runs.
 */
import { createRequire } from 'node:module';
import type { SqlDialect } from '../dialects.js';

export interface ParserLocation {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

interface NodeSqlParser {
  astify(sql: string, options: { database: string; parseOptions?: { includeLocations?: boolean } }): unknown;
}

const require = createRequire(import.meta.url);
const parsers = new Map<SqlDialect, NodeSqlParser>();

function parserFor(dialect: SqlDialect): NodeSqlParser {
  let parser = parsers.get(dialect);
  if (!parser) {
    const mod = require(`node-sql-parser/build/${dialect}.js`) as { Parser: new () => NodeSqlParser };
    parser = new mod.Parser();
    parsers.set(dialect, parser);
  }
  return parser;
}

export type ParseOutcome =
  | { readonly ok: true; readonly statements: readonly unknown[] }
  | { readonly ok: false; readonly message: string; readonly location?: ParserLocation };

/** Parses (already masked) SQL; statements are the parser's AST roots, empty ones dropped. */
export function parseSql(sql: string, dialect: SqlDialect): ParseOutcome {
  try {
    const ast = parserFor(dialect).astify(sql, {
      database: dialect,
      parseOptions: { includeLocations: true },
    });
    const list = (Array.isArray(ast) ? ast : [ast]).filter((s) => s !== null && s !== undefined);
    return { ok: true, statements: list };
  } catch (err) {
    const e = err as { message?: unknown; location?: { start?: ParserLocation } };
    const message = typeof e.message === 'string' ? e.message : String(err);
    const location = e.location?.start;
    return location ? { ok: false, message, location } : { ok: false, message };
  }
}
