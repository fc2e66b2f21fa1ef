export {
  DEFAULT_OBJECT_STORE_DIR,
  objectStoreFromEnv,
  s3OptionsFromEnv,
  s3OptionsFromUrl,
} from './config.js';
export { downloadObject } from './download.js';
export {
  DEFAULT_SEGMENT_BYTES,
  ENCRYPTED_HEADER_BYTES,
  ENCRYPTED_OBJECT_FORMAT_V1,
  ENCRYPTED_OBJECT_MAGIC,
  ENCRYPTED_SEGMENT_OVERHEAD_BYTES,
  EncryptedObjectStore,
  type EncryptedObjectStoreOptions,
  type EncryptedPutResult,
  encryptedObjectSize,
  GrowingFilePut,
  MAX_TENANT_ID_LENGTH,
} from './encrypted-store.js';
export {
  IntegrityError,
  InvalidKeyError,
  ObjectNotFoundError,
  ObjectStoreError,
  ObjectStoreErrorCode,
} from './errors.js';
export { isValidKey, MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH, validateKey, validatePrefix } from './keys.js';
export { LocalDirectoryStore } from './local-store.js';
export type { ObjectBody, ObjectInfo, ObjectStore, PositionalWrite, PutResult } from './object-store.js';
export {
  DEFAULT_PART_SIZE,
  DELETE_BATCH_SIZE,
  MAX_PARTS,
  type S3CommandSender,
  S3ObjectStore,
  type S3ObjectStoreOptions,
  type S3StoreCommand,
} from './s3-store.js';
