export type {
  Change,
  ChangeOp,
  ChangeSet,
  ChangeSetMetadata,
  ColumnMetadata,
  ColumnType,
  EncodedFile,
  InsertRows,
  RowTemplate,
  Value,
} from './change-set.js';
export { CSV_OP_COLUMN, type CsvOptions, encodeCsv } from './csv.js';
export { FormatError, FormatErrorCode } from './errors.js';
export { encodeJson, encodeNdjson } from './json.js';
export {
  checkOneRosterDataset,
  encodeOneRosterCsv,
  ONEROSTER_FILES,
  ONEROSTER_MANIFEST_FILES,
  type OneRosterFileMode,
  type OneRosterFileSpec,
  type OneRosterOptions,
} from './oneroster.js';
export {
  type DeliveryFormatDefinition,
  type DeliveryFormatName,
  encodeFiles,
  encoderFor,
  type FileSetFormat,
  FORMATS,
  isDeliveryFormat,
  type StreamFormat,
} from './registry.js';
export {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  generateWebhookSecret,
  type SignWebhookOptions,
  signWebhook,
  type VerifyWebhookOptions,
  type VerifyWebhookResult,
  verifyWebhook,
  WEBHOOK_SECRET_PREFIX,
  WebhookHeader,
  type WebhookRejection,
} from './webhook.js';
