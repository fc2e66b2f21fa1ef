/**
 * @keystage/extract-spec: extract definition documents, SQL validation per dialect, column
 * lineage and minimum MIS permissions. Pure (no network, no database); the agent runs the
 * same validator before every execution. See README.md.
 */

export { canonicalJson } from '@keystage/crypto';
export * from './dialects.js';
export * from './document/document-lineage.js';
export * from './document/extract-document.schema.js';
export * from './document/parameters.js';
export * from './document/parse-extract-document.js';
export * from './format-table.js';
export * from './library/extract-library.js';
export * from './permissions/permission-mapping.js';
export * from './permissions/permission-report.js';
export * from './permissions/permission-rows.js';
export * from './sql/lineage.js';
export { type LexResult, lexSql, type SqlToken, type SqlTokenKind } from './sql/sql-lexer.js';
export * from './sql/sql-problem.js';
export * from './sql/sql-rules.js';
export {
  type InvalidSql,
  type SqlParameterUse,
  type SqlValidation,
  type ValidateSqlOptions,
  type ValidSql,
  validateSql,
} from './sql/sql-validator.js';
