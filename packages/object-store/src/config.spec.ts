import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OBJECT_STORE_DIR,
  objectStoreFromEnv,
  s3OptionsFromEnv,
  s3OptionsFromUrl,
} from './config.js';
import { ObjectStoreError } from './errors.js';
import { LocalDirectoryStore } from './local-store.js';
import { S3ObjectStore } from './s3-store.js';

describe('objectStoreFromEnv', () => {
  it('defaults to a local directory store', () => {
    const store = objectStoreFromEnv({});
    expect(store).toBeInstanceOf(LocalDirectoryStore);
    expect((store as LocalDirectoryStore).root).toBe(resolve(DEFAULT_OBJECT_STORE_DIR));
    const configured = objectStoreFromEnv({
      OBJECT_STORE: 'local',
      OBJECT_STORE_DIR: '/var/lib/keystage/objects',
    });
    expect((configured as LocalDirectoryStore).root).toBe('/var/lib/keystage/objects');
  });

  it('builds an S3 store from S3_* variables', () => {
    const env = {
      OBJECT_STORE: 's3',
      S3_BUCKET: 'keystage-results',
      S3_REGION: 'eu-west-2',
      S3_ENDPOINT: 'http://minio:9000',
      S3_FORCE_PATH_STYLE: 'true',
      S3_PREFIX: 'prod',
    };
    expect(objectStoreFromEnv(env)).toBeInstanceOf(S3ObjectStore);
    expect(s3OptionsFromEnv(env)).toEqual({
      bucket: 'keystage-results',
      region: 'eu-west-2',
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      prefix: 'prod',
    });
    // Credentials are never taken from these variables: the SDK's default chain supplies them.
    expect(s3OptionsFromEnv({ S3_BUCKET: 'b', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x' })).toEqual({
      bucket: 'b',
      region: 'us-east-1',
    });
    expect(
      s3OptionsFromEnv({ S3_BUCKET: 'b', S3_REGION: 'r', S3_FORCE_PATH_STYLE: 'false' }).forcePathStyle,
    ).toBe(false);
  });

  it('refuses incomplete or unknown configuration', () => {
    const cases: NodeJS.ProcessEnv[] = [
      { OBJECT_STORE: 'gcs' },
      { OBJECT_STORE: 's3', S3_REGION: 'r' },
      { OBJECT_STORE: 's3', S3_BUCKET: 'b' },
      { OBJECT_STORE: 's3', S3_BUCKET: 'b', S3_REGION: 'r', S3_FORCE_PATH_STYLE: 'maybe' },
      { OBJECT_STORE: 's3', S3_BUCKET: 'b', S3_REGION: 'r', S3_ENDPOINT: 'minio:9000' },
      { OBJECT_STORE: 's3', S3_BUCKET: 'b', S3_REGION: 'r', S3_PREFIX: '../up' },
    ];
    for (const env of cases) {
      expect(() => objectStoreFromEnv(env), JSON.stringify(env)).toThrow(ObjectStoreError);
    }
  });
});

describe('s3OptionsFromUrl', () => {
  it('reads endpoint, credentials, bucket, prefix and region', () => {
    expect(s3OptionsFromUrl('http://key:se%2Fcret@127.0.0.1:9000/bucket')).toEqual({
      bucket: 'bucket',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: { accessKeyId: 'key', secretAccessKey: 'se/cret' },
    });
    expect(s3OptionsFromUrl('https://s3.example.org/b/some/prefix?region=eu-west-2')).toMatchObject({
      bucket: 'b',
      prefix: 'some/prefix',
      region: 'eu-west-2',
      endpoint: 'https://s3.example.org',
    });
  });

  it('refuses what is not an S3 URL', () => {
    for (const url of ['nonsense', 'ftp://host/bucket', 'http://host/', 'http://host']) {
      expect(() => s3OptionsFromUrl(url), url).toThrow(ObjectStoreError);
    }
  });
});
