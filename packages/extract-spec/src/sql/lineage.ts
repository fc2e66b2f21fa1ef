/**
 * Column lineage: every table and column a SELECT reads, and what for — in the select list
 * and also in joins, filters, grouping, ordering, subqueries and CTEs ("used internally"),
 * with aliases resolved to real (schema-qualified) tables. The permission report and the
 * data agreements are built on it, so it errs on the side of reporting too much: a column it
 * cannot place is attributed to every table it could belong to, and a problem says so.
 */
import type { SqlDialect } from '../dialects.js';
import { type AstNode, functionName, identText, isNode, nodeType, subStatement } from './ast.js';
import type { SqlToken } from './sql-lexer.js';
import { parseForAnalysis } from './sql-validator.js';

export const COLUMN_USAGES = ['output', 'filter', 'join', 'group', 'order', 'subquery'] as const;
export type ColumnUsage = (typeof COLUMN_USAGES)[number];

export interface ColumnRef {
  /** Schema-qualified when the SQL qualifies it (`sims.stud_student`), lower case. */
  readonly table: string;
  /** Lower case; `*` for "all columns" when no catalogue could expand a wildcard. */
  readonly column: string;
}

export interface LineageColumn extends ColumnRef {
  readonly usage: readonly ColumnUsage[];
}

export interface LineageOutput {
  /** The output column's name (alias or column name); null for an unnamed expression. */
  readonly name: string | null;
  /** The table columns its value is computed from (empty for literals and parameters). */
  readonly sources: readonly ColumnRef[];
}

export const LINEAGE_PROBLEM_CODES = [
  'lineage.parse_error',
  'lineage.not_select',
  'lineage.wildcard',
  'lineage.ambiguous_column',
  'lineage.unknown_column',
  'lineage.unknown_table',
  'lineage.opaque_source',
] as const;
export type LineageProblemCode = (typeof LINEAGE_PROBLEM_CODES)[number];

export interface LineageProblem {
  readonly code: LineageProblemCode;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export interface Lineage {
  /** Every table read, sorted. */
  readonly tables: readonly string[];
  /** Every column read with its usages, sorted by table then column. */
  readonly columns: readonly LineageColumn[];
  /** The statement's output columns, in order, with their sources. */
  readonly outputs: readonly LineageOutput[];
  readonly problems: readonly LineageProblem[];
}

/** Table name (qualified or bare, any case) → its column names; used to expand `*` and place bare columns. */
export type TableCatalogue = Readonly<Record<string, readonly string[]>>;

export function lineage(sql: string, dialect: SqlDialect, catalogue?: TableCatalogue): Lineage {
  const parsed = parseForAnalysis(sql, dialect);
  if (!parsed.parse.ok) {
    const at = parsed.parse.location;
    return {
      tables: [],
      columns: [],
      outputs: [],
      problems: [
        {
          code: 'lineage.parse_error',
          message: 'the SQL cannot be parsed, so its lineage is unknown',
          ...(at ? { line: at.line, column: at.column } : {}),
        },
      ],
    };
  }
  const root = parsed.parse.statements[0];
  const analyzer = new Analyzer(catalogue, parsed.lex.tokens, dialect);
  if (nodeType(root) !== 'select') {
    analyzer.problem('lineage.not_select', 'only a SELECT has a lineage (a procedure call is opaque)');
    return analyzer.result([]);
  }
  const top = analyzer.query(root as AstNode, undefined, new Map(), false, ['output']);
  return analyzer.result(top.outputs);
}

interface Source {
  readonly table: string;
  readonly column: string;
  /** Read inside a subquery or CTE. */
  readonly nested: boolean;
}

interface DerivedOutput {
  readonly name: string | null;
  readonly sources: Source[];
  consumed: boolean;
}

interface Derived {
  readonly outputs: DerivedOutput[];
  /** Base tables whose `*` passes through this derived table unexpanded. */
  readonly stars: string[];
}

interface Relation {
  readonly alias: string;
  readonly base?: string;
  readonly derived?: Derived;
}

interface Scope {
  readonly relations: Relation[];
  readonly parent: Scope | undefined;
}

interface Ctx {
  readonly usages: readonly ColumnUsage[];
  readonly nested: boolean;
  /** When set, column references are collected here (select-list values) instead of recorded. */
  readonly sink?: Source[];
  readonly ctes: Map<string, Derived>;
}

/** T-SQL functions whose first argument is a date part (`day`, `mm` …), which the grammar reads as a column. */
const DATEPART_FUNCTIONS = new Set([
  'dateadd',
  'datediff',
  'datediff_big',
  'datepart',
  'datename',
  'datetrunc',
  'date_bucket',
]);

const lower = (s: string | undefined): string | undefined => s?.toLowerCase();

class Analyzer {
  private readonly uses = new Map<string, { table: string; column: string; usage: Set<ColumnUsage> }>();
  private readonly tables = new Set<string>();
  private readonly problems: LineageProblem[] = [];
  private readonly problemKeys = new Set<string>();
  private readonly deferred: Derived[] = [];
  private readonly catalogue: Map<string, readonly string[]>;

  constructor(
    catalogue: TableCatalogue | undefined,
    private readonly tokens: readonly SqlToken[],
    private readonly dialect: SqlDialect,
  ) {
    this.catalogue = new Map(
      Object.entries(catalogue ?? {}).map(([k, v]) => [k.toLowerCase(), v.map((c) => c.toLowerCase())]),
    );
  }

  problem(code: LineageProblemCode, message: string, near?: string): void {
    const key = `${code}:${message}`;
    if (this.problemKeys.has(key)) return;
    this.problemKeys.add(key);
    const token = near ? this.tokens.find((t) => t.value.toLowerCase() === near.toLowerCase()) : undefined;
    this.problems.push({ code, message, ...(token ? { line: token.line, column: token.column } : {}) });
  }

  result(outputs: readonly DerivedOutput[]): Lineage {
    // Columns selected by a CTE or derived table that nothing consumed are still read.
    for (const d of this.deferred) {
      for (const o of d.outputs)
        if (!o.consumed) for (const s of o.sources) this.record(s, ['subquery'], true);
    }
    const columns = [...this.uses.values()]
      .map((u) => ({
        table: u.table,
        column: u.column,
        usage: COLUMN_USAGES.filter((x) => u.usage.has(x)),
      }))
      .sort((a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column));
    return {
      tables: [...this.tables].sort(),
      columns,
      outputs: outputs.map((o) => ({ name: o.name, sources: dedupe(o.sources) })),
      problems: this.problems,
    };
  }

  private record(source: Source, usages: readonly ColumnUsage[], nested: boolean): void {
    const key = `${source.table}\u0000${source.column}`;
    let use = this.uses.get(key);
    if (!use) {
      use = { table: source.table, column: source.column, usage: new Set() };
      this.uses.set(key, use);
    }
    for (const u of usages) use.usage.add(u);
    if (nested || source.nested) use.usage.add('subquery');
  }

  private catalogueColumns(table: string): readonly string[] | undefined {
    const exact = this.catalogue.get(table);
    if (exact) return exact;
    const bare = table.split('.').pop() ?? table;
    for (const [k, v] of this.catalogue) if ((k.split('.').pop() ?? k) === bare) return v;
    return undefined;
  }

  /**
   * Analyses one query block. With `selectUsage` its select-list columns are recorded with
   * those usages; without (a CTE or derived table) they are returned, to be recorded when an
   * outer query uses them.
   */
  query(
    node: AstNode,
    parent: Scope | undefined,
    outerCtes: Map<string, Derived>,
    nested: boolean,
    selectUsage: readonly ColumnUsage[] | null,
  ): Derived {
    const ctes = new Map(outerCtes);
    for (const w of Array.isArray(node.with) ? node.with : []) {
      if (!isNode(w)) continue;
      const body = subStatement(w.stmt) ?? (isNode(w.stmt) ? w.stmt : undefined);
      const name = lower(identText(w.name));
      if (!body || !name) continue;
      const d = this.query(body, parent, ctes, true, null);
      const renames = Array.isArray(w.columns)
        ? w.columns.map((c) => lower(identText(isNode(c) ? c.column : c)))
        : [];
      let renamed = d;
      if (renames.length > 0) {
        // WITH x(a, b) AS (…): the column list names the outputs.
        renamed = {
          outputs: d.outputs.map((o, i) => ({
            name: renames[i] ?? o.name,
            sources: o.sources,
            consumed: false,
          })),
          stars: d.stars,
        };
        this.deferred.splice(this.deferred.indexOf(d), 1, renamed);
      }
      ctes.set(name, renamed);
    }

    const scope: Scope = { relations: [], parent };
    const ctx: Ctx = { usages: [], nested, ctes };
    const fromItems = Array.isArray(node.from) ? node.from.filter(isNode) : [];
    for (const item of fromItems) this.addRelation(item, scope, parent, ctes);
    fromItems.forEach((item, index) => {
      if (item.on) this.expr(item.on, scope, { ...ctx, usages: ['join'] });
      if (Array.isArray(item.using)) {
        for (const u of item.using) {
          const column = lower(identText(u));
          if (!column) continue;
          const right = scope.relations[index];
          const left = scope.relations.slice(0, index).reverse();
          for (const rel of [right, ...left].filter((r): r is Relation => r !== undefined).slice(0, 2)) {
            for (const s of this.fromRelation(rel, column, nested)) this.record(s, ['join'], nested);
          }
        }
      }
    });

    // Select list.
    const outputs: DerivedOutput[] = [];
    const stars: string[] = [];
    const columns =
      node.columns === '*' ? [{ expr: { type: 'column_ref', table: null, column: '*' } }] : node.columns;
    for (const item of Array.isArray(columns) ? columns : []) {
      if (!isNode(item)) continue;
      const expr = isNode(item.expr) ? item.expr : item;
      if (nodeType(expr) === 'column_ref' && identText(expr.column) === '*') {
        this.expandStar(lower(identText(expr.table)), scope, outputs, stars, nested);
        continue;
      }
      const sink: Source[] = [];
      this.expr(expr, scope, { ...ctx, usages: [], sink });
      const alias = identText(item.as);
      const name = alias ?? (nodeType(expr) === 'column_ref' ? identText(expr.column) : undefined) ?? null;
      outputs.push({ name: name === null ? null : name, sources: sink, consumed: false });
    }

    if (node.where) this.expr(node.where, scope, { ...ctx, usages: ['filter'] });
    const groupby = isNode(node.groupby) ? node.groupby.columns : node.groupby;
    for (const g of Array.isArray(groupby) ? groupby : [])
      this.orderLike(g, scope, outputs, { ...ctx, usages: ['group'] });
    if (node.having) this.expr(node.having, scope, { ...ctx, usages: ['filter'] });
    for (const o of Array.isArray(node.orderby) ? node.orderby : []) {
      this.orderLike(isNode(o) ? o.expr : o, scope, outputs, { ...ctx, usages: ['order'] });
    }
    for (const key of ['limit', 'top', 'qualify'])
      if (node[key]) this.expr(node[key], scope, { ...ctx, usages: ['filter'] });

    // UNION / EXCEPT / INTERSECT: later branches add sources position by position.
    if (isNode(node._next)) {
      const next = this.query(node._next, parent, ctes, nested, selectUsage);
      next.outputs.forEach((o, i) => {
        o.consumed = true;
        outputs[i]?.sources.push(...o.sources);
      });
      stars.push(...next.stars);
    }

    const derived: Derived = { outputs, stars };
    if (selectUsage) {
      for (const o of outputs) {
        o.consumed = true;
        for (const s of o.sources) this.record(s, selectUsage, nested);
      }
    } else {
      this.deferred.push(derived);
    }
    return derived;
  }

  private addRelation(
    item: AstNode,
    scope: Scope,
    parent: Scope | undefined,
    ctes: Map<string, Derived>,
  ): void {
    const alias = lower(identText(item.as));
    const sub = subStatement(item.expr);
    if (sub) {
      const d = this.query(sub, parent, ctes, true, null);
      scope.relations.push({ alias: alias ?? '', derived: d });
      return;
    }
    if (isNode(item.expr)) {
      // A table-valued function (OPENJSON, unnest …): its arguments are read, its columns unknown.
      const fn = functionName(item.expr) ?? 'a table function';
      this.problem('lineage.opaque_source', `the columns of ${fn} cannot be traced`, fn);
      this.expr(item.expr, scope, { usages: ['join'], nested: true, ctes });
      scope.relations.push({ alias: alias ?? '' });
      return;
    }
    const table = lower(identText(item.table));
    if (!table || nodeType(item) === 'dual') return;
    // T-SQL: `schema.table` arrives as { db: schema }, `db.schema.table` as { db, schema },
    // a linked server's four-part name with { server } too. Other databases and servers stay in
    // the name, so the permission mapping does not take them for this school's tables.
    const schema = lower(identText(item.schema) ?? identText(item.db));
    const database = item.schema ? lower(identText(item.db)) : undefined;
    const server = lower(identText(item.server));
    const cte = schema ? undefined : ctes.get(table);
    if (cte) {
      scope.relations.push({ alias: alias ?? table, derived: cte });
      return;
    }
    const base = [server, database, schema, table].filter((x) => x).join('.');
    this.tables.add(base);
    scope.relations.push({ alias: alias ?? table, base });
  }

  private expandStar(
    qualifier: string | undefined,
    scope: Scope,
    outputs: DerivedOutput[],
    stars: string[],
    nested: boolean,
  ): void {
    const relations = qualifier ? scope.relations.filter((r) => r.alias === qualifier) : scope.relations;
    if (qualifier && relations.length === 0)
      this.problem('lineage.unknown_table', `unknown table ${qualifier}`, qualifier);
    for (const rel of relations) {
      if (rel.base) {
        const known = this.catalogueColumns(rel.base);
        if (known) {
          for (const column of known) {
            outputs.push({ name: column, sources: [{ table: rel.base, column, nested }], consumed: false });
          }
        } else {
          this.problem(
            'lineage.wildcard',
            `${qualifier ? `${qualifier}.*` : '*'} reads all columns of ${rel.base}: list them, or give a catalogue`,
            '*',
          );
          outputs.push({ name: null, sources: [{ table: rel.base, column: '*', nested }], consumed: false });
          stars.push(rel.base);
        }
      } else if (rel.derived) {
        for (const o of rel.derived.outputs) {
          o.consumed = true;
          outputs.push({
            name: o.name,
            sources: o.sources.map((s) => ({ ...s, nested: true })),
            consumed: false,
          });
        }
        stars.push(...rel.derived.stars);
      }
    }
  }

  /** GROUP BY / ORDER BY items: an output position (`ORDER BY 2`) or alias, else an expression. */
  private orderLike(item: unknown, scope: Scope, outputs: readonly DerivedOutput[], ctx: Ctx): void {
    if (!isNode(item)) return;
    if (nodeType(item) === 'number' && typeof item.value === 'number') {
      for (const s of outputs[item.value - 1]?.sources ?? []) this.record(s, ctx.usages, ctx.nested);
      return;
    }
    if (nodeType(item) === 'column_ref' && !identText(item.table)) {
      const name = lower(identText(item.column));
      const output = outputs.find((o) => o.name !== null && o.name.toLowerCase() === name);
      if (output && !this.resolvesInScope(name ?? '', scope)) {
        for (const s of output.sources) this.record(s, ctx.usages, ctx.nested);
        return;
      }
    }
    this.expr(item, scope, ctx);
  }

  private resolvesInScope(column: string, scope: Scope): boolean {
    return scope.relations.some(
      (r) =>
        (r.base !== undefined && (this.catalogueColumns(r.base)?.includes(column) ?? false)) ||
        (r.derived?.outputs.some((o) => o.name?.toLowerCase() === column) ?? false),
    );
  }

  /** Walks an expression: column references are recorded (or sunk), subqueries analysed. */
  private expr(value: unknown, scope: Scope, ctx: Ctx): void {
    if (Array.isArray(value)) {
      for (const v of value) this.expr(v, scope, ctx);
      return;
    }
    if (!isNode(value)) return;
    const sub = subStatement(value) ?? (nodeType(value) === 'select' ? value : undefined);
    if (sub) {
      if (ctx.sink) {
        const d = this.query(sub, scope, ctx.ctes, true, null);
        for (const o of d.outputs) {
          o.consumed = true;
          ctx.sink.push(...o.sources.map((s) => ({ ...s, nested: true })));
        }
      } else {
        this.query(sub, scope, ctx.ctes, true, ctx.usages);
      }
      return;
    }
    const type = nodeType(value);
    if (
      type === 'function' &&
      this.dialect === 'transactsql' &&
      DATEPART_FUNCTIONS.has(functionName(value)?.toLowerCase() ?? '')
    ) {
      // DATEADD(day, …): the first argument is a date part keyword, not a column.
      const args = isNode(value.args) && Array.isArray(value.args.value) ? value.args.value : [];
      this.expr(nodeType(args[0]) === 'column_ref' ? args.slice(1) : args, scope, ctx);
      return;
    }
    if (type === 'column_ref') {
      for (const s of this.resolve(value, scope, ctx.nested)) {
        if (ctx.sink) ctx.sink.push(s);
        else this.record(s, ctx.usages, ctx.nested);
      }
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key === 'loc' || typeof child !== 'object' || child === null) continue;
      if (key === 'over' && isNode(child)) {
        // Window clauses partition and order; they do not produce the value.
        const spec = isNode(child.as_window_specification)
          ? (child.as_window_specification.window_specification ?? child)
          : child;
        const w = isNode(spec) ? spec : child;
        this.expr(w.partitionby, scope, { ...ctx, usages: ['group'], sink: undefined });
        this.expr(w.orderby, scope, { ...ctx, usages: ['order'], sink: undefined });
        continue;
      }
      this.expr(child, scope, ctx);
    }
  }

  private resolve(ref: AstNode, scope: Scope, nested: boolean): Source[] {
    const column = lower(identText(ref.column));
    if (!column || column.startsWith('@')) return [];
    const qualifier = lower(identText(ref.table));
    if (column === '*') {
      // `COUNT(t.*)` and friends: all columns of the relation.
      const rels = qualifier ? this.find(scope, qualifier) : scope.relations;
      return (rels ?? []).flatMap((r) => (r.base ? [{ table: r.base, column: '*', nested }] : []));
    }
    if (qualifier) {
      const rels = this.find(scope, qualifier);
      if (!rels) {
        this.problem(
          'lineage.unknown_table',
          `unknown table or alias ${qualifier} (for column ${column})`,
          qualifier,
        );
        return [];
      }
      return rels.flatMap((r) => this.fromRelation(r, column, nested));
    }
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      if (s.relations.length === 0) continue;
      if (s.relations.length === 1) return this.fromRelation(s.relations[0] as Relation, column, nested);
      const definite = s.relations.filter(
        (r) =>
          (r.base !== undefined && (this.catalogueColumns(r.base)?.includes(column) ?? false)) ||
          (r.derived?.outputs.some((o) => o.name?.toLowerCase() === column) ?? false),
      );
      if (definite.length === 1) return this.fromRelation(definite[0] as Relation, column, nested);
      const possible = s.relations.filter((r) => r.base !== undefined && !this.catalogueColumns(r.base));
      if (definite.length === 0 && possible.length === 0) continue;
      const candidates = definite.length > 0 ? definite : possible;
      this.problem(
        'lineage.ambiguous_column',
        `column ${column} could belong to ${candidates.map((r) => r.base ?? r.alias).join(', ')}: qualify it`,
        column,
      );
      return candidates.flatMap((r) => this.fromRelation(r, column, nested));
    }
    this.problem('lineage.unknown_column', `column ${column} matches no table in scope`, column);
    return [];
  }

  private find(scope: Scope, qualifier: string): Relation[] | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const rels = s.relations.filter((r) => r.alias === qualifier);
      if (rels.length > 0) return rels;
    }
    // `sims.stud_student.col` without an alias.
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const rels = s.relations.filter((r) => r.base?.split('.').pop() === qualifier);
      if (rels.length > 0) return rels;
    }
    return undefined;
  }

  private fromRelation(rel: Relation, column: string, nested: boolean): Source[] {
    if (rel.base) {
      const known = this.catalogueColumns(rel.base);
      if (known && !known.includes(column)) {
        this.problem('lineage.unknown_column', `${rel.base} has no column ${column}`, column);
      }
      return [{ table: rel.base, column, nested }];
    }
    if (rel.derived) {
      const output = rel.derived.outputs.find((o) => o.name?.toLowerCase() === column);
      if (output) {
        output.consumed = true;
        return output.sources.map((s) => ({ ...s, nested: true }));
      }
      if (rel.derived.stars.length > 0) {
        return rel.derived.stars.map((table) => ({ table, column, nested: true }));
      }
      this.problem(
        'lineage.unknown_column',
        `${rel.alias || 'the subquery'} has no column ${column}`,
        column,
      );
    }
    return [];
  }
}

function dedupe(sources: readonly Source[]): ColumnRef[] {
  const seen = new Set<string>();
  const out: ColumnRef[] = [];
  for (const s of sources) {
    const key = `${s.table}\u0000${s.column}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ table: s.table, column: s.column });
  }
  return out;
}
