import { ObjectStoreError, ObjectStoreErrorCode } from './errors.js';
import { LocalDirectoryStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3-store.js';

/** Where the local store lives when `OBJECT_STORE_DIR` is not set (relative to the working directory). */
export const DEFAULT_OBJECT_STORE_DIR = 'data/objects';

/**
 * The store the environment asks for:
 *
 * - `OBJECT_STORE=local` (the default): {@link LocalDirectoryStore} in `OBJECT_STORE_DIR`
 *   (default `data/objects`).
 * - `OBJECT_STORE=s3`: {@link S3ObjectStore} with `S3_BUCKET` (required), `S3_REGION` (required,
 *   else `AWS_REGION`), `S3_ENDPOINT`, `S3_FORCE_PATH_STYLE` (`true`/`false`), `S3_PREFIX`;
 *   credentials come from the AWS SDK's default chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
 *   `AWS_PROFILE`, web identity, ECS/EC2 roles …), never from these variables.
 *
 * Throws `object_store.invalid_config` for anything else.
 */
export function objectStoreFromEnv(env: NodeJS.ProcessEnv = process.env): ObjectStore {
  const kind = (env.OBJECT_STORE ?? 'local').trim() || 'local';
  if (kind === 'local')
    return new LocalDirectoryStore(env.OBJECT_STORE_DIR?.trim() || DEFAULT_OBJECT_STORE_DIR);
  if (kind === 's3') return new S3ObjectStore(s3OptionsFromEnv(env));
  throw invalid(`OBJECT_STORE is 'local' or 's3', not ${JSON.stringify(kind)}`);
}

/** The S3 part of {@link objectStoreFromEnv}. */
export function s3OptionsFromEnv(env: NodeJS.ProcessEnv = process.env): S3ObjectStoreOptions {
  const bucket = env.S3_BUCKET?.trim();
  if (!bucket) throw invalid('OBJECT_STORE=s3 needs S3_BUCKET');
  const region = env.S3_REGION?.trim() || env.AWS_REGION?.trim();
  if (!region) throw invalid('OBJECT_STORE=s3 needs S3_REGION (or AWS_REGION)');
  const options: S3ObjectStoreOptions = { bucket, region };
  const endpoint = env.S3_ENDPOINT?.trim();
  if (endpoint) options.endpoint = checkEndpoint(endpoint, 'S3_ENDPOINT');
  const pathStyle = env.S3_FORCE_PATH_STYLE?.trim().toLowerCase();
  if (pathStyle) {
    if (['true', '1', 'yes'].includes(pathStyle)) options.forcePathStyle = true;
    else if (['false', '0', 'no'].includes(pathStyle)) options.forcePathStyle = false;
    else throw invalid('S3_FORCE_PATH_STYLE is true or false');
  }
  const prefix = env.S3_PREFIX?.trim();
  if (prefix) options.prefix = prefix;
  return options;
}

/**
 * Options from one URL, as the S3 contract test takes them (`KEYSTAGE_TEST_S3_URL`):
 * `http(s)://ACCESS_KEY:SECRET@host:port/bucket[/key/prefix][?region=…]`. Path-style addressing;
 * region `us-east-1` unless given. Credentials in a URL are for tests and local servers only.
 */
export function s3OptionsFromUrl(url: string): S3ObjectStoreOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid('an S3 URL is http(s)');
  const [bucket, ...prefix] = parsed.pathname.split('/').filter((part) => part.length > 0);
  if (!bucket) throw invalid('an S3 URL names the bucket as its first path segment');
  const options: S3ObjectStoreOptions = {
    bucket: decodeURIComponent(bucket),
    region: parsed.searchParams.get('region') || 'us-east-1',
    endpoint: `${parsed.protocol}//${parsed.host}`,
    forcePathStyle: true,
  };
  if (parsed.username || parsed.password) {
    options.credentials = {
      accessKeyId: decodeURIComponent(parsed.username),
      secretAccessKey: decodeURIComponent(parsed.password),
    };
  }
  if (prefix.length > 0) options.prefix = prefix.join('/');
  return options;
}

function checkEndpoint(value: string, name: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // fall through
  }
  throw invalid(`${name} is an http(s) URL`);
}

function invalid(message: string): ObjectStoreError {
  return new ObjectStoreError(ObjectStoreErrorCode.InvalidConfig, message);
}
