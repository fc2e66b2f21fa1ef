/**
 * Decides whether one extract statement may run against a school's MIS: exactly one statement,
 * read-only, no side-effect functions, no locks, parameters only as `:name` bind variables.
 * The agent calls it again before every run, so it is pure and loads one grammar only.
 *
 * Layers (each one alone would be enough for most inputs; together they leave no gap the
 * tests know of):
 * 1. the engine-faithful lexer (sql-lexer.ts): statement splitting, comments, literals;
 * 2. node-sql-parser's AST of the masked text: statement kinds, INTO, locking, functions,
 *    variables and parameters, at every depth (CTEs, subqueries, ORDER BY …);
 * 3. a token scan for forbidden function names followed by `(`, whatever the AST shape;
 * 4. when the parser fails, the statement is rejected with the parser's position, and the
 *    token scan adds the likely reason (DML, locking, EXEC …) as further problems.
 */
import type { SqlDialect } from '../dialects.js';
import { type AstNode, functionName, identText, isNode, nodeOffset, nodeType, walkAst } from './ast.js';
import { type LexResult, lexSql, type SqlToken } from './sql-lexer.js';
import { parseSql } from './sql-parser.js';
import { LineIndex, type SqlProblem, type SqlProblemCode } from './sql-problem.js';
import { isForbiddenFunction, LOCKING_HINTS, PROCEDURE_KEYWORDS, STATEMENT_KEYWORDS } from './sql-rules.js';

export interface SqlParameterUse {
  readonly name: string;
  readonly line: number;
  readonly column: number;
  /** The placeholder is the only element of an `IN ( … )` list (where a list value may be bound). */
  readonly inList: boolean;
}

export interface ValidSql {
  readonly ok: true;
  readonly statementKind: 'select' | 'procedure';
  /** Bind variable names (without `:`), in order of first use. */
  readonly parameters: readonly string[];
  readonly parameterUses: readonly SqlParameterUse[];
  /** The called procedure, for an allow-listed procedure call. */
  readonly procedure?: string;
  /** node-sql-parser's AST of the statement (backslashes inside literals are masked). */
  readonly ast?: unknown;
}

export interface InvalidSql {
  readonly ok: false;
  readonly problems: readonly SqlProblem[];
}

export type SqlValidation = ValidSql | InvalidSql;

export interface ValidateSqlOptions {
  /** Procedures that may be called (`EXEC name` / `CALL name(…)`), compared case-insensitively. */
  readonly allowProcedures?: readonly string[];
}

const DIALECT_NAMES: Readonly<Record<SqlDialect, string>> = {
  transactsql: 'T-SQL',
  postgresql: 'PostgreSQL',
  mysql: 'MySQL',
  mariadb: 'MariaDB',
  sqlite: 'SQLite',
};

/** Statement words that cannot start a harmless phrase anywhere in a SELECT. */
const STRONG_KEYWORDS = new Set([
  'insert',
  'delete',
  'merge',
  'drop',
  'alter',
  'truncate',
  'grant',
  'revoke',
  'deny',
  'declare',
  'attach',
  'detach',
  'pragma',
  'shutdown',
  'backup',
  'restore',
  'dbcc',
  'kill',
  'create',
]);

/** The lexer, the masked text and the parser's statements: shared with lineage(). */
export interface ParsedSql {
  readonly lex: LexResult;
  readonly lines: LineIndex;
  readonly parse: ReturnType<typeof parseSql>;
}

export function parseForAnalysis(sql: string, dialect: SqlDialect): ParsedSql {
  const lex = lexSql(sql, dialect);
  return { lex, lines: new LineIndex(sql), parse: parseSql(lex.masked, dialect) };
}

export function validateSql(
  sql: string,
  dialect: SqlDialect,
  options: ValidateSqlOptions = {},
): SqlValidation {
  const problems = new ProblemList(new LineIndex(sql));
  const lex = lexSql(sql, dialect);
  for (const p of lex.problems) problems.addAt(p.code, p.message, p.line, p.column);

  if (lex.statements.length === 0) {
    problems.add('sql.empty', 0, 'the SQL holds no statement');
    return { ok: false, problems: problems.sorted() };
  }
  const second = lex.statements[1]?.[0];
  if (second) problems.add('sql.multiple_statements', second.start, 'only one statement is allowed');
  scanTokens(lex.tokens, problems);

  // An unterminated literal or comment makes any parse meaningless.
  if (lex.problems.some((p) => p.code === 'sql.parse_error'))
    return { ok: false, problems: problems.sorted() };

  const parsed = parseSql(lex.masked, dialect);
  if (!parsed.ok) {
    // Some grammar errors come without a position ("x" is a reserved word …): find the word.
    const quoted = /"([^"]+)"/.exec(parsed.message)?.[1]?.toLowerCase();
    const at =
      parsed.location?.offset ??
      lex.tokens.find((t) => quoted !== undefined && t.value.toLowerCase() === quoted)?.start ??
      0;
    const token = lex.tokens.find((t) => t.start >= at);
    const near =
      token && token.start === at ? ` near "${token.text}"` : at >= sql.length ? ' at the end' : '';
    const reason = parsed.location ? '' : ` (${parsed.message.replace(/^Error:\s*/, '').slice(0, 120)})`;
    problems.add(
      'sql.parse_error',
      at,
      `the ${DIALECT_NAMES[dialect]} parser cannot read this statement${near}${reason}; it is rejected rather than guessed at`,
    );
    for (const statement of lex.statements) diagnose(statement, problems);
    return { ok: false, problems: problems.sorted() };
  }

  // Some grammars return untyped fragments for statements they half-understand (T-SQL GRANT).
  const roots = parsed.statements.filter((r, i) => i === 0 || nodeType(r) !== undefined);
  if (roots.length > 1 && !second) {
    const start = nodeOffset(roots[1] as AstNode) ?? lex.tokens[lex.tokens.length - 1]?.start ?? 0;
    problems.add('sql.multiple_statements', start, 'only one statement is allowed');
  }

  const allow = new Set((options.allowProcedures ?? []).map((p) => p.toLowerCase()));
  const root = roots[0];
  if (root === undefined) {
    problems.add('sql.empty', 0, 'the SQL holds no statement');
    return { ok: false, problems: problems.sorted() };
  }
  const firstToken = lex.statements[0]?.[0];
  const rootType = nodeType(root);
  let statementKind: 'select' | 'procedure' = 'select';
  let procedure: string | undefined;
  if (rootType === 'exec' || rootType === 'call') {
    procedure = procedureName(root as AstNode);
    statementKind = 'procedure';
    const allowed =
      procedure !== undefined && (allow.has(procedure) || allow.has(procedure.split('.').pop() ?? ''));
    if (!allowed || dialect === 'sqlite') {
      problems.add(
        'sql.procedure_call',
        firstToken?.start ?? 0,
        `calling ${procedure ? `procedure ${procedure}` : 'a procedure'} is not allowed${
          allow.size > 0 ? ' (it is not on the allow-list)' : ''
        }: a procedure's reads and writes cannot be checked`,
      );
    }
  } else if (rootType !== 'select') {
    const word = firstToken?.text.toUpperCase() ?? '';
    problems.add(
      'sql.not_read_only',
      firstToken?.start ?? 0,
      word === 'SELECT' || word === 'WITH' || rootType === undefined
        ? `the ${DIALECT_NAMES[dialect]} parser does not read this as one SELECT statement`
        : `only SELECT (or WITH … SELECT) is allowed, not ${word}`,
    );
  }

  const uses = new Map<AstNode, boolean>();
  // A statement already rejected for its kind is not searched further (its AST is often a fragment).
  if (rootType === 'select' || statementKind === 'procedure')
    inspectTree(root, lex.tokens, problems, uses, dialect);

  const parameterUses = collectParameterUses(lex.tokens, uses);
  if (problems.size > 0) return { ok: false, problems: problems.sorted() };
  const parameters = [...new Set(parameterUses.map((u) => u.name))];
  return {
    ok: true,
    statementKind,
    parameters,
    parameterUses,
    ...(procedure !== undefined ? { procedure } : {}),
    ast: root,
  };
}

class ProblemList {
  private readonly list: SqlProblem[] = [];
  private readonly keys = new Set<string>();

  constructor(private readonly lines: LineIndex) {}

  get size(): number {
    return this.list.length;
  }

  add(code: SqlProblemCode, offset: number, message: string): void {
    const { line, column } = this.lines.position(offset);
    this.addAt(code, message, line, column);
  }

  addAt(code: SqlProblemCode, message: string, line: number, column: number): void {
    const key = `${code}@${line}:${column}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.list.push({ code, message, line, column });
  }

  has(code: SqlProblemCode): boolean {
    return this.list.some((p) => p.code === code);
  }

  sorted(): SqlProblem[] {
    return [...this.list].sort(
      (a, b) => a.line - b.line || a.column - b.column || a.code.localeCompare(b.code),
    );
  }
}

function procedureName(node: AstNode): string | undefined {
  if (isNode(node.module)) {
    const m = node.module;
    const parts = [identText(m.db), identText(m.schema), identText(m.table)].filter((x): x is string => !!x);
    return parts.join('.').toLowerCase() || undefined;
  }
  if (isNode(node.expr) && nodeType(node.expr) === 'function') {
    const fn = node.expr;
    const name = functionName(fn);
    const schema = isNode(fn.name) ? identText(fn.name.schema) : undefined;
    return name ? (schema ? `${schema}.${name}` : name).toLowerCase() : undefined;
  }
  return undefined;
}

function firstWordToken(tokens: readonly SqlToken[], word: string, from = 0): SqlToken | undefined {
  const w = word.toLowerCase();
  return tokens.find((t) => t.start >= from && t.kind === 'word' && t.value.toLowerCase() === w);
}

/** Checks every node of one statement's AST. */
function inspectTree(
  root: unknown,
  tokens: readonly SqlToken[],
  problems: ProblemList,
  paramsInList: Map<AstNode, boolean>,
  dialect: SqlDialect,
): void {
  const inListParams = new Set<AstNode>();
  walkAst(root, (node, key) => {
    const type = nodeType(node);

    // Nested statements (CTE bodies, subqueries) must be SELECTs too.
    if ((key === 'ast' || key === 'stmt') && type !== undefined && type !== 'select') {
      const token = firstWordToken(tokens, type) ?? tokens[0];
      problems.add(
        'sql.not_read_only',
        token?.start ?? 0,
        `a nested ${type.toUpperCase()} is not allowed: only SELECT may appear inside a query`,
      );
    }

    if (type === 'select') inspectSelect(node, tokens, problems);

    if (type === 'function' || type === 'aggr_func') {
      const name = functionName(node);
      if (name !== undefined && isForbiddenFunction(name)) {
        const offset = findCallToken(tokens, name, nodeOffset(node) ?? 0)?.start ?? nodeOffset(node) ?? 0;
        problems.add(
          'sql.forbidden_function',
          offset,
          `${name} is not allowed: it has side effects or reaches files, the network or other sessions`,
        );
      }
    }

    if (type === 'binary_expr' && typeof node.operator === 'string' && /^(NOT )?IN$/i.test(node.operator)) {
      const right = node.right;
      if (isNode(right) && nodeType(right) === 'expr_list' && Array.isArray(right.value)) {
        const only = right.value.length === 1 ? right.value[0] : undefined;
        if (isNode(only) && nodeType(only) === 'param') inListParams.add(only);
      }
    }
    if (type === 'param') paramsInList.set(node, inListParams.has(node) || paramsInList.get(node) === true);

    // Variables and positional placeholders are reported from tokens (exact positions); the AST
    // is a backstop for any the lexer did not see.
    if (type === 'var' || (type === 'origin' && node.value === '?')) {
      const text =
        type === 'var'
          ? `${typeof node.prefix === 'string' ? node.prefix : ''}${identText(node.name) ?? ''}`
          : '?';
      if (!tokens.some((t) => (t.kind === 'variable' || t.kind === 'positional') && t.text === text)) {
        const near = tokens.find((t) => text.endsWith(t.text) && t.kind !== 'punct');
        const positional = text === '?' || /^\$\d+$/.test(text);
        problems.add(
          positional ? 'sql.positional_parameter' : 'sql.variable',
          (near ? near.start - (text.length - near.text.length) : undefined) ?? nodeOffset(node) ?? 0,
          `${positional ? 'positional parameter' : 'variable'} ${text}: write parameters as named bind variables (:name)`,
        );
      }
    }
    // T-SQL's grammar reads @name as a column reference.
    if (type === 'column_ref' && dialect === 'transactsql') {
      const column = identText(node.column);
      if (column?.startsWith('@') && !tokens.some((t) => t.kind === 'variable')) {
        problems.add(
          'sql.variable',
          0,
          `variable ${column}: write parameters as named bind variables (:name)`,
        );
      }
    }
  });
}

function inspectSelect(node: AstNode, tokens: readonly SqlToken[], problems: ProblemList): void {
  const into = node.into;
  if (isNode(into) && (into.position != null || into.expr != null)) {
    const keyword = typeof into.keyword === 'string' ? ` ${into.keyword.toUpperCase()}` : '';
    const token = firstWordToken(tokens, 'into');
    problems.add(
      'sql.select_into',
      token?.start ?? 0,
      `SELECT … INTO${keyword} writes data: an extract may only return rows`,
    );
  }
  for (const key of ['locking_read', 'for_update'] as const) {
    const lock = node[key];
    if (lock) {
      const text = typeof lock === 'string' ? lock : 'FOR UPDATE';
      const word = /lock/i.test(text) ? 'lock' : 'for';
      const token = [...tokens].find((t) => t.kind === 'word' && t.value.toLowerCase() === word);
      problems.add('sql.locking_clause', token?.start ?? 0, `${text} takes locks: an extract may only read`);
    }
  }
  const from = Array.isArray(node.from) ? node.from : [];
  for (const item of from) {
    const server = isNode(item) ? identText(item.server) : undefined;
    if (server) {
      const token = tokens.find((t) => (t.kind === 'word' || t.kind === 'quoted') && t.value === server);
      problems.add(
        'sql.linked_server',
        token?.start ?? 0,
        `${server} is a linked server: an extract may only read the school's own MIS database`,
      );
    }
    if (!isNode(item) || !isNode(item.table_hint)) continue;
    const hints = Array.isArray(item.table_hint.expr) ? item.table_hint.expr : [];
    for (const hint of hints) {
      const name = isNode(hint) ? identText(hint.expr) : undefined;
      if (name && LOCKING_HINTS.has(name.toLowerCase())) {
        const token = firstWordToken(tokens, name);
        problems.add(
          'sql.locking_clause',
          token?.start ?? 0,
          `table hint ${name.toUpperCase()} takes or holds locks: an extract may only read`,
        );
      }
    }
  }
}

function findCallToken(tokens: readonly SqlToken[], name: string, from: number): SqlToken | undefined {
  const n = name.toLowerCase();
  for (let i = 0; i + 1 < tokens.length; i++) {
    const t = tokens[i] as SqlToken;
    if (t.start < from) continue;
    if (
      (t.kind === 'word' || t.kind === 'quoted') &&
      t.value.toLowerCase() === n &&
      tokens[i + 1]?.text === '('
    ) {
      return t;
    }
  }
  return undefined;
}

/**
 * Token-level rules, applied whatever the parser makes of the text: a forbidden name followed
 * by `(` is a call; `@x`, `$x`, `?`, `$1` are variables or positional placeholders.
 */
function scanTokens(tokens: readonly SqlToken[], problems: ProblemList): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as SqlToken;
    if (t.kind === 'positional') {
      problems.add(
        'sql.positional_parameter',
        t.start,
        `positional parameter ${t.text}: write parameters as named bind variables (:name)`,
      );
    }
    if (t.kind === 'variable') {
      problems.add(
        'sql.variable',
        t.start,
        `variable ${t.text}: write parameters as named bind variables (:name)`,
      );
    }
    if (
      (t.kind === 'word' || t.kind === 'quoted') &&
      tokens[i + 1]?.text === '(' &&
      isForbiddenFunction(t.value)
    ) {
      problems.add(
        'sql.forbidden_function',
        t.start,
        `${t.value} is not allowed: it has side effects or reaches files, the network or other sessions`,
      );
    }
    if (t.kind === 'word' && t.value.toLowerCase() === 'waitfor') {
      problems.add(
        'sql.forbidden_function',
        t.start,
        'WAITFOR is not allowed: an extract may not wait or sleep',
      );
    }
  }
}

/** Why an unparseable statement is probably unparseable: extra problems next to sql.parse_error. */
function diagnose(statement: readonly SqlToken[], problems: ProblemList): void {
  const words = statement.map((t) => (t.kind === 'word' ? t.value.toLowerCase() : ''));
  const first = statement[0];
  if (!first) return;
  const parenOpener: (string | undefined)[] = [];
  let sawSelect = false;
  const startsWithWrite = ['insert', 'merge', 'replace'].includes(words[0] ?? '');
  for (let i = 0; i < statement.length; i++) {
    const t = statement[i] as SqlToken;
    const w = words[i] ?? '';
    const prev = i > 0 ? (statement[i - 1] as SqlToken) : undefined;
    if (t.text === '(') parenOpener.push(prev?.kind === 'word' ? prev.value.toLowerCase() : prev?.text);
    if (t.text === ')') parenOpener.pop();
    if (!w) continue;
    const atStart = i === 0 || prev?.text === '(';
    if (PROCEDURE_KEYWORDS.has(w) && (atStart || w !== 'call')) {
      problems.add(
        'sql.procedure_call',
        t.start,
        `${t.text.toUpperCase()} runs a procedure: only SELECT is allowed`,
      );
    } else if (
      (atStart && STATEMENT_KEYWORDS.has(w) && statement[i + 1]?.text !== '(') ||
      STRONG_KEYWORDS.has(w) ||
      (w === 'update' && words[i - 1] !== 'for' && words[i - 1] !== 'key')
    ) {
      problems.add(
        'sql.not_read_only',
        t.start,
        `${t.text.toUpperCase()} is not read-only: only SELECT (or WITH … SELECT) is allowed`,
      );
    }
    if (w === 'for' && ['update', 'share', 'no', 'key'].includes(words[i + 1] ?? '')) {
      problems.add('sql.locking_clause', t.start, `FOR ${(words[i + 1] ?? '').toUpperCase()} takes locks`);
    }
    if (w === 'lock' && words[i + 1] === 'in')
      problems.add('sql.locking_clause', t.start, 'LOCK IN SHARE MODE takes locks');
    if (LOCKING_HINTS.has(w) && parenOpener.length > 0) {
      problems.add('sql.locking_clause', t.start, `table hint ${t.text.toUpperCase()} takes or holds locks`);
    }
    if (
      w === 'select' &&
      sawSelect &&
      parenOpener.length === 0 &&
      !['union', 'all', 'except', 'intersect', 'distinct'].includes(words[i - 1] ?? '') &&
      !(prev?.text === ')' && words[0] === 'with')
    ) {
      problems.add(
        'sql.multiple_statements',
        t.start,
        'a second SELECT starts here: only one statement is allowed',
      );
    }
    if (w === 'select') sawSelect = true;
    if (w === 'into' && sawSelect && !startsWithWrite) {
      problems.add('sql.select_into', t.start, 'SELECT … INTO writes data: an extract may only return rows');
    }
  }
}

/** Parameter uses with positions (from tokens) and list context (from the AST). */
function collectParameterUses(
  tokens: readonly SqlToken[],
  astParams: Map<AstNode, boolean>,
): SqlParameterUse[] {
  // A name counts as a list placeholder only if every one of its uses is the sole element of IN ( … ).
  const listOnly = new Map<string, boolean>();
  for (const [node, inList] of astParams) {
    const name = identText(node.value);
    if (name) listOnly.set(name, (listOnly.get(name) ?? true) && inList);
  }
  const uses: SqlParameterUse[] = [];
  for (const t of tokens) {
    if (t.kind === 'param') {
      uses.push({ name: t.value, line: t.line, column: t.column, inList: listOnly.get(t.value) ?? false });
    }
  }
  return uses;
}
