import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExtractDocument } from '@keystage/extract-spec';
import type { GrowingFilePut } from '@keystage/object-store';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { ResultStore } from '../results/result-store.js';
import { SnapshotDecoding } from './snapshot-decoding.js';

/** Uploads decoded ahead at once on this node (each holds a builder and a snapshot file). */
const MAX_BUILDS = 4;
/** Chunks an upload may have waiting to be decoded before decoding ahead is given up for it. */
const MAX_WAITING = 64;
/** A decode-ahead nobody took (the run failed, was cancelled, or is processed elsewhere) goes. */
const IDLE_MS = 2 * 60_000;

interface Prebuild {
  jobId: string;
  wrappedKey: string;
  /** The seq of the next chunk it takes. */
  expected: number;
  waiting: number;
  /** Decodes run one after another, in seq order. */
  chain: Promise<void>;
  decoding?: SnapshotDecoding;
  /** The snapshot going into the store as it is written (where the store can take it so). */
  storing?: { key: string; put: GrowingFilePut };
  snapshotKey?: string;
  schoolId?: string;
  dir?: string;
  dropped: boolean;
  timer?: NodeJS.Timeout;
}

/** A snapshot decoded while its chunks arrived, handed to processing. */
export interface Prebuilt {
  decoding: SnapshotDecoding;
  /** The snapshot stored so far under `key` (finish it with the file's size, or abort it). */
  storing?: { key: string; put: GrowingFilePut };
  /** Removes its work directory (and whatever processing left there). */
  dispose(): Promise<void>;
}

/**
 * Decoding ahead: on a node that both takes uploads (gateway) and processes runs (worker), each
 * chunk, once stored and acknowledged, is also opened and added to the dataset's snapshot right
 * away — while the rest of the upload is still on its way — so processing finds the snapshot nearly
 * built instead of reading every chunk back. It is only a head start, never the truth: anything out
 * of the ordinary (a gap, a restarted upload, a chunk that does not decode, too many waiting, a
 * restart of the node, processing on another node) drops it, and processing decodes the stored
 * chunks as it always does, with the same checks and errors. What it writes: the snapshot file in
 * the node's work directory and — while the rows come in key order, with a store that can take it
 * so — that snapshot's object under its key, sealed as it grows and stored (committed) only when
 * processing finishes it; dropped, both go.
 */
@Injectable()
export class SnapshotPrebuilds implements OnModuleDestroy {
  private readonly builds = new Map<string, Prebuild>();
  private readonly enabled: boolean;

  constructor(
    private readonly prisma: PrismaProvider,
    private readonly results: ResultStore,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext('Runs');
    this.enabled = config.roles.has('worker') && config.roles.has('gateway');
  }

  /**
   * Chunk `seq` of the upload sealed with `wrappedKey` is stored: decode it too. Returns at once
   * (the decode follows the ones before it); never throws.
   */
  offer(
    job: { id: string; runId: string; datasetName: string; wrappedKey: string },
    seq: number,
    bytes: Buffer,
    dataKey: Buffer,
  ): void {
    if (!this.enabled) return;
    let b = this.builds.get(job.id);
    if (seq === 0) {
      // A new upload (or the same one started again with a fresh key).
      if (b) this.drop(b);
      if (this.builds.size >= MAX_BUILDS) return;
      b = {
        jobId: job.id,
        wrappedKey: job.wrappedKey,
        expected: 0,
        waiting: 0,
        chain: Promise.resolve(),
        dropped: false,
      };
      this.builds.set(job.id, b);
    }
    if (!b) return;
    if (b.dropped || b.wrappedKey !== job.wrappedKey || b.expected !== seq || b.waiting >= MAX_WAITING) {
      this.drop(b);
      return;
    }
    const build = b;
    build.expected = seq + 1;
    build.waiting++;
    clearTimeout(build.timer);
    build.timer = setTimeout(() => this.drop(build), IDLE_MS).unref();
    build.chain = build.chain
      .then(async () => {
        if (build.dropped) return;
        if (!build.decoding) {
          const run = await this.run(job.runId);
          const dataset = run?.doc.datasets.find((d) => d.name === job.datasetName);
          if (!run || !dataset || build.dropped) throw new Error('no such dataset');
          await mkdir(this.config.workDir, { recursive: true, mode: 0o700 });
          build.dir = await mkdtemp(join(this.config.workDir, 'ahead-'));
          build.decoding = new SnapshotDecoding(job.id, dataset, dataKey, build.dir);
          build.schoolId = run.schoolId;
          build.snapshotKey = this.results.snapshotKey(
            run.extractId,
            dataset.name,
            run.paramsHash,
            job.runId,
          );
        }
        build.decoding.add(seq, bytes);
        await this.store(build);
      })
      .catch((err: unknown) => {
        // Processing decodes the stored chunks and reports whatever is wrong with them.
        this.logger.debug(
          { runId: job.runId, seq, code: (err as { code?: string }).code },
          'decoding ahead given up',
        );
        this.drop(build);
      })
      .finally(() => {
        build.waiting--;
      });
  }

  /**
   * Stores the snapshot as it is written: once its file exists, the store follows it (segments
   * written as their bytes are final), so that little is left to write and flush when it is done.
   * A snapshot that stops being written in order (the rows are sorted at the end) is stored then.
   */
  private async store(build: Prebuild): Promise<void> {
    const out = build.decoding?.streamingOutput;
    if (!out) {
      if (build.storing) {
        const { put } = build.storing;
        build.storing = undefined;
        await put.abort();
      }
      return;
    }
    if (!build.storing && out.bytes > 0) {
      const put = await this.results.objects.putGrowingFile(build.schoolId!, build.snapshotKey!, out.path);
      if (!put) return;
      build.storing = { key: build.snapshotKey!, put };
    }
    build.storing?.put.advance(out.bytes);
  }

  /**
   * The snapshot decoded ahead for this upload, once every chunk decoded so far is in, if it took
   * exactly `chunkCount` chunks of it; undefined otherwise (processing decodes the stored chunks).
   */
  async take(jobId: string, wrappedKey: string, chunkCount: number): Promise<Prebuilt | undefined> {
    const b = this.builds.get(jobId);
    if (!b) return undefined;
    this.builds.delete(jobId);
    clearTimeout(b.timer);
    await b.chain;
    if (b.dropped || !b.decoding || b.wrappedKey !== wrappedKey || b.decoding.nextSeq !== chunkCount) {
      await this.discard(b);
      return undefined;
    }
    const dir = b.dir;
    return {
      decoding: b.decoding,
      ...(b.storing ? { storing: b.storing } : {}),
      dispose: async () => {
        if (dir) await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /** Drops whatever was decoded ahead for this job (nothing will take it). */
  release(jobId: string): void {
    const b = this.builds.get(jobId);
    if (b) this.drop(b);
  }

  async onModuleDestroy(): Promise<void> {
    const all = [...this.builds.values()];
    this.builds.clear();
    await Promise.all(all.map((b) => this.discard(b)));
  }

  private drop(b: Prebuild): void {
    if (this.builds.get(b.jobId) === b) this.builds.delete(b.jobId);
    if (b.dropped) return;
    clearTimeout(b.timer);
    void this.discard(b);
  }

  /** Stops it and removes its files, once the decode under way (if any) is over. */
  private async discard(b: Prebuild): Promise<void> {
    b.dropped = true;
    clearTimeout(b.timer);
    await b.chain.catch(() => undefined);
    await b.storing?.put.abort().catch(() => undefined);
    await b.decoding?.abort().catch(() => undefined);
    if (b.dir) await rm(b.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private async run(runId: string) {
    const run = await this.prisma.client.run.findUnique({
      where: { id: runId },
      select: {
        schoolId: true,
        paramsHash: true,
        extractVersion: { select: { document: true, extractId: true } },
      },
    });
    if (!run) return undefined;
    return {
      schoolId: run.schoolId,
      paramsHash: run.paramsHash,
      extractId: run.extractVersion.extractId,
      doc: run.extractVersion.document as unknown as ExtractDocument,
    };
  }
}
