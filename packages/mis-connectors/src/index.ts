/**
 * @keystage/mis-connectors: read-only, streaming access to a school's MIS database
 * (SQLite, PostgreSQL, MariaDB/MySQL, SQL Server) behind one interface. See README.md.
 */

export { isMisError, MIS_ERROR_CODES, MisError, type MisErrorCode } from './errors.js';
export {
  type ConnectorDescription,
  createConnector,
  describeConnector,
  formatDescription,
} from './factory.js';
export { isPackedBatch, type PackedBatch } from './packed.js';
export { type BoundStatement, bindParameters, findPlaceholders, type Placeholder } from './params.js';
export {
  type CellValue,
  COLUMN_TYPES,
  type Column,
  type ColumnType,
  type CommonSettings,
  type ConnectorSettings,
  MIS_KINDS,
  type MisConnector,
  type MisKind,
  type MisPermissions,
  type MssqlSettings,
  type MysqlSettings,
  PARAM_TYPES,
  type ParamType,
  type PostgresSettings,
  type QueryParam,
  type Row,
  type RowStream,
  type SqliteSettings,
  type StreamOptions,
  type TableGrant,
} from './types.js';
