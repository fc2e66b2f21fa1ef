/**
 * Rows for printing permission reports with formatTable (the CLI's `permissions` command).
 */
import type { TableCell } from '../format-table.js';
import type { AggregateReport, BreakReport, PermissionReport, UsedColumn } from './permission-report.js';

type Row = Record<string, TableCell>;

function byTable(columns: readonly UsedColumn[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of columns) out.set(c.table, [...(out.get(c.table) ?? []), c.column]);
  return out;
}

/** One row per group and table: the columns that need the group. */
export function permissionReportRows(report: PermissionReport): Row[] {
  const rows: Row[] = [];
  for (const g of report.groups) {
    for (const [table, columns] of byTable(g.columns)) rows.push({ group: g.group, table, columns });
  }
  for (const table of report.unmappedTables) rows.push({ group: '(unmapped)', table, columns: 'all' });
  for (const [table, columns] of byTable(report.unmappedColumns.map((c) => ({ ...c, usage: [] })))) {
    rows.push({ group: '(unmapped)', table, columns });
  }
  return rows;
}

/** One row per group of a school's smallest set: which extracts need it, for how many columns. */
export function aggregateReportRows(report: AggregateReport): Row[] {
  return report.groups.map((g) => ({
    group: g.group,
    extracts: g.extracts.map((e) => e.extract),
    columns: g.extracts.reduce((n, e) => n + e.columns.length, 0),
  }));
}

/** One row per broken column: what fails, and which groups would mend it. */
export function whatBreaksRows(report: BreakReport): Row[] {
  return report.broken.flatMap((b) =>
    b.columns.map((c) => ({
      extract: b.extract,
      table: c.table,
      column: c.column,
      usage: c.usage,
      'needs one of': c.missing.map((clause) => clause.join(' / ')),
    })),
  );
}
