/**
 * Parses and validates an extract document (YAML or JSON) and lists EVERY problem at once, each
 * with its path (`datasets.0.columns.3.name`) and, where the text allows, its line and column
 * in the document; SQL problems also carry their position inside the SQL, and are mapped to
 * the document line when the SQL is a literal block scalar (`sql: |`) or a one-line string.
 *
 * The checks that span fields run on the raw data, not only on a schema-valid document, so a
 * typo in one column does not hide a SQL error in another dataset.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '@keystage/crypto';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { MIS_DIALECT, MIS_KINDS, type MisKind, type SqlDialect } from '../dialects.js';
import { lineage } from '../sql/lineage.js';
import { lexSql } from '../sql/sql-lexer.js';
import { type SqlParameterUse, validateSql } from '../sql/sql-validator.js';
import { ExtractDocument, PARAMETER_TYPES, type ParameterType } from './extract-document.schema.js';
import { jsonErrorOffset } from './json-error-position.js';
import { parameterBindNames } from './parameters.js';

export const EXTRACT_PROBLEM_CODES = [
  'document.syntax',
  'document.schema',
  'document.unknown_field',
  'document.unknown_mis',
  'document.duplicate_dataset',
  'document.duplicate_parameter',
  'document.duplicate_column',
  'document.key_not_in_output',
  'document.key_required',
  'document.parameter_unused',
  'document.parameter_undeclared',
  'document.parameter_not_list',
  'document.columns_mismatch',
  'document.unnamed_output',
  'document.wildcard_output',
] as const;
export type ExtractProblemCode =
  | (typeof EXTRACT_PROBLEM_CODES)[number]
  | `sql.${string}`
  | `lineage.${string}`;

export interface ExtractProblem {
  readonly code: ExtractProblemCode;
  /** Dotted path in the document (`datasets.0.sql`); empty for the document as a whole. */
  readonly path: string;
  readonly message: string;
  /** Position in the document text (1-based), when it can be found. */
  readonly line?: number;
  readonly column?: number;
  /** For SQL problems: the position inside the SQL text (1-based). */
  readonly sql?: { readonly line: number; readonly column: number };
}

export type ParseExtractResult =
  | {
      readonly ok: true;
      readonly document: ExtractDocument;
      /** sha256 (hex) of the canonical JSON of the normalised document. */
      readonly hash: string;
      /** Things worth a look that do not make the document invalid (e.g. lineage ambiguities). */
      readonly warnings: readonly ExtractProblem[];
    }
  | { readonly ok: false; readonly problems: readonly ExtractProblem[] };

export interface ParseExtractOptions {
  /** Default: JSON if the text starts with `{`, else YAML. */
  readonly format?: 'yaml' | 'json';
}

type PathSeg = string | number;

export function parseExtractDocument(text: string, options: ParseExtractOptions = {}): ParseExtractResult {
  const format = options.format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  const problems: ExtractProblem[] = [];
  const warnings: ExtractProblem[] = [];

  let jsonData: unknown;
  if (format === 'json') {
    try {
      jsonData = JSON.parse(text);
    } catch (err) {
      const at = jsonErrorOffset(text);
      const pos = at === undefined ? undefined : offsetToPosition(text, at);
      return {
        ok: false,
        problems: [
          { code: 'document.syntax', path: '', message: `invalid JSON: ${(err as Error).message}`, ...pos },
        ],
      };
    }
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  let data: unknown = jsonData;
  if (format === 'yaml') {
    if (doc.errors.length > 0) {
      return {
        ok: false,
        problems: doc.errors.map((e) => ({
          code: 'document.syntax' as const,
          path: '',
          message: e.message.split('\n')[0] ?? e.message,
          ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
        })),
      };
    }
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      return {
        ok: false,
        problems: [{ code: 'document.syntax', path: '', message: (err as Error).message }],
      };
    }
  }
  // For JSON the YAML tree only gives positions; if it disagrees, positions are left out.
  const tree = doc.errors.length === 0 ? doc.contents : null;
  const locate = new Locator(text, tree, lineCounter);

  const parsed = ExtractDocument.safeParse(data, {
    error: (issue) =>
      (issue.code === 'invalid_type' || issue.code === 'invalid_value') && issue.input === undefined
        ? 'required'
        : undefined,
  });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is PathSeg => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        const unknownMis = path[path.length - 1] === 'variants';
        for (const key of issue.keys) {
          problems.push({
            code: unknownMis ? 'document.unknown_mis' : 'document.unknown_field',
            path: joinPath([...path, key]),
            message: unknownMis
              ? `unknown MIS kind ${JSON.stringify(key)}: expected one of ${MIS_KINDS.join(', ')}`
              : `unknown field ${JSON.stringify(key)}`,
            ...locate.key([...path, key]),
          });
        }
        continue;
      }
      const isMis =
        path.length === 1 &&
        path[0] === 'mis' &&
        issue.code === 'invalid_value' &&
        issue.message !== 'required';
      problems.push({
        code: isMis ? 'document.unknown_mis' : 'document.schema',
        path: joinPath(path),
        message:
          issue.message === 'required'
            ? `${String(path[path.length - 1] ?? 'value')} is required`
            : issue.message,
        ...locate.node(path),
      });
    }
  }

  crossChecks(data, locate, problems, warnings);

  if (problems.length > 0 || !parsed.success) {
    return { ok: false, problems: sortProblems(problems) };
  }
  const document = normalise(parsed.data);
  const hash = createHash('sha256').update(canonicalJson(document)).digest('hex');
  return { ok: true, document, hash, warnings };
}

/** Trailing whitespace of SQL texts is not part of the meaning (`sql: |` vs `sql: |-`). */
function normalise(doc: ExtractDocument): ExtractDocument {
  return {
    ...doc,
    datasets: doc.datasets.map((d) => ({
      ...d,
      sql: d.sql.trimEnd(),
      ...(d.variants
        ? {
            variants: Object.fromEntries(
              Object.entries(d.variants).map(([k, v]) => [k, typeof v === 'string' ? v.trimEnd() : v]),
            ),
          }
        : {}),
    })),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const joinPath = (path: readonly PathSeg[]): string => path.join('.');

function crossChecks(
  data: unknown,
  locate: Locator,
  problems: ExtractProblem[],
  warnings: ExtractProblem[],
): void {
  const raw = isRecord(data) ? data : {};
  const mis =
    typeof raw.mis === 'string' && (MIS_KINDS as readonly string[]).includes(raw.mis)
      ? (raw.mis as MisKind)
      : undefined;
  const add = (code: ExtractProblemCode, path: PathSeg[], message: string, list = problems): void => {
    list.push({ code, path: joinPath(path), message, ...locate.node(path) });
  };

  // Parameters and the bind variables they provide.
  const params = Array.isArray(raw.parameters) ? raw.parameters : [];
  const bind = new Map<string, { index: number; name: string; type: ParameterType }>();
  const paramSeen = new Map<string, number>();
  params.forEach((p, j) => {
    if (!isRecord(p) || typeof p.name !== 'string') return;
    const first = paramSeen.get(p.name);
    if (first !== undefined) {
      add(
        'document.duplicate_parameter',
        ['parameters', j, 'name'],
        `parameter ${p.name} is declared twice (also parameters.${first})`,
      );
      return;
    }
    paramSeen.set(p.name, j);
    if (!(PARAMETER_TYPES as readonly unknown[]).includes(p.type)) return;
    const type = p.type as ParameterType;
    for (const b of parameterBindNames({ name: p.name, type })) bind.set(b, { index: j, name: p.name, type });
  });
  const used = new Set<string>();

  const datasets = Array.isArray(raw.datasets) ? raw.datasets : [];
  const datasetSeen = new Map<string, number>();
  datasets.forEach((d, i) => {
    if (!isRecord(d)) return;
    if (typeof d.name === 'string') {
      const first = datasetSeen.get(d.name);
      if (first !== undefined) {
        add(
          'document.duplicate_dataset',
          ['datasets', i, 'name'],
          `dataset ${d.name} is declared twice (also datasets.${first})`,
        );
      } else datasetSeen.set(d.name, i);
    }

    // Columns and keys.
    const columns = Array.isArray(d.columns) ? d.columns : [];
    const names: string[] = [];
    const columnSeen = new Map<string, number>();
    columns.forEach((c, j) => {
      if (!isRecord(c) || typeof c.name !== 'string') return;
      const first = columnSeen.get(c.name);
      if (first !== undefined) {
        add(
          'document.duplicate_column',
          ['datasets', i, 'columns', j, 'name'],
          `column ${c.name} is declared twice (also datasets.${i}.columns.${first})`,
        );
      } else columnSeen.set(c.name, j);
      names.push(c.name);
    });
    const key = Array.isArray(d.key) ? d.key : undefined;
    const keySeen = new Set<unknown>();
    key?.forEach((k, j) => {
      if (typeof k !== 'string') return;
      if (keySeen.has(k))
        add('document.key_not_in_output', ['datasets', i, 'key', j], `key column ${k} is listed twice`);
      keySeen.add(k);
      if (!columnSeen.has(k)) {
        add(
          'document.key_not_in_output',
          ['datasets', i, 'key', j],
          `key column ${k} is not one of the dataset's columns`,
        );
      }
    });
    const delta = d.delta ?? 'changes';
    if ((delta === 'changes' || delta === 'changes_and_deletions') && d.key === undefined) {
      add(
        'document.key_required',
        ['datasets', i],
        `delta "${delta}" needs key columns (key: [...]) or delta: none`,
      );
    }

    // The SQL, and the variants for other MIS kinds.
    const texts: { path: PathSeg[]; sql: string; dialect: SqlDialect }[] = [];
    if (typeof d.sql === 'string' && mis)
      texts.push({ path: ['datasets', i, 'sql'], sql: d.sql, dialect: MIS_DIALECT[mis] });
    if (isRecord(d.variants)) {
      for (const [kind, sql] of Object.entries(d.variants)) {
        if (typeof sql === 'string' && (MIS_KINDS as readonly string[]).includes(kind)) {
          texts.push({ path: ['datasets', i, 'variants', kind], sql, dialect: MIS_DIALECT[kind as MisKind] });
        }
      }
    }
    for (const t of texts) {
      const sqlProblem = (
        code: ExtractProblemCode,
        line: number,
        column: number,
        message: string,
        list = problems,
      ): void => {
        list.push({
          code,
          path: joinPath(t.path),
          message,
          sql: { line, column },
          ...(locate.inScalar(t.path, line, column) ?? locate.node(t.path)),
        });
      };
      const v = validateSql(t.sql, t.dialect);
      if (!v.ok) for (const p of v.problems) sqlProblem(p.code, p.line, p.column, p.message);

      const uses: readonly SqlParameterUse[] = v.ok
        ? v.parameterUses
        : lexSql(t.sql, t.dialect)
            .tokens.filter((tok) => tok.kind === 'param')
            .map((tok) => ({ name: tok.value, line: tok.line, column: tok.column, inList: true }));
      const reported = new Set<string>();
      for (const u of uses) {
        const declared = bind.get(u.name);
        if (!declared) {
          if (!reported.has(u.name)) {
            sqlProblem(
              'document.parameter_undeclared',
              u.line,
              u.column,
              `:${u.name} is used but no parameter provides it${suggest(u.name, bind)}`,
            );
          }
          reported.add(u.name);
          continue;
        }
        used.add(declared.name);
        if (declared.type === 'string_list' && !u.inList && !reported.has(u.name)) {
          reported.add(u.name);
          sqlProblem(
            'document.parameter_not_list',
            u.line,
            u.column,
            `:${u.name} is a string list: use it only as IN (:${u.name})`,
          );
        }
      }

      if (v.ok) checkOutputs(t, names, d, i, problems, warnings, locate);
    }
  });

  params.forEach((p, j) => {
    if (!isRecord(p) || typeof p.name !== 'string' || paramSeen.get(p.name) !== j) return;
    if (!used.has(p.name) && (PARAMETER_TYPES as readonly unknown[]).includes(p.type)) {
      const names = parameterBindNames({ name: p.name, type: p.type as ParameterType });
      add(
        'document.parameter_unused',
        ['parameters', j, 'name'],
        `parameter ${p.name} is declared but no SQL uses ${names.map((n) => `:${n}`).join(' or ')}`,
      );
    }
  });
}

function checkOutputs(
  t: { path: PathSeg[]; sql: string; dialect: SqlDialect },
  declared: readonly string[],
  dataset: Record<string, unknown>,
  i: number,
  problems: ExtractProblem[],
  warnings: ExtractProblem[],
  locate: Locator,
): void {
  const l = lineage(t.sql, t.dialect);
  const path = joinPath(t.path);
  for (const p of l.problems) {
    if (p.code === 'lineage.wildcard') continue; // reported below as an error
    warnings.push({
      code: p.code,
      path,
      message: p.message,
      ...(p.line !== undefined && p.column !== undefined
        ? { sql: { line: p.line, column: p.column }, ...locate.inScalar(t.path, p.line, p.column) }
        : locate.node(t.path)),
    });
  }
  const outputs = l.outputs.map((o) => o.name);
  if (l.outputs.some((o) => o.sources.some((s) => s.column === '*'))) {
    problems.push({
      code: 'document.wildcard_output',
      path,
      message:
        'list the output columns: SELECT * would send whatever the table holds, not what the school agreed to',
      ...locate.node(t.path),
    });
    return;
  }
  outputs.forEach((name, k) => {
    if (name === null) {
      problems.push({
        code: 'document.unnamed_output',
        path,
        message: `output column ${k + 1} is an expression without a name: add AS ${declared[k] ?? 'name'}`,
        ...locate.node(t.path),
      });
    }
  });
  if (outputs.some((n) => n === null) || !Array.isArray(dataset.columns)) return;
  const same = outputs.length === declared.length && outputs.every((n, k) => n === declared[k]);
  if (!same) {
    const missing = declared.filter((n) => !outputs.includes(n));
    const extra = outputs.filter((n): n is string => n !== null && !declared.includes(n));
    const detail = [
      missing.length > 0 ? `declared but not returned: ${missing.join(', ')}` : '',
      extra.length > 0 ? `returned but not declared: ${extra.join(', ')}` : '',
      missing.length === 0 && extra.length === 0 ? 'the order differs' : '',
    ]
      .filter(Boolean)
      .join('; ');
    problems.push({
      code: 'document.columns_mismatch',
      path,
      message: `the SQL returns (${outputs.join(', ')}) but datasets.${i}.columns declares (${declared.join(', ')}): ${detail}`,
      ...locate.node(t.path),
    });
  }
}

function suggest(name: string, bind: ReadonlyMap<string, unknown>): string {
  const close = [...bind.keys()].find(
    (b) => b.toLowerCase() === name.toLowerCase() || b.startsWith(name) || name.startsWith(b),
  );
  return close ? ` (did you mean :${close}?)` : '';
}

function sortProblems(problems: ExtractProblem[]): ExtractProblem[] {
  return problems
    .map((p, index) => ({ p, index }))
    .sort(
      (a, b) =>
        (a.p.line ?? Number.MAX_SAFE_INTEGER) - (b.p.line ?? Number.MAX_SAFE_INTEGER) ||
        (a.p.column ?? 0) - (b.p.column ?? 0) ||
        a.index - b.index,
    )
    .map((x) => x.p);
}

function offsetToPosition(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Finds document positions for paths, using the YAML tree (which also parses JSON). */
class Locator {
  private readonly lines: string[];

  constructor(
    private readonly text: string,
    private readonly root: unknown,
    private readonly counter: LineCounter,
  ) {
    this.lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  }

  private pos(offset: number | undefined): { line: number; column: number } | Record<string, never> {
    if (offset === undefined) return {};
    const p = this.counter.linePos(offset);
    return { line: p.line, column: p.col };
  }

  /** The node at `path`, or the nearest ancestor that exists; with the pair when the last step is a key. */
  private walk(path: readonly PathSeg[]): {
    node: YamlNode | undefined;
    keyNode?: YamlNode | undefined;
    complete: boolean;
  } {
    let node = this.root as YamlNode | undefined;
    let keyNode: YamlNode | undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
        );
        if (!pair) return { node, complete: false };
        keyNode = pair.key as YamlNode;
        node = (pair.value as YamlNode | null) ?? keyNode;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as YamlNode | undefined;
        if (!item) return { node, complete: false };
        keyNode = undefined;
        node = item;
      } else {
        return { node, complete: false };
      }
    }
    return { node, keyNode, complete: true };
  }

  node(path: readonly PathSeg[]): { line: number; column: number } | Record<string, never> {
    const { node } = this.walk(path);
    return this.pos(node?.range?.[0]);
  }

  key(path: readonly PathSeg[]): { line: number; column: number } | Record<string, never> {
    const { node, keyNode, complete } = this.walk(path);
    return this.pos((complete ? keyNode : undefined)?.range?.[0] ?? node?.range?.[0]);
  }

  /** Maps a position inside a string value to the document, when the text lets us prove it. */
  inScalar(
    path: readonly PathSeg[],
    line: number,
    column: number,
  ): { line: number; column: number } | undefined {
    const { node, complete } = this.walk(path);
    if (!complete || !isScalar(node) || typeof node.value !== 'string' || !node.range) return undefined;
    const value = node.value;
    const valueLines = value.split('\n');
    const target = valueLines[line - 1];
    if (target === undefined) return undefined;
    const start = this.counter.linePos(node.range[0]);
    if (node.type === 'BLOCK_LITERAL') {
      // Content starts on the line after the `|` header, indented; check the line really matches.
      const firstContent = valueLines.findIndex((l) => l.trim().length > 0);
      const firstSource = this.lines[start.line + firstContent];
      if (firstContent < 0 || firstSource === undefined) return undefined;
      const indent = firstSource.length - firstSource.trimStart().length;
      const source = this.lines[start.line + line - 1];
      if (source === undefined || (target.length > 0 && source.slice(indent) !== target)) return undefined;
      return { line: start.line + line, column: indent + column };
    }
    if (
      valueLines.length === 1 &&
      (node.type === 'PLAIN' || node.type === 'QUOTE_SINGLE' || node.type === 'QUOTE_DOUBLE')
    ) {
      const skip = node.type === 'PLAIN' ? 0 : 1;
      if (this.text.slice(node.range[0] + skip, node.range[0] + skip + value.length) !== value)
        return undefined;
      return { line: start.line, column: start.col + skip + column - 1 };
    }
    return undefined;
  }
}
