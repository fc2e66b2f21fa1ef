/**
 * Plain-text tables for CLI output (`pnpm keystage permissions …`): a header, a rule and padded
 * cells; arrays are joined with ", ", null and undefined print as "". No colours, no wrapping:
 * the output is meant to be pasted into a ticket as it is.
 */

export type TableCell = string | number | boolean | null | undefined | readonly (string | number)[];

export interface FormatTableOptions {
  /** Columns to print, in order (default: the keys of the first row, then any new ones). */
  readonly columns?: readonly string[];
  /** Header labels by column key (default: the key). */
  readonly headers?: Readonly<Record<string, string>>;
}

export function formatTable(
  rows: readonly Readonly<Record<string, TableCell>>[],
  options: FormatTableOptions = {},
): string {
  const columns = options.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (columns.length === 0) return '';
  const text = (cell: TableCell): string => {
    if (cell === null || cell === undefined) return '';
    if (Array.isArray(cell)) return cell.join(', ').normalize('NFC');
    return String(cell)
      .replace(/\s*\n\s*/g, ' ')
      .normalize('NFC');
  };
  const header = columns.map((c) => options.headers?.[c] ?? c);
  const body = rows.map((r) => columns.map((c) => text(r[c])));
  const widths = header.map((h, i) => Math.max(width(h), ...body.map((row) => width(row[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => cell + ' '.repeat((widths[i] ?? 0) - width(cell)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Display width: counts code points, so "Zoë" and "Nguyễn" line up. */
function width(s: string): number {
  return [...s.normalize('NFC')].length;
}
