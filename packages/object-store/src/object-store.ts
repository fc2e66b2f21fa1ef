import type { Readable } from 'node:stream';

/**
 * What can be stored: bytes in memory, or a stream of them (a Node `Readable`, an async generator).
 * Streams are consumed once, in order, and never held in memory as a whole.
 */
export type ObjectBody = Buffer | Uint8Array | AsyncIterable<Uint8Array> | Readable;

/** One stored object, as listed. */
export interface ObjectInfo {
  /** The object's key, relative to the store (and to the tenant, for the encrypted store). */
  key: string;
  /** Stored size in bytes (for the encrypted store: the encrypted size). */
  size: number;
  /** When the object was last written. */
  lastModified: Date;
}

/** What `put` reports once the object is durably stored. */
export interface PutResult {
  /** Bytes stored. */
  size: number;
}

/**
 * A flat, `/`-separated key space of immutable-per-write objects. Keys are validated by
 * `validateKey` (see keys.ts) before any backend is touched; invalid ones throw `InvalidKeyError`.
 *
 * Writes are atomic: after `put` resolves, readers see the whole new object; if it rejects (the body
 * stream failed, the disk filled up, the network dropped), the previous object under the key — or
 * no object — is left exactly as it was. There is no partial object, ever.
 */
export interface ObjectStore {
  /** Stores `body` under `key`, replacing any object there. Resolves once durable. */
  put(key: string, body: ObjectBody): Promise<PutResult>;
  /** Opens the object for reading; rejects with `ObjectNotFoundError` when there is none. */
  get(key: string): Promise<Readable>;
  /**
   * Optional: copies the object to a local file, atomically (temp file + rename), so that the file
   * either is complete or does not exist. Use `downloadObject` to call it on any store.
   */
  download?(key: string, localPath: string): Promise<PutResult>;
  /** True when an object is stored under `key`. */
  exists(key: string): Promise<boolean>;
  /** Removes the object; succeeds whether or not one existed. */
  delete(key: string): Promise<void>;
  /**
   * Every object whose key starts with `prefix` (character-wise, like S3: end it with `/` to stay in
   * one "directory"; `''` lists everything), in ascending key order, page by page.
   */
  list(prefix?: string): AsyncIterable<ObjectInfo>;
  /**
   * Deletes every object whose key starts with `prefix` and returns how many there were. The empty
   * prefix is refused (`InvalidKeyError`): wiping a whole store must be spelt out by the caller.
   */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Optional: a new object for `key` written at positions (in any order), stored — replacing any
   * object there, atomically — only by `commit()`. Stores that can only stream an object from its
   * start (S3) do not have it.
   */
  openPositional?(key: string): Promise<PositionalWrite>;
}

/** An object being written at positions (see {@link ObjectStore.openPositional}). */
export interface PositionalWrite {
  write(buf: Buffer, position: number): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
