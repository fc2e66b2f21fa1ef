export {
  DEFAULT_MEMORY_BUDGET_BYTES,
  type FinishedSnapshot,
  MIN_MEMORY_BUDGET_BYTES,
  SnapshotBuilder,
  type SnapshotBuilderOptions,
} from './builder.js';
export {
  type Change,
  type DeleteChange,
  type DiffOptions,
  type DiffSummary,
  diffSnapshots,
  type InsertChange,
  SnapshotDiff,
  summariseDiff,
  type UpdateChange,
} from './diff.js';
export {
  CellKind,
  type DeltaValue,
  DIGEST_ALGORITHM,
  encodeKey,
  type Row,
  type RowCells,
  rowDigest,
} from './encoding.js';
export { DeltaError, DeltaErrorCode, DuplicateKeyError } from './errors.js';
export {
  BLOCK_PAYLOAD_BYTES,
  readSnapshotInfo,
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotInfo,
} from './format.js';
export { DEFAULT_HOLD_THRESHOLD, type HoldDecision, type HoldOptions, holdDecision } from './hold.js';
export { type RowTemplate, SnapshotJsonRows } from './json.js';
export { verifySnapshot } from './verify.js';
