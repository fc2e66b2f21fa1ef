/**
 * Lineage and permission report of a whole extract document: every dataset's SQL (in the
 * document's own MIS dialect, or a variant's) analysed and merged.
 */
import { MIS_DIALECT, type MisKind } from '../dialects.js';
import { catalogueFromMapping, type PermissionMapping } from '../permissions/permission-mapping.js';
import {
  mergeLineages,
  type PermissionReport,
  requiredPermissions,
} from '../permissions/permission-report.js';
import { type Lineage, lineage, type TableCatalogue } from '../sql/lineage.js';
import type { ExtractDocument } from './extract-document.schema.js';

export interface DocumentLineage {
  readonly datasets: readonly { readonly dataset: string; readonly lineage: Lineage }[];
  /** All datasets together (tables and columns with the union of their usages). */
  readonly merged: Pick<Lineage, 'tables' | 'columns'>;
}

export interface DocumentLineageOptions {
  readonly catalogue?: TableCatalogue;
  /** Analyse the variant for this MIS kind instead of the main SQL (where a dataset has one). */
  readonly mis?: MisKind;
}

export function documentLineage(
  document: ExtractDocument,
  options: DocumentLineageOptions = {},
): DocumentLineage {
  const kind = options.mis ?? document.mis;
  const datasets = document.datasets.map((d) => {
    const variant = kind === document.mis ? undefined : d.variants?.[kind];
    const sql = variant ?? d.sql;
    const dialect = MIS_DIALECT[variant ? kind : document.mis];
    return { dataset: d.name, lineage: lineage(sql, dialect, options.catalogue) };
  });
  return { datasets, merged: mergeLineages(datasets.map((d) => d.lineage)) };
}

/** The minimum permission groups an extract needs, from the lineage of all its datasets. */
export function documentPermissions(document: ExtractDocument, mapping: PermissionMapping): PermissionReport {
  return requiredPermissions(
    documentLineage(document, { catalogue: catalogueFromMapping(mapping) }).merged,
    mapping,
  );
}
