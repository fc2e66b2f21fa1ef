import { documentLineage, type ExtractDocument } from '@keystage/extract-spec';

export interface ExtractVersionDiff {
  from: number;
  to: number;
  datasets: { added: string[]; removed: string[] };
  columns: { dataset: string; added: string[]; removed: string[]; changed: string[] }[];
  tablesRead: { added: string[]; removed: string[] };
  columnsRead: { added: string[]; removed: string[] };
  categories: { added: string[]; removed: string[] };
  sqlChanged: string[];
  parametersChanged: boolean;
  /** True when `to` reads or sends anything `from` did not: an agreement must be approved again. */
  widens: boolean;
}

const minus = <T>(a: Set<T>, b: Set<T>) => [...a].filter((x) => !b.has(x)).sort();

function read(doc: ExtractDocument) {
  const lineage = documentLineage(doc).merged;
  return {
    tables: new Set(lineage.tables),
    columns: new Set(lineage.columns.map((c) => `${c.table}.${c.column}`)),
    categories: new Set(doc.datasets.flatMap((d) => d.columns.map((c) => c.category))),
  };
}

/** What changed between two versions of an extract: columns, tables read, personal-data categories, SQL. */
export function diffVersions(
  from: { version: number; document: ExtractDocument },
  to: { version: number; document: ExtractDocument },
): ExtractVersionDiff {
  const a = from.document;
  const b = to.document;
  const aSets = new Map(a.datasets.map((d) => [d.name, d]));
  const bSets = new Map(b.datasets.map((d) => [d.name, d]));
  const columns: ExtractVersionDiff['columns'] = [];
  const sqlChanged: string[] = [];
  for (const [name, bd] of bSets) {
    const ad = aSets.get(name);
    if (!ad) continue;
    const ac = new Map(ad.columns.map((c) => [c.name, c]));
    const bc = new Map(bd.columns.map((c) => [c.name, c]));
    const changed = [...bc.keys()].filter(
      (k) => ac.has(k) && JSON.stringify(ac.get(k)) !== JSON.stringify(bc.get(k)),
    );
    const added = minus(new Set(bc.keys()), new Set(ac.keys()));
    const removed = minus(new Set(ac.keys()), new Set(bc.keys()));
    if (added.length || removed.length || changed.length)
      columns.push({ dataset: name, added, removed, changed: changed.sort() });
    if (ad.sql !== bd.sql || JSON.stringify(ad.variants ?? {}) !== JSON.stringify(bd.variants ?? {}))
      sqlChanged.push(name);
  }
  const ra = read(a);
  const rb = read(b);
  const diff: ExtractVersionDiff = {
    from: from.version,
    to: to.version,
    datasets: {
      added: minus(new Set(bSets.keys()), new Set(aSets.keys())),
      removed: minus(new Set(aSets.keys()), new Set(bSets.keys())),
    },
    columns,
    tablesRead: { added: minus(rb.tables, ra.tables), removed: minus(ra.tables, rb.tables) },
    columnsRead: { added: minus(rb.columns, ra.columns), removed: minus(ra.columns, rb.columns) },
    categories: { added: minus(rb.categories, ra.categories), removed: minus(ra.categories, rb.categories) },
    sqlChanged: sqlChanged.sort(),
    parametersChanged: JSON.stringify(a.parameters) !== JSON.stringify(b.parameters),
    widens: false,
  };
  diff.widens =
    diff.datasets.added.length > 0 ||
    diff.columns.some((c) => c.added.length > 0 || c.changed.length > 0) ||
    diff.tablesRead.added.length > 0 ||
    diff.columnsRead.added.length > 0 ||
    diff.categories.added.length > 0;
  return diff;
}
