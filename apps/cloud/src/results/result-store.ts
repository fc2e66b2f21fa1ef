import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGunzip, createGzip } from 'node:zlib';
import { deriveKey } from '@keystage/crypto';
import { encodeFiles } from '@keystage/formats';
import { EncryptedObjectStore, type ObjectBody, objectStoreFromEnv } from '@keystage/object-store';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import {
  changeSetOf,
  parseSnapshotChangeSet,
  SNAPSHOT_ENCODING,
  type SnapshotChangeSet,
} from './change-sets.js';

const pad = (n: number) => String(n).padStart(9, '0');
/**
 * Plaintext bytes per encrypted segment of new objects (readers take it from each object's header).
 * Change sets and snapshots run to hundreds of megabytes: a segment costs a cipher set-up, an IV
 * and a write each, so they are larger than the store's 64 KiB default.
 */
const SEGMENT_BYTES = 1024 * 1024;
/** Full loads written out at once on a node (see renderSlot). */
const MAX_RENDERS = 4;
/** Work files untouched this long belong to no running process (see onModuleInit). */
const STALE_WORK_MS = 6 * 3600_000;
/** Decrypted bytes a download may hold while they are written. */
const DOWNLOAD_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Everything the control plane keeps of a school's data, as objects in the configured store
 * (a local directory by default, S3 in production), each encrypted with a fresh data key wrapped by
 * the school's own key (derived from the platform secret): uploaded result chunks, delta snapshots,
 * encoded change sets. Object keys hold ids only, never data.
 */
@Injectable()
export class ResultStore implements OnModuleInit {
  readonly objects: EncryptedObjectStore;
  private readonly workDir: string;
  private renders = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(@Inject(CLOUD_CONFIG) config: CloudConfig) {
    this.workDir = config.workDir;
    const inner = objectStoreFromEnv(config.objectStore.env as NodeJS.ProcessEnv);
    const masterKey = deriveKey(Buffer.from(config.secret, 'utf8'), 'object-store/master');
    this.objects = new EncryptedObjectStore(inner, { masterKey, segmentSize: SEGMENT_BYTES });
  }

  chunkKey(runId: string, jobId: string, seq: number): string {
    return `runs/${runId}/${jobId}/${pad(seq)}.chunk`;
  }

  snapshotKey(extractId: string, datasetName: string, paramsHash: string, runId: string): string {
    return `snapshots/${extractId}/${safe(datasetName)}/${paramsHash}/${runId}.snap`;
  }

  changeSetKey(runId: string, deliveryName: string): string {
    return `changesets/${runId}/${safe(deliveryName)}`;
  }

  async put(schoolId: string, key: string, body: ObjectBody): Promise<number> {
    const { size } = await this.objects.put(schoolId, key, body);
    return size;
  }

  /**
   * Stores `body` gzip-compressed (level 1, on zlib's threads, so it overlaps with making the body):
   * change sets are text that shrinks 20–25×, so there is that much less to encrypt and write.
   * Returns the size of the body itself. Read it back with `getContent(…, 'gzip')`.
   */
  async putCompressed(schoolId: string, key: string, body: AsyncIterable<Buffer>): Promise<number> {
    let size = 0;
    const counted = Readable.from(
      (async function* () {
        for await (const part of body) {
          size += part.length;
          yield part;
        }
      })(),
    );
    const gzip = createGzip({ level: 1, chunkSize: 256 * 1024, strategy: constants.Z_DEFAULT_STRATEGY });
    // Either way: a failing body fails the store's read of gzip; a failing store ends the body.
    pipeline(counted, gzip).catch(() => undefined);
    await this.objects.put(schoolId, key, gzip);
    return size;
  }

  /**
   * A stored change set's content as delivered (`encoding`: how it was stored — `gzip`, none, or
   * `snapshot`: a full load kept as its snapshot, whose text is written as it is read).
   */
  async getContent(schoolId: string, key: string, encoding: string | null): Promise<Readable> {
    if (encoding === SNAPSHOT_ENCODING) return this.renderSnapshotChangeSet(schoolId, key);
    const stored = await this.objects.get(schoolId, key);
    if (encoding === null) return stored;
    if (encoding !== 'gzip') throw new Error(`unknown content encoding ${encoding}`);
    const gunzip = createGunzip();
    // A reader that stops early (or an error on either side) tears down both streams.
    pipeline(stored, gunzip).catch(() => undefined);
    return gunzip;
  }

  /** Stores a full load's change set as where its rows are (see {@link SnapshotChangeSet}). */
  async putSnapshotChangeSet(schoolId: string, key: string, changeSet: SnapshotChangeSet): Promise<void> {
    await this.objects.put(schoolId, key, Buffer.from(JSON.stringify(changeSet), 'utf8'));
  }

  /**
   * The text of a change set kept as its snapshot: the snapshot is decrypted into a work file and
   * written in the change set's format as the stream is read (the file goes when the stream ends,
   * fails or is destroyed).
   */
  private async renderSnapshotChangeSet(schoolId: string, key: string): Promise<Readable> {
    const stored = parseSnapshotChangeSet(await this.getBuffer(schoolId, key));
    const release = await this.renderSlot();
    let dir: string | undefined;
    const cleanup = async () => {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      release();
    };
    try {
      await mkdir(this.workDir, { recursive: true, mode: 0o700 });
      dir = await mkdtemp(join(this.workDir, 'render-'));
      const path = join(dir, 'snapshot.ksnap');
      await this.download(schoolId, stored.snapshotKey, path);
      const [file] = encodeFiles(stored.format, [
        changeSetOf(stored.dataset, stored.metadata, path, undefined),
      ]);
      const out = Readable.from(file!.content, { objectMode: false });
      out.once('close', () => void cleanup());
      return out;
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  /**
   * A turn to write out a full load (each holds a decrypted copy of a snapshot in the work
   * directory): at most MAX_RENDERS at once on a node, the others wait. Returns the release.
   */
  private async renderSlot(): Promise<() => void> {
    while (this.renders >= MAX_RENDERS) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.renders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.renders--;
      this.waiting.shift()?.();
    };
  }

  /**
   * Work files a process left behind when it stopped mid-way (a crash, a kill): decrypted
   * snapshots of processing, decoding ahead and writing out. Several processes may share the
   * directory, so only what nobody has touched for hours goes.
   */
  async onModuleInit(): Promise<void> {
    const before = Date.now() - STALE_WORK_MS;
    let entries: string[];
    try {
      entries = await readdir(this.workDir);
    } catch {
      return;
    }
    for (const name of entries) {
      if (!/^(run|ahead|render)-/.test(name)) continue;
      const path = join(this.workDir, name);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs < before)
        await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Stores a local file (which must not change meanwhile). */
  async putFile(schoolId: string, key: string, path: string): Promise<number> {
    const { size } = await this.objects.putFile(schoolId, key, path);
    return size;
  }

  get(schoolId: string, key: string): Promise<Readable> {
    return this.objects.get(schoolId, key);
  }

  async getBuffer(schoolId: string, key: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of await this.objects.get(schoolId, key)) parts.push(part as Buffer);
    // A small object (a result chunk) is one segment: no copy.
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Decrypts the object into a local work file (not synced: it does not outlive the process's work). */
  async download(schoolId: string, key: string, path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await pipeline(
      await this.objects.get(schoolId, key),
      // Room for many segments: they are written together while more are decrypted.
      createWriteStream(path, { mode: 0o600, highWaterMark: DOWNLOAD_BUFFER_BYTES }),
    );
  }

  delete(schoolId: string, key: string): Promise<void> {
    return this.objects.delete(schoolId, key);
  }

  deletePrefix(schoolId: string, prefix: string): Promise<number> {
    return this.objects.deletePrefix(schoolId, prefix);
  }
}

/** Dataset names are `[A-Za-z0-9][A-Za-z0-9_.-]*` already; keep keys safe whatever happens. */
function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._=-]/g, '_');
}
