/**
 * Stable codes for everything this package refuses, so that callers can map them to their own
 * domain codes (an HTTP 404, a `snapshot.corrupt` run state …) without parsing messages.
 */
export const ObjectStoreErrorCode = {
  /** A key or prefix is not in the accepted form (see `validateKey`). Always a caller bug. */
  InvalidKey: 'object_store.invalid_key',
  /** No object is stored under the key. */
  NotFound: 'object_store.not_found',
  /** An encrypted object failed authentication: wrong key or tenant, moved, truncated or altered. */
  Integrity: 'object_store.integrity',
  /** The local store cannot hold both `a/b` and `a/b/c`: one of them would have to be a directory. */
  KeyConflict: 'object_store.key_conflict',
  /** Invalid configuration (a master key of the wrong length, a missing bucket …). */
  InvalidConfig: 'object_store.invalid_config',
  /** The backend refused or failed an operation (S3 error, partial batch delete …). */
  Backend: 'object_store.backend',
} as const;
export type ObjectStoreErrorCode = (typeof ObjectStoreErrorCode)[keyof typeof ObjectStoreErrorCode];

/**
 * The base of every error this package throws on purpose. Messages name keys but never contain
 * object contents or key material.
 */
export class ObjectStoreError extends Error {
  override readonly name: string = 'ObjectStoreError';

  constructor(
    readonly code: ObjectStoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A key or prefix was refused before touching the backend. */
export class InvalidKeyError extends ObjectStoreError {
  override readonly name = 'InvalidKeyError';

  constructor(message: string) {
    super(ObjectStoreErrorCode.InvalidKey, message);
  }
}

/** `get` (or `download`) of a key that holds no object. */
export class ObjectNotFoundError extends ObjectStoreError {
  override readonly name = 'ObjectNotFoundError';

  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(ObjectStoreErrorCode.NotFound, `no object stored under ${JSON.stringify(key)}`, options);
  }
}

/**
 * An encrypted object could not be authenticated. Raised for a wrong master key, an object read under
 * another tenant or key than it was written for, a truncated, extended, reordered or altered object,
 * and an unknown format. Nothing distinguishes these on purpose: none of them is safe to read.
 */
export class IntegrityError extends ObjectStoreError {
  override readonly name = 'IntegrityError';

  constructor(message: string, options?: ErrorOptions) {
    super(ObjectStoreErrorCode.Integrity, message, options);
  }
}
