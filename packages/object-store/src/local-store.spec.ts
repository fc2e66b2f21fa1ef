import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidKeyError, ObjectNotFoundError, ObjectStoreError } from './errors.js';
import { LocalDirectoryStore } from './local-store.js';
import { describeObjectStoreContract, INVALID_KEYS, listKeys, readObject } from './testing/store-contract.js';

const roots = new Map<LocalDirectoryStore, string>();

describeObjectStoreContract('LocalDirectoryStore', {
  async open() {
    const base = await mkdtemp(join(tmpdir(), 'keystage-local-store-'));
    // A root that does not exist yet: the store creates it.
    const store = new LocalDirectoryStore(join(base, 'objects'));
    roots.set(store, base);
    return store;
  },
  async close(store) {
    await rm(roots.get(store as LocalDirectoryStore)!, { recursive: true, force: true });
  },
});

/** Every path below `dir`, relative, directories with a trailing `/`. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .map((entry) => {
      const rel = join(entry.parentPath, entry.name).slice(dir.length + 1);
      return entry.isDirectory() ? `${rel}/` : rel;
    })
    .sort();
}

describe('LocalDirectoryStore', () => {
  let base: string;
  let root: string;
  let store: LocalDirectoryStore;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'keystage-local-store-'));
    root = join(base, 'root');
    store = new LocalDirectoryStore(root);
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('maps keys to files under the root', async () => {
    await store.put('runs/r-1/results.bin', Buffer.from('data'));
    expect(store.pathOf('runs/r-1/results.bin')).toBe(join(root, 'runs', 'r-1', 'results.bin'));
    expect(await readFile(join(root, 'runs/r-1/results.bin'), 'utf8')).toBe('data');
  });

  it('creates directories 0700 and files 0600', async () => {
    await store.put('a/b/c/object', Buffer.from('secret pupil data'));
    for (const dir of [root, join(root, 'a'), join(root, 'a/b'), join(root, 'a/b/c')]) {
      expect((await stat(dir)).mode & 0o777, dir).toBe(0o700);
    }
    expect((await stat(join(root, 'a/b/c/object'))).mode & 0o777).toBe(0o600);
    // An overwrite is a new file: still 0600.
    await store.put('a/b/c/object', Buffer.from('again'));
    expect((await stat(join(root, 'a/b/c/object'))).mode & 0o777).toBe(0o600);
  });

  it('refuses path traversal and never touches anything outside the root', async () => {
    await mkdir(root, { recursive: true });
    await writeFile(join(base, 'secret.txt'), 'outside the store');
    await mkdir(join(base, 'etc'));
    await writeFile(join(base, 'etc', 'passwd'), 'root:x:0:0');
    const attempts = [
      '../secret.txt',
      'a/../../secret.txt',
      '../etc/passwd',
      '..',
      '/etc/passwd',
      `/${base}/secret.txt`,
      'a/..',
      '..\\secret.txt',
      '%2e%2e/secret.txt',
      ...INVALID_KEYS,
    ];
    for (const key of attempts) {
      await expect(store.get(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.put(key, Buffer.from('overwritten')), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.exists(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      expect(() => store.pathOf(key), key).toThrow(InvalidKeyError);
    }
    for (const prefix of ['../', '..', '../etc/', '/']) {
      await expect(store.deletePrefix(prefix), prefix).rejects.toBeInstanceOf(InvalidKeyError);
    }
    expect(await readFile(join(base, 'secret.txt'), 'utf8')).toBe('outside the store');
    expect(await readFile(join(base, 'etc', 'passwd'), 'utf8')).toBe('root:x:0:0');
    expect(await tree(base)).toEqual(['etc/', 'etc/passwd', 'root/', 'secret.txt']);
  });

  it('does not follow a symlink planted at a key, and does not list it', async () => {
    await mkdir(join(root, 'dir'), { recursive: true });
    await writeFile(join(base, 'secret.txt'), 'outside the store');
    await symlink(join(base, 'secret.txt'), join(root, 'dir', 'link'));
    await symlink(base, join(root, 'linkdir'));
    await expect(store.get('dir/link')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.exists('dir/link')).toBe(false);
    expect(await listKeys(store)).toEqual([]);
  });

  it('writes atomically: the key never shows a partial object, and a failure leaves no temp file', async () => {
    await store.put('atomic/target', Buffer.from('old'));
    const seen: { exists: boolean; content: string; files: string[] }[] = [];
    const observer = async function* () {
      yield Buffer.from('new ');
      // Mid-write: readers still see the old object, and the new bytes are in a temp file.
      seen.push({
        exists: await store.exists('atomic/target'),
        content: (await readObject(store, 'atomic/target')).toString(),
        files: await readdir(join(root, 'atomic')),
      });
      yield Buffer.from('content');
    };
    await store.put('atomic/target', observer());
    expect(seen).toHaveLength(1);
    expect(seen[0]!.exists).toBe(true);
    expect(seen[0]!.content).toBe('old');
    expect(seen[0]!.files).toHaveLength(2);
    expect(seen[0]!.files.filter((name) => name.startsWith('~tmp-'))).toHaveLength(1);
    expect(await listKeys(store)).toEqual(['atomic/target']);
    expect((await readObject(store, 'atomic/target')).toString()).toBe('new content');

    const failing = async function* () {
      yield Buffer.alloc(100_000, 1);
      throw new Error('client went away');
    };
    await expect(store.put('atomic/target', failing())).rejects.toThrow('client went away');
    await expect(store.put('atomic/other', failing())).rejects.toThrow('client went away');
    expect(await tree(root)).toEqual(['atomic/', 'atomic/target']);
    expect((await readObject(store, 'atomic/target')).toString()).toBe('new content');
  });

  it('writes a large body from uneven chunks byte for byte, and cleans up after a late failure', async () => {
    // 40 MB in chunks of every size, from one byte to over a write batch: several background
    // flushes and many batches, each written while the next is gathered.
    const sizes = [1, 7, 65_536, 1_048_575, 1_048_577, 3_000_000, 13];
    const chunks: Buffer[] = [];
    for (let total = 0, i = 0; total < 40_000_000; i++) {
      const chunk = Buffer.alloc(sizes[i % sizes.length]!, i % 251);
      chunks.push(chunk);
      total += chunk.length;
    }
    const body = async function* () {
      yield* chunks;
    };
    const expected = Buffer.concat(chunks);
    expect(await store.put('large/object', body())).toEqual({ size: expected.length });
    expect((await readObject(store, 'large/object')).equals(expected)).toBe(true);

    const failing = async function* () {
      yield* chunks.slice(0, 20);
      throw new Error('source failed');
    };
    await expect(store.put('large/object', failing())).rejects.toThrow('source failed');
    expect(await tree(root)).toEqual(['large/', 'large/object']);
    expect((await readObject(store, 'large/object')).equals(expected)).toBe(true);
  });

  it('ignores temp files and foreign files when listing', async () => {
    await store.put('k/a', Buffer.from('a'));
    await writeFile(join(root, 'k', '~tmp-0123-a'), 'half written');
    await writeFile(join(root, 'k', 'has space'), 'foreign');
    await mkdir(join(root, 'bad dir'));
    await writeFile(join(root, 'bad dir', 'x'), 'foreign');
    expect(await listKeys(store)).toEqual(['k/a']);
    expect(await store.deletePrefix('k/')).toBe(1);
  });

  it('removes directories left empty by deletes, but not the root', async () => {
    await store.put('x/y/z/1', Buffer.from('1'));
    await store.put('x/y/2', Buffer.from('2'));
    await store.delete('x/y/z/1');
    expect(await tree(root)).toEqual(['x/', 'x/y/', 'x/y/2']);
    await store.delete('x/y/2');
    expect(await tree(root)).toEqual([]);
    await store.put('p/q/r', Buffer.from('r'));
    expect(await store.deletePrefix('p/')).toBe(1);
    expect(await tree(root)).toEqual([]);
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  it('survives concurrent puts and deletes in the same directory', async () => {
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      work.push(store.put(`race/deep/${i}`, Buffer.from(String(i))));
      work.push(store.delete(`race/deep/${i - 1}`));
    }
    await Promise.all(work);
    for (let i = 0; i < 40; i++) {
      // Each key was written once; the delete of `i` may have run before or after its put.
      const exists = await store.exists(`race/deep/${i}`);
      if (exists) expect((await readObject(store, `race/deep/${i}`)).toString()).toBe(String(i));
    }
    expect(await store.exists('race/deep/39')).toBe(true);
  });

  it('refuses a key that would be both an object and a directory', async () => {
    await store.put('a/b', Buffer.from('object'));
    const nested = await store.put('a/b/c', Buffer.from('x')).catch((e: unknown) => e);
    expect(nested).toBeInstanceOf(ObjectStoreError);
    expect(nested).toMatchObject({ code: 'object_store.key_conflict' });
    await store.put('d/e/f', Buffer.from('object'));
    await expect(store.put('d/e', Buffer.from('x'))).rejects.toMatchObject({
      code: 'object_store.key_conflict',
    });
    expect(await listKeys(store)).toEqual(['a/b', 'd/e/f']);
    expect(await tree(root)).toEqual(['a/', 'a/b', 'd/', 'd/e/', 'd/e/f']);
  });

  it('treats a directory as no object: get is not found, delete leaves it alone', async () => {
    await store.put('dir/object', Buffer.from('x'));
    await expect(store.get('dir')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await store.delete('dir');
    expect(await store.exists('dir/object')).toBe(true);
  });

  it('needs a root', () => {
    expect(() => new LocalDirectoryStore('')).toThrow(ObjectStoreError);
    expect(dirname(store.root)).toBe(base);
  });
});
