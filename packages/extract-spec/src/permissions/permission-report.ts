/**
 * Minimum necessary MIS permissions: per extract, the smallest set of permission groups that
 * can read every column its SQL reads (select list AND joins, filters, subqueries); per school,
 * the smallest set for all its extracts together, with which extract needs each group; and
 * "what breaks" when a group is taken away.
 *
 * A column's requirement is a list of clauses ("one of these groups"), all of which must be
 * met; the smallest set is found exactly (a hitting set over at most a few dozen groups, by
 * increasing size), ties going to the groups listed first (narrowest) in the mapping.
 */
import type { ColumnRef, ColumnUsage, Lineage } from '../sql/lineage.js';
import { COLUMN_USAGES } from '../sql/lineage.js';
import { mappedTable, type PermissionMapping } from './permission-mapping.js';

export interface ColumnRequirement extends ColumnRef {
  readonly usage: readonly ColumnUsage[];
  /** All clauses must be met; a clause is met by any one of its groups. */
  readonly clauses: readonly (readonly string[])[];
  readonly reasons: readonly string[];
}

export interface UsedColumn extends ColumnRef {
  readonly usage: readonly ColumnUsage[];
}

export interface GroupNeed {
  readonly group: string;
  readonly description: string;
  /** The columns that need this group: no other group of the set can read them. */
  readonly columns: readonly UsedColumn[];
  /** Columns this group can read that another group of the set could read too. */
  readonly shared: readonly UsedColumn[];
}

export interface PermissionReport {
  /** The mapping used, e.g. `sims-v1`. */
  readonly mapping: string;
  /** The smallest set of groups, in the mapping's order. */
  readonly groups: readonly GroupNeed[];
  readonly requirements: readonly ColumnRequirement[];
  /** Tables and columns the mapping does not know: the report cannot vouch for them. */
  readonly unmappedTables: readonly string[];
  readonly unmappedColumns: readonly ColumnRef[];
  /** True when every table and column read is mapped. */
  readonly complete: boolean;
  /** The mapping's group order (narrowest first), kept for aggregation. */
  readonly preference: readonly string[];
  readonly descriptions: Readonly<Record<string, string>>;
}

/** A table read without any column (`SELECT COUNT(*) FROM t`): it still needs the table's groups. */
export const ROWS_ONLY = '(rows)';

export function requiredPermissions(
  lineage: Pick<Lineage, 'tables' | 'columns'>,
  mapping: PermissionMapping,
): PermissionReport {
  const requirements: ColumnRequirement[] = [];
  const unmappedTables = new Set<string>();
  const unmappedColumns: ColumnRef[] = [];
  const push = (table: string, column: string, usage: readonly ColumnUsage[]): void => {
    const entry = mappedTable(mapping, table);
    if (!entry) {
      unmappedTables.add(table);
      return;
    }
    if (column === ROWS_ONLY) {
      requirements.push({ table, column, usage, clauses: [entry.groups], reasons: [] });
      return;
    }
    const rule = entry.columns.get(column.toLowerCase());
    if (!rule) {
      unmappedColumns.push({ table, column });
      return;
    }
    requirements.push({ table, column, usage, clauses: rule.clauses, reasons: rule.reasons });
  };
  const tablesWithColumns = new Set<string>();
  for (const c of lineage.columns) {
    tablesWithColumns.add(c.table);
    if (c.column === '*') {
      // All columns of the table (no catalogue was given to the lineage).
      const entry = mappedTable(mapping, c.table);
      if (!entry) unmappedTables.add(c.table);
      else for (const column of entry.columns.keys()) push(c.table, column, c.usage);
      continue;
    }
    push(c.table, c.column, c.usage);
  }
  for (const t of lineage.tables) if (!tablesWithColumns.has(t)) push(t, ROWS_ONLY, ['filter']);

  const chosen = minimumGroups(
    requirements.flatMap((r) => r.clauses),
    mapping.groups,
  );
  return {
    mapping: mapping.id,
    groups: assign(chosen, requirements, mapping.groupDescriptions),
    requirements: mergeRequirements(requirements),
    unmappedTables: [...unmappedTables].sort(),
    unmappedColumns: dedupeRefs(unmappedColumns),
    complete: unmappedTables.size === 0 && unmappedColumns.length === 0,
    preference: mapping.groups,
    descriptions: mapping.groupDescriptions,
  };
}

/** Several lineages (one per dataset of an extract) as one. */
export function mergeLineages(
  lineages: readonly Pick<Lineage, 'tables' | 'columns'>[],
): Pick<Lineage, 'tables' | 'columns'> {
  const tables = new Set<string>();
  const columns = new Map<string, { table: string; column: string; usage: Set<ColumnUsage> }>();
  for (const l of lineages) {
    for (const t of l.tables) tables.add(t);
    for (const c of l.columns) {
      const key = `${c.table}\u0000${c.column}`;
      const entry = columns.get(key) ?? { table: c.table, column: c.column, usage: new Set<ColumnUsage>() };
      for (const u of c.usage) entry.usage.add(u);
      columns.set(key, entry);
    }
  }
  return {
    tables: [...tables].sort(),
    columns: [...columns.values()]
      .map((c) => ({ table: c.table, column: c.column, usage: COLUMN_USAGES.filter((u) => c.usage.has(u)) }))
      .sort((a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column)),
  };
}

export interface ExtractPermissions {
  /** How the school knows the extract (name and version, partner …). */
  readonly name: string;
  readonly report: PermissionReport;
}

export interface AggregateGroup {
  readonly group: string;
  readonly description: string;
  readonly extracts: readonly { readonly extract: string; readonly columns: readonly UsedColumn[] }[];
}

export interface AggregateReport {
  /** The smallest set of groups that serves every extract, with who needs each. */
  readonly groups: readonly AggregateGroup[];
  /** Each extract's own smallest set. */
  readonly perExtract: readonly { readonly extract: string; readonly groups: readonly string[] }[];
  readonly unmapped: readonly {
    readonly extract: string;
    readonly table: string;
    readonly column?: string;
  }[];
  readonly complete: boolean;
}

export function aggregatePermissions(extracts: readonly ExtractPermissions[]): AggregateReport {
  const preference = mergePreference(extracts.map((e) => e.report.preference));
  const descriptions = Object.assign({}, ...extracts.map((e) => e.report.descriptions)) as Record<
    string,
    string
  >;
  const chosen = minimumGroups(
    extracts.flatMap((e) => e.report.requirements.flatMap((r) => r.clauses)),
    preference,
  );
  const groups: AggregateGroup[] = chosen.map((group) => ({
    group,
    description: descriptions[group] ?? '',
    extracts: extracts
      .map((e) => ({
        extract: e.name,
        columns:
          assign(chosen, e.report.requirements, descriptions).find((g) => g.group === group)?.columns ?? [],
      }))
      .filter((x) => x.columns.length > 0),
  }));
  const unmapped = extracts.flatMap((e) => [
    ...e.report.unmappedTables.map((table) => ({ extract: e.name, table })),
    ...e.report.unmappedColumns.map((c) => ({ extract: e.name, table: c.table, column: c.column })),
  ]);
  return {
    groups,
    perExtract: extracts.map((e) => ({ extract: e.name, groups: e.report.groups.map((g) => g.group) })),
    unmapped,
    complete: unmapped.length === 0,
  };
}

export interface BrokenColumn extends UsedColumn {
  /** The clauses no remaining group meets: any one group of each would mend it. */
  readonly missing: readonly (readonly string[])[];
}

export interface BreakReport {
  readonly group: string;
  readonly granted: readonly string[];
  readonly remaining: readonly string[];
  readonly broken: readonly { readonly extract: string; readonly columns: readonly BrokenColumn[] }[];
  readonly unaffected: readonly string[];
}

/**
 * Which extracts and columns fail if `group` is removed from the granted groups (by default the
 * aggregate's smallest set, i.e. what the school's service account should have).
 */
export function whatBreaks(
  extracts: readonly ExtractPermissions[],
  group: string,
  granted: readonly string[] = aggregatePermissions(extracts).groups.map((g) => g.group),
): BreakReport {
  const remaining = new Set(granted.filter((g) => g !== group));
  const broken: { extract: string; columns: BrokenColumn[] }[] = [];
  const unaffected: string[] = [];
  for (const e of extracts) {
    const columns: BrokenColumn[] = [];
    for (const r of e.report.requirements) {
      const missing = r.clauses.filter((clause) => !clause.some((g) => remaining.has(g)));
      if (missing.length > 0) columns.push({ table: r.table, column: r.column, usage: r.usage, missing });
    }
    if (columns.length > 0) broken.push({ extract: e.name, columns });
    else unaffected.push(e.name);
  }
  return { group, granted: [...granted], remaining: [...remaining], broken, unaffected };
}

/**
 * The smallest set of groups meeting every clause, ties to the earliest groups in `preference`.
 * Exact: subsets are tried by increasing size in lexicographic order of preference.
 */
export function minimumGroups(
  clauses: readonly (readonly string[])[],
  preference: readonly string[],
): string[] {
  const involved = [...new Set(clauses.flat())];
  const rank = (g: string): number => {
    const i = preference.indexOf(g);
    return i < 0 ? preference.length + involved.indexOf(g) : i;
  };
  involved.sort((a, b) => rank(a) - rank(b));
  const index = new Map(involved.map((g, i) => [g, i]));
  const masks = [
    ...new Set(
      clauses.filter((c) => c.length > 0).map((c) => c.reduce((m, g) => m | (1 << (index.get(g) ?? 0)), 0)),
    ),
  ];
  // A clause implied by a narrower one adds nothing.
  const needed = masks.filter((m) => !masks.some((o) => o !== m && (o & m) === o));
  if (needed.length === 0) return [];
  const n = involved.length;
  if (n > 24) return greedy(needed, involved);
  for (let k = 1; k <= n; k++) {
    const combo = Array.from({ length: k }, (_, i) => i);
    for (;;) {
      const set = combo.reduce((m, i) => m | (1 << i), 0);
      if (needed.every((m) => (m & set) !== 0)) return combo.map((i) => involved[i] as string);
      let i = k - 1;
      while (i >= 0 && combo[i] === n - k + i) i--;
      if (i < 0) break;
      combo[i] = (combo[i] ?? 0) + 1;
      for (let j = i + 1; j < k; j++) combo[j] = (combo[j - 1] ?? 0) + 1;
    }
  }
  return involved;
}

function greedy(needed: number[], involved: readonly string[]): string[] {
  let left = needed;
  const out: string[] = [];
  while (left.length > 0) {
    let best = 0;
    let bestCount = -1;
    involved.forEach((_, i) => {
      const count = left.filter((m) => (m & (1 << i)) !== 0).length;
      if (count > bestCount) {
        best = i;
        bestCount = count;
      }
    });
    out.push(involved[best] as string);
    left = left.filter((m) => (m & (1 << best)) === 0);
  }
  return out;
}

/**
 * Which columns need which chosen group: a clause met by one group of the set needs that group;
 * a clause met by several is shared (removing one of them breaks nothing).
 */
function assign(
  chosen: readonly string[],
  requirements: readonly ColumnRequirement[],
  descriptions: Readonly<Record<string, string>>,
): GroupNeed[] {
  const needed = new Map<string, Map<string, UsedColumn>>(chosen.map((g) => [g, new Map()]));
  const shared = new Map<string, Map<string, UsedColumn>>(chosen.map((g) => [g, new Map()]));
  for (const r of requirements) {
    const column: UsedColumn = { table: r.table, column: r.column, usage: r.usage };
    const key = `${r.table}\u0000${r.column}`;
    for (const clause of r.clauses) {
      const meeting = chosen.filter((g) => clause.includes(g));
      const target = meeting.length === 1 ? needed : shared;
      for (const g of meeting) target.get(g)?.set(key, column);
    }
  }
  const sorted = (m: Map<string, UsedColumn> | undefined): UsedColumn[] =>
    [...(m?.values() ?? [])].sort(
      (a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column),
    );
  return chosen.map((group) => {
    const own = needed.get(group);
    return {
      group,
      description: descriptions[group] ?? '',
      columns: sorted(own),
      shared: sorted(shared.get(group)).filter((c) => !own?.has(`${c.table}\u0000${c.column}`)),
    };
  });
}

function mergeRequirements(requirements: readonly ColumnRequirement[]): ColumnRequirement[] {
  const map = new Map<string, ColumnRequirement>();
  for (const r of requirements) {
    const key = `${r.table}\u0000${r.column}`;
    const prev = map.get(key);
    if (!prev) map.set(key, r);
    else
      map.set(key, {
        ...prev,
        usage: COLUMN_USAGES.filter((u) => prev.usage.includes(u) || r.usage.includes(u)),
      });
  }
  return [...map.values()].sort((a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column));
}

function mergePreference(lists: readonly (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const list of lists) for (const g of list) if (!out.includes(g)) out.push(g);
  return out;
}

function dedupeRefs(refs: readonly ColumnRef[]): ColumnRef[] {
  const seen = new Set<string>();
  return refs
    .filter((r) => {
      const key = `${r.table}\u0000${r.column}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column));
}
