/**
 * A small SQL lexer that reads comments, strings and quoted identifiers the way each DATABASE
 * ENGINE does, not the way node-sql-parser's grammars do. The two disagree in places that
 * matter for security:
 * - SQL Server, SQLite and PostgreSQL (standard strings) do not treat `\` as an escape, the
 *   grammars do: `SELECT '\'; DROP TABLE x; --'` is one statement to the parser and two to
 *   the server;
 * - the SQLite grammar takes `#` as a comment, SQLite does not; MySQL runs the text of
 *   `/*! … *\/` comments; MySQL's `--` needs a space after it;
 * - MySQL's backslash escapes and PostgreSQL's standard_conforming_strings depend on server
 *   settings we cannot see.
 * So the validator lexes with the engine's rules (in every server setting that changes them),
 * splits statements itself, and hands the parser a MASKED copy of the text: comments blanked,
 * backslashes and dollar-quoted bodies inside literals neutralised, same length and line breaks,
 * so parser positions stay valid and the parser cannot see structure the engine does not.
 */
import type { SqlDialect } from '../dialects.js';
import { LineIndex, type SqlProblem } from './sql-problem.js';

export type SqlTokenKind =
  | 'word'
  | 'quoted'
  | 'string'
  | 'number'
  | 'param'
  | 'variable'
  | 'positional'
  | 'punct'
  | 'semicolon';

export interface SqlToken {
  readonly kind: SqlTokenKind;
  /** The source text of the token. */
  readonly text: string;
  /** Identifier or parameter name without quotes or prefix; string body; otherwise the text. */
  readonly value: string;
  readonly start: number;
  readonly end: number;
  readonly line: number;
  readonly column: number;
}

export interface LexResult {
  readonly tokens: readonly SqlToken[];
  /** Tokens grouped into statements at top-level `;` (empty statements dropped). */
  readonly statements: readonly (readonly SqlToken[])[];
  /** The text with comments blanked and literal bodies neutralised; same length and line breaks. */
  readonly masked: string;
  readonly problems: readonly SqlProblem[];
}

interface Mode {
  /** `\` escapes the next character inside '…' strings (MySQL default, PostgreSQL without standard strings). */
  readonly backslash: boolean;
}

interface OnePass {
  tokens: SqlToken[];
  masked: string[];
  problems: SqlProblem[];
}

/**
 * Server settings that change how text is split into tokens. The first mode is the default the
 * result is built from; every other mode must agree on token boundaries or the text is ambiguous.
 */
function modesOf(dialect: SqlDialect): Mode[] {
  switch (dialect) {
    case 'mysql':
    case 'mariadb':
      return [{ backslash: true }, { backslash: false }]; // NO_BACKSLASH_ESCAPES
    case 'postgresql':
      return [{ backslash: false }, { backslash: true }]; // standard_conforming_strings = off
    default:
      return [{ backslash: false }];
  }
}

export function lexSql(sql: string, dialect: SqlDialect): LexResult {
  const lines = new LineIndex(sql);
  const [primaryMode, ...otherModes] = modesOf(dialect);
  const primary = lexOnce(sql, dialect, primaryMode ?? { backslash: false }, lines);
  const problems = [...primary.problems];
  for (const mode of otherModes) {
    const other = lexOnce(sql, dialect, mode, lines);
    const at = firstDifference(primary.tokens, other.tokens);
    if (at !== undefined) {
      const pos = lines.position(at);
      problems.push({
        code: 'sql.ambiguous_syntax',
        message: mode.backslash
          ? 'this literal reads differently when the server treats backslashes as escapes (standard_conforming_strings off): avoid backslashes in strings'
          : 'this literal reads differently when the server runs with NO_BACKSLASH_ESCAPES: avoid backslashes and escaped quotes in strings',
        ...pos,
      });
      break;
    }
  }
  return {
    tokens: primary.tokens,
    statements: splitStatements(primary.tokens),
    masked: primary.masked.join(''),
    problems,
  };
}

function firstDifference(a: readonly SqlToken[], b: readonly SqlToken[]): number | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) return (x ?? y)?.start;
    if (x.start !== y.start || x.end !== y.end || x.kind !== y.kind) return Math.min(x.start, y.start);
  }
  return undefined;
}

function splitStatements(tokens: readonly SqlToken[]): SqlToken[][] {
  const statements: SqlToken[][] = [];
  let current: SqlToken[] = [];
  for (const t of tokens) {
    if (t.kind === 'semicolon') {
      if (current.length > 0) statements.push(current);
      current = [];
    } else {
      current.push(t);
    }
  }
  if (current.length > 0) statements.push(current);
  return statements;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isIdentStart = (c: string | undefined): boolean =>
  c !== undefined &&
  ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c.charCodeAt(0) >= 0x80);
const isSpace = (c: string | undefined): boolean =>
  c !== undefined && (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v');

function lexOnce(sql: string, dialect: SqlDialect, mode: Mode, lines: LineIndex): OnePass {
  const n = sql.length;
  const tokens: SqlToken[] = [];
  const masked = sql.split('');
  const problems: SqlProblem[] = [];
  const mysqlLike = dialect === 'mysql' || dialect === 'mariadb';
  const tsql = dialect === 'transactsql';
  const pg = dialect === 'postgresql';

  const isIdentPart = (c: string | undefined): boolean =>
    isIdentStart(c) || isDigit(c) || c === '$' || (tsql && (c === '#' || c === '@'));

  const push = (kind: SqlTokenKind, start: number, end: number, value?: string): void => {
    const text = sql.slice(start, end);
    tokens.push({ kind, text, value: value ?? text, start, end, ...lines.position(start) });
  };
  const problem = (code: SqlProblem['code'], at: number, message: string): void => {
    problems.push({ code, message, ...lines.position(at) });
  };
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (masked[k] !== '\n' && masked[k] !== '\r') masked[k] = ' ';
  };

  /** Scans a quoted run from the opening quote at `i`; returns the index after the closing quote, or -1. */
  const scanQuoted = (i: number, close: string, backslash: boolean, doubling: boolean): number => {
    let j = i + 1;
    while (j < n) {
      const c = sql[j];
      if (backslash && c === '\\') {
        masked[j] = 'x';
        if (j + 1 < n && sql[j + 1] !== '\n' && sql[j + 1] !== '\r') masked[j + 1] = 'x';
        j += 2;
        continue;
      }
      if (c === '\\') masked[j] = 'x'; // the engine reads it literally; keep the parser from escaping with it
      if (c === close) {
        if (doubling && sql[j + 1] === close) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return -1;
  };

  let i = 0;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];

    if (isSpace(c)) {
      i++;
      continue;
    }

    // Comments.
    if (c === '-' && next === '-') {
      if (mysqlLike && !(i + 2 >= n || isSpace(sql[i + 2]) || sql.charCodeAt(i + 2) < 32)) {
        problem(
          'sql.ambiguous_syntax',
          i,
          'MySQL reads "--" without a following space as two minus signs, not a comment: add a space or remove it',
        );
        push('punct', i, i + 1);
        i++;
        continue;
      }
      let j = i;
      while (j < n && sql[j] !== '\n') j++;
      blank(i, j);
      i = j;
      continue;
    }
    if (c === '#') {
      if (mysqlLike) {
        let j = i;
        while (j < n && sql[j] !== '\n') j++;
        blank(i, j);
        i = j;
        continue;
      }
      if (dialect === 'sqlite') {
        problem(
          'sql.ambiguous_syntax',
          i,
          'SQLite has no "#" comments (the validator\'s parser would take one): remove it or use "--"',
        );
        push('punct', i, i + 1);
        i++;
        continue;
      }
      if (tsql && isIdentPart(next)) {
        let j = i + 1;
        while (j < n && isIdentPart(sql[j])) j++;
        push('word', i, j);
        i = j;
        continue;
      }
      push('punct', i, i + 1);
      i++;
      continue;
    }
    if (c === '/' && next === '*') {
      if (mysqlLike && (sql[i + 2] === '!' || (sql[i + 2] === 'M' && sql[i + 3] === '!'))) {
        problem(
          'sql.executable_comment',
          i,
          'MySQL executes the text of /*! … */ comments: the validator cannot vouch for it',
        );
      }
      const nested = pg || tsql;
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (nested && sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else {
          j++;
        }
      }
      if (depth > 0) {
        problem('sql.parse_error', i, 'unterminated /* comment');
        blank(i, n);
        i = n;
        continue;
      }
      blank(i, j);
      i = j;
      continue;
    }

    // String literals, with their prefixes.
    let prefix = 0;
    let backslash = mode.backslash;
    const upper = c.toUpperCase();
    if (
      next === "'" &&
      (upper === 'X' || (upper === 'N' && (tsql || mysqlLike)) || (upper === 'B' && (pg || mysqlLike)))
    ) {
      prefix = 1;
    } else if (next === "'" && upper === 'E' && pg) {
      prefix = 1;
      backslash = true;
    } else if (pg && upper === 'U' && next === '&' && sql[i + 2] === "'") {
      prefix = 2;
    }
    if (c === "'" || prefix > 0) {
      const open = i + prefix;
      const end = scanQuoted(open, "'", backslash, true);
      if (end < 0) {
        problem('sql.parse_error', i, 'unterminated string literal');
        i = n;
        continue;
      }
      push('string', i, end, sql.slice(open + 1, end - 1));
      i = end;
      continue;
    }
    if (c === '"') {
      const end = scanQuoted(i, '"', mysqlLike && mode.backslash, true);
      if (end < 0) {
        problem('sql.parse_error', i, 'unterminated quoted identifier or string');
        i = n;
        continue;
      }
      push(mysqlLike ? 'string' : 'quoted', i, end, sql.slice(i + 1, end - 1).replaceAll('""', '"'));
      i = end;
      continue;
    }
    if (c === '`' && (mysqlLike || dialect === 'sqlite')) {
      const end = scanQuoted(i, '`', false, true);
      if (end < 0) {
        problem('sql.parse_error', i, 'unterminated quoted identifier');
        i = n;
        continue;
      }
      push('quoted', i, end, sql.slice(i + 1, end - 1).replaceAll('``', '`'));
      i = end;
      continue;
    }
    if (c === '[' && (tsql || dialect === 'sqlite')) {
      const end = scanQuoted(i, ']', false, tsql);
      if (end < 0) {
        problem('sql.parse_error', i, 'unterminated [quoted identifier]');
        i = n;
        continue;
      }
      push('quoted', i, end, sql.slice(i + 1, end - 1).replaceAll(']]', ']'));
      i = end;
      continue;
    }
    if (c === '$' && pg) {
      if (isDigit(next)) {
        let j = i + 1;
        while (j < n && isDigit(sql[j])) j++;
        push('positional', i, j);
        i = j;
        continue;
      }
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 200));
      if (tag) {
        const delimiter = tag[0];
        const close = sql.indexOf(delimiter, i + delimiter.length);
        if (close < 0) {
          problem('sql.parse_error', i, `unterminated dollar-quoted string ${delimiter}`);
          i = n;
          continue;
        }
        const end = close + delimiter.length;
        // Hand the parser a plain '…' string of the same length: it need not know dollar quoting.
        for (let k = i; k < end; k++) if (masked[k] !== '\n' && masked[k] !== '\r') masked[k] = 'x';
        masked[i] = "'";
        masked[end - 1] = "'";
        push('string', i, end, sql.slice(i + delimiter.length, close));
        i = end;
        continue;
      }
    }
    if (c === '$' && dialect === 'sqlite' && (isIdentStart(next) || isDigit(next))) {
      let j = i + 1;
      while (j < n && isIdentPart(sql[j])) j++;
      push('variable', i, j, sql.slice(i + 1, j));
      i = j;
      continue;
    }

    // Parameters and variables.
    if (c === ':') {
      if (next === ':' || next === '=') {
        push('punct', i, i + 2);
        i += 2;
        continue;
      }
      if (isIdentStart(next)) {
        let j = i + 1;
        while (j < n && (isIdentStart(sql[j]) || isDigit(sql[j]))) j++;
        push('param', i, j, sql.slice(i + 1, j));
        i = j;
        continue;
      }
      push('punct', i, i + 1);
      i++;
      continue;
    }
    if (c === '@') {
      let j = i + 1;
      if (sql[j] === '@') j++;
      if (isIdentStart(sql[j])) {
        while (j < n && isIdentPart(sql[j])) j++;
        push('variable', i, j, sql.slice(i, j).replace(/^@+/, ''));
        i = j;
        continue;
      }
      push('punct', i, i + 1);
      i++;
      continue;
    }
    if (c === '?') {
      let j = i + 1;
      if (dialect === 'sqlite') while (j < n && isDigit(sql[j])) j++;
      push('positional', i, j);
      i = j;
      continue;
    }
    if (c === ';') {
      push('semicolon', i, i + 1);
      i++;
      continue;
    }

    // Numbers, words, punctuation.
    if (isDigit(c) || (c === '.' && isDigit(next))) {
      let j = i;
      if (c === '0' && (next === 'x' || next === 'X')) {
        j += 2;
        while (j < n && /[0-9a-fA-F]/.test(sql[j] as string)) j++;
      } else {
        while (j < n && (isDigit(sql[j]) || sql[j] === '.')) j++;
        if ((sql[j] === 'e' || sql[j] === 'E') && (isDigit(sql[j + 1]) || /[+-]/.test(sql[j + 1] ?? ''))) {
          j += 2;
          while (j < n && isDigit(sql[j])) j++;
        }
      }
      push('number', i, j);
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql[j])) j++;
      push('word', i, j);
      i = j;
      continue;
    }
    push('punct', i, i + 1);
    i++;
  }
  return { tokens, masked, problems };
}
