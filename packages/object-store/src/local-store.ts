import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rmdir, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidKeyError, ObjectNotFoundError, ObjectStoreError, ObjectStoreErrorCode } from './errors.js';
import { bodyChunks, isErrno, PositionalFile, syncDirectory, writeFileAtomic } from './io.js';
import { isValidKey, validateKey, validatePrefix } from './keys.js';
import type { ObjectBody, ObjectInfo, ObjectStore, PositionalWrite, PutResult } from './object-store.js';

const DIRECTORY_MODE = 0o700;
const FILE_MODE = 0o600;
/** Bytes per read of an object: Node's default, or the object's size, up to 4 MiB. */
const DEFAULT_READ_BYTES = 64 * 1024;
const MAX_READ_BYTES = 4 * 1024 * 1024;

/**
 * An {@link ObjectStore} in a local directory: the default for development and tests, and fine for a
 * single-node deployment on an encrypted disk. Key `a/b/c` is the file `<root>/a/b/c`.
 *
 * - Writes are atomic and durable: temp file (`~tmp-…`, a name no key can have) in the target
 *   directory, fsync, rename, fsync of the directory. A failed write removes its temp file.
 * - Directories are created as needed with mode 0700, files with 0600; empty directories are
 *   removed again when their last object is deleted.
 * - Keys are validated before any path is built, and the joined path is checked to stay below the
 *   root. Reads do not follow a symlink in the last component; the store assumes nobody else writes
 *   into its root (a symlinked directory planted there would be followed).
 * - Unlike S3, `a/b` and `a/b/c` cannot both exist (`a/b` would be a file and a directory):
 *   such a put fails with `object_store.key_conflict`.
 */
export class LocalDirectoryStore implements ObjectStore {
  /** The absolute root directory. */
  readonly root: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root.length === 0) {
      throw new ObjectStoreError(
        ObjectStoreErrorCode.InvalidConfig,
        'a local object store needs a directory',
      );
    }
    this.root = resolve(root);
  }

  /** The file that holds `key` (validated; always below {@link root}). */
  pathOf(key: string): string {
    return this.pathUnderRoot(validateKey(key));
  }

  async put(key: string, body: ObjectBody): Promise<PutResult> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const ensureDirectory = () => this.ensureDirectory(dir, key);
    await ensureDirectory();
    try {
      return await writeFileAtomic(path, bodyChunks(body), { mode: FILE_MODE, ensureDirectory });
    } catch (error) {
      if (isErrno(error, 'EISDIR', 'ENOTEMPTY', 'ENOTDIR', 'EEXIST')) throw conflict(key, error);
      throw error;
    }
  }

  async openPositional(key: string): Promise<PositionalWrite> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const ensureDirectory = () => this.ensureDirectory(dir, key);
    await ensureDirectory();
    const file = await PositionalFile.open(path, { mode: FILE_MODE, ensureDirectory });
    return {
      write: (buf, position) => file.write(buf, position),
      commit: () =>
        file.commit().catch((error: unknown) => {
          throw isErrno(error, 'EISDIR', 'ENOTEMPTY', 'ENOTDIR', 'EEXIST') ? conflict(key, error) : error;
        }),
      abort: () => file.abort(),
    };
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR'))
        throw new ObjectNotFoundError(key, { cause: error });
      throw error;
    }
    let size: number;
    try {
      // Opening a directory read-only succeeds on Linux: only a regular file is an object.
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ObjectNotFoundError(key);
      size = stat.size;
    } catch (error) {
      await handle.close();
      throw error;
    }
    // Large reads for a large object: a read per 64 KiB (the default) costs a round trip each.
    return handle.createReadStream({
      highWaterMark: Math.min(Math.max(size, DEFAULT_READ_BYTES), MAX_READ_BYTES),
    });
  }

  async download(key: string, localPath: string): Promise<PutResult> {
    return writeFileAtomic(resolve(localPath), await this.get(key), { mode: FILE_MODE });
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await lstat(this.pathOf(key))).isFile();
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      // Nothing there, or a directory (which is no object): deleting is idempotent.
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'EISDIR', 'EPERM')) return;
      throw error;
    }
    await syncDirectory(dirname(path));
    await this.pruneEmptyDirectories(dirname(path));
  }

  async *list(prefix = ''): AsyncGenerator<ObjectInfo, void, undefined> {
    const directory = validatePrefix(prefix);
    const keyBase = directory.length === 0 ? '' : `${directory.join('/')}/`;
    yield* this.walk(this.pathUnderRoot(directory), keyBase, prefix);
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new InvalidKeyError('deletePrefix needs a non-empty prefix');
    let count = 0;
    for await (const { key } of this.list(prefix)) {
      await this.delete(key);
      count += 1;
    }
    return count;
  }

  /**
   * Depth first, each directory's entries sorted with directories compared as `name/`: this yields
   * keys in plain ascending order (S3's order), since all keys below `a/` sort between `a.`/`a-` and
   * `a0`. Entries that are not valid key segments (temp files) or not plain files/directories
   * (symlinks, sockets) are skipped; entries that vanish while walking are skipped.
   */
  private async *walk(
    dir: string,
    keyBase: string,
    prefix: string,
  ): AsyncGenerator<ObjectInfo, void, undefined> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return;
      throw error;
    }
    const items = entries
      .filter((entry) => isValidKey(entry.name) && (entry.isFile() || entry.isDirectory()))
      .map((entry) => ({
        name: entry.name,
        isDirectory: entry.isDirectory(),
        order: entry.isDirectory() ? `${entry.name}/` : entry.name,
      }))
      .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    for (const item of items) {
      const key = keyBase + item.name;
      const path = join(dir, item.name);
      if (item.isDirectory) {
        const below = `${key}/`;
        if (below.startsWith(prefix) || prefix.startsWith(below)) yield* this.walk(path, below, prefix);
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      try {
        const stat = await lstat(path);
        if (stat.isFile()) yield { key, size: stat.size, lastModified: stat.mtime };
      } catch (error) {
        if (!isErrno(error, 'ENOENT', 'ENOTDIR')) throw error;
      }
    }
  }

  private pathUnderRoot(segments: string[]): string {
    const path = join(this.root, ...segments);
    const rel = relative(this.root, path);
    // validateKey already refuses '..' and absolute keys; this is a second, independent check.
    if (rel.startsWith('..') || isAbsolute(rel)) throw new InvalidKeyError('key escapes the store root');
    return path;
  }

  private async ensureDirectory(dir: string, key: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
    } catch (error) {
      if (isErrno(error, 'ENOTDIR', 'EEXIST')) throw conflict(key, error);
      throw error;
    }
  }

  /** Removes `dir` and its parents while they are empty, never the root itself. */
  private async pruneEmptyDirectories(dir: string): Promise<void> {
    while (dir !== this.root && dir.startsWith(this.root)) {
      try {
        await rmdir(dir);
      } catch (error) {
        if (isErrno(error, 'ENOTEMPTY', 'EEXIST', 'ENOENT', 'EBUSY', 'EPERM', 'EACCES')) return;
        throw error;
      }
      dir = dirname(dir);
    }
  }
}

function conflict(key: string, cause: unknown): ObjectStoreError {
  return new ObjectStoreError(
    ObjectStoreErrorCode.KeyConflict,
    `${JSON.stringify(key)} collides with another object in the local store (a key cannot be both an object and a prefix of another)`,
    { cause },
  );
}
