/**
 * The demo extract library: the ten extracts of DOMAIN.md's "What partners extract", as
 * documents in the package's `library/` folder (read at run time). Each is written for the
 * demo MIS in SQLite (`DEMO_SQLITE`, tables attached as `sims`) in SQL that also runs on the
 * PostgreSQL copy (schema `sims`), and carries the same datasets in T-SQL for SIMS as
 * `variants.SIMS`. They seed `pnpm demo` and serve partners as examples.
 */
import { readFileSync } from 'node:fs';
import { type ParseExtractResult, parseExtractDocument } from '../document/parse-extract-document.js';

export const LIBRARY_EXTRACTS = [
  'parent-messaging',
  'absence-alerts',
  'dfe-attendance',
  'cashless-catering',
  'school-library',
  'oneroster',
  'timetable-cover',
  'behaviour-analytics',
  'assessment',
  'la-inclusion',
] as const;
export type LibraryExtractName = (typeof LIBRARY_EXTRACTS)[number];

/** The YAML text of a library extract. */
export function libraryDocumentText(name: LibraryExtractName): string {
  if (!(LIBRARY_EXTRACTS as readonly string[]).includes(name)) throw new Error(`no library extract ${name}`);
  return readFileSync(new URL(`../../library/${name}.yaml`, import.meta.url), 'utf8');
}

/** A library extract, parsed and validated like any partner's document. */
export function loadLibraryExtract(name: LibraryExtractName): ParseExtractResult {
  return parseExtractDocument(libraryDocumentText(name), { format: 'yaml' });
}
