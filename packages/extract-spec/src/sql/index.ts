/**
 * The SQL side alone (validator, lexer, lineage), for the agent: no YAML or zod, and only the
 * grammar of the dialect it validates is loaded. `import { validateSql } from '@keystage/extract-spec/sql'`.
 */
export * from '../dialects.js';
export {
  type Bindings,
  type BindValue,
  type BoundSql,
  bindParameters,
  ParameterBindingError,
  type PlaceholderStyle,
  parameterBindNames,
  type ResolvedParameters,
  resolveParameters,
} from '../document/parameters.js';
export * from './lineage.js';
export { type LexResult, lexSql, type SqlToken, type SqlTokenKind } from './sql-lexer.js';
export * from './sql-problem.js';
export * from './sql-rules.js';
export {
  type InvalidSql,
  type SqlParameterUse,
  type SqlValidation,
  type ValidateSqlOptions,
  type ValidSql,
  validateSql,
} from './sql-validator.js';
