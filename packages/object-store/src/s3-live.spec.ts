import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { s3OptionsFromUrl } from './config.js';
import { EncryptedObjectStore } from './encrypted-store.js';
import { IntegrityError } from './errors.js';
import { S3ObjectStore } from './s3-store.js';
import { collect, describeObjectStoreContract } from './testing/store-contract.js';

/**
 * The ObjectStore contract against a real S3-compatible server (MinIO, Ceph, AWS …), only when
 * KEYSTAGE_TEST_S3_URL is set, e.g. `http://minioadmin:minioadmin@127.0.0.1:9000/keystage-test`
 * (path-style; `?region=` optional). The bucket must exist. Every test works under a fresh random
 * prefix and removes what it wrote.
 */
const url = process.env.KEYSTAGE_TEST_S3_URL;

function liveStore(): S3ObjectStore {
  const options = s3OptionsFromUrl(url!);
  const base = options.prefix ? `${options.prefix}/` : '';
  return new S3ObjectStore({ ...options, prefix: `${base}keystage-test-${randomBytes(6).toString('hex')}` });
}

describe.skipIf(!url)('S3ObjectStore against KEYSTAGE_TEST_S3_URL', () => {
  describeObjectStoreContract('S3ObjectStore (live)', {
    async open() {
      return liveStore();
    },
    async close(store) {
      for await (const { key } of store.list()) await store.delete(key);
    },
  });

  it('carries encrypted objects', async () => {
    const inner = liveStore();
    const store = new EncryptedObjectStore(inner, { masterKey: randomBytes(32) });
    try {
      const body = randomBytes(300_000);
      await store.put('t1', 'snap/1', body);
      expect((await collect(await store.get('t1', 'snap/1'))).equals(body)).toBe(true);
      const raw = await collect(await inner.get('tenants/t1/snap/1'));
      await inner.put('tenants/t2/snap/1', raw);
      await expect(store.get('t2', 'snap/1')).rejects.toBeInstanceOf(IntegrityError);
    } finally {
      for await (const { key } of inner.list()) await inner.delete(key);
    }
  });
});
