import { resolve } from 'node:path';
import { writeFileAtomic } from './io.js';
import type { ObjectStore, PutResult } from './object-store.js';

/**
 * Copies an object to a local file with the store's own `download` when it has one, else by
 * streaming `get` into a temp file renamed over `localPath` (mode 0600). Either way the file exists
 * only once complete; rejects with `ObjectNotFoundError` for a missing object.
 */
export async function downloadObject(store: ObjectStore, key: string, localPath: string): Promise<PutResult> {
  if (store.download) return store.download(key, localPath);
  return writeFileAtomic(resolve(localPath), await store.get(key));
}
