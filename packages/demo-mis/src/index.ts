/**
 * @keystage/demo-mis: a deterministic, SIMS-shaped demo school for demos, tests and
 * benchmarks, in SQLite (attach as `sims`), PostgreSQL (schema `sims`) and MariaDB
 * (database `sims`). See README.md.
 */

export { type AcademicYear, academicYear, NEW_CODES_FROM, NO_END_DATE } from './calendar.js';
export { ATTENDANCE_CODES, type AttendanceCode, type CodeCategory, PRESENT_CODES } from './codes.js';
export { type DbRow, type MisConnection, openMis } from './connection.js';
export { createIndexSql, createTableSql, DIALECTS, type Dialect, schemaSql, sqlType } from './ddl.js';
export { DemoMisError, type DemoMisErrorCode, describeError } from './errors.js';
export {
  type GenerateResult,
  type GenerateRunOptions,
  type GenerateTargets,
  generate,
  generateToMysql,
  generateToPostgres,
  generateToSqlite,
} from './generate.js';
export {
  type Batch,
  createGenerator,
  DemoSchoolGenerator,
  GENERATOR_VERSION,
  type GenerateOptions,
  type Row,
  type Value,
} from './generator.js';
export {
  type MutateOptions,
  type MutationReport,
  mutate,
  mutateConnection,
  mutationDate,
  type TableChange,
} from './mutate.js';
export {
  type GroupDef,
  PERMISSION_GROUPS,
  type PermissionRow,
  permissionRows,
  SERVICE_ACCOUNTS,
} from './permissions.js';
export {
  FINAL_ACADEMIC_YEAR,
  getPreset,
  isPresetName,
  PRESET_NAMES,
  PRESETS,
  type Preset,
  type PresetName,
} from './presets.js';
export { Rng } from './prng.js';
export {
  type ColumnDef,
  DATA_AREAS,
  type DataArea,
  type PortableType,
  TABLES,
  type TableDef,
  tableDef,
} from './tables.js';
export { parseTarget, redact, type Target } from './targets.js';
export { isValidUln, isValidUpn, makeUpn, UPN_CHECK_LETTERS, ulnCheckDigit, upnCheckLetter } from './upn.js';
export { PG_SCHEMA } from './writers/postgres.js';
