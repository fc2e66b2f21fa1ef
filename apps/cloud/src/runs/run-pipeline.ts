import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { unwrapKeyForRecipient } from '@keystage/crypto';
import type { DeliverySink, Prisma } from '@keystage/db';
import {
  type Change as DeltaChange,
  type DeltaValue,
  DuplicateKeyError,
  diffSnapshots,
  holdDecision,
  SnapshotBuilder,
  SnapshotJsonRows,
  summariseDiff,
} from '@keystage/delta';
import type { Dataset, ExtractDocument } from '@keystage/extract-spec';
import {
  type Change,
  type ChangeSet,
  encodeFiles,
  encoderFor,
  type InsertRows,
  type Value,
} from '@keystage/formats';
import { ResultDecoder } from '@keystage/result-stream';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { PlatformKeysService } from '../agents/platform-keys.service.js';
import { AuditService, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { DeliveryQueue } from '../deliveries/delivery-queue.js';
import { ResultStore } from '../results/result-store.js';
import { RunLifecycle } from './run-lifecycle.js';
import { type RunRow, RunsRepository } from './runs.repository.js';

/** Stored chunks read ahead of the one being decoded, so that reading overlaps decoding. */
const READ_AHEAD = 4;

/** The synthetic key of a dataset without key columns. */
const ROW_NUMBER = '__row';

const SINKS: Record<string, DeliverySink> = { webhook: 'WEBHOOK', pull: 'PULL', file: 'FILE' };

interface DatasetOutcome {
  dataset: Dataset;
  jobId: string;
  snapshotKey: string;
  rowCount: number;
  previousUploadedAt?: Date;
  skipped?: 'superseded';
  /**
   * Every chunk was reused from the result the delta state holds (that run's id): its snapshot,
   * already stored, is this one.
   */
  unchangedSince?: string;
  counts: { inserts: number; updates: number; deletes: number };
  fullLoad: boolean;
  hold?: string;
  /** The current and previous snapshot files, for encoding. */
  current: string;
  previous: string | undefined;
}

/**
 * After upload: for each dataset, decode and verify the stored chunks into a sorted snapshot, diff
 * it against the last one (a sorted merge over stored digests, bounded memory), encode the change
 * set in the extract's format and store it encrypted; then, in one transaction, record the change
 * sets as deliveries and advance the delta state. A crash anywhere before that transaction leaves
 * nothing behind that a retry would duplicate (same object keys, same idempotency keys); after it,
 * a retry finds the run processed and only (re)queues its deliveries.
 */
@Injectable()
export class RunPipeline {
  constructor(
    private readonly repo: RunsRepository,
    private readonly lifecycle: RunLifecycle,
    private readonly prisma: PrismaProvider,
    private readonly results: ResultStore,
    private readonly platformKeys: PlatformKeysService,
    private readonly deliveries: DeliveryQueue,
    private readonly audit: AuditService,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext(RunPipeline.name);
  }

  async process(runId: string): Promise<{ state: string }> {
    const run = await this.repo.find(runId);
    if (!run) return { state: 'gone' };
    if (run.state === 'UPLOADED') await this.build(run);
    const after = await this.repo.find(runId);
    if (after?.state === 'PROCESSED') await this.deliveries.dispatchRun(runId);
    return { state: (await this.repo.find(runId))?.state ?? 'gone' };
  }

  private async build(run: RunRow): Promise<void> {
    const version = await this.prisma.client.extractVersion.findUniqueOrThrow({
      where: { id: run.extractVersionId },
      select: { document: true, version: true, extractId: true, extract: { select: { name: true } } },
    });
    const doc = version.document as unknown as ExtractDocument;
    const school = await this.prisma.client.school.findUniqueOrThrow({
      where: { id: run.schoolId },
      select: { urn: true, name: true },
    });
    await mkdir(this.config.workDir, { recursive: true, mode: 0o700 });
    const work = await mkdtemp(join(this.config.workDir, 'run-'));
    try {
      const wrapping = await this.platformKeys.active('result-wrapping');
      /**
       * Where processing time goes, in the `run processed` log line and audit entry. Storing the new
       * snapshots runs alongside the encoding: `storeMs` is only what is left to wait for after it.
       */
      const timings = { decodeMs: 0, deltaMs: 0, encodeMs: 0, storeMs: 0 };
      const outcomes: DatasetOutcome[] = [];
      for (const job of await this.prisma.client.runJob.findMany({
        where: { runId: run.id },
        orderBy: { position: 'asc' },
      })) {
        const dataset = doc.datasets.find((d) => d.name === job.datasetName);
        if (!dataset || job.state !== 'UPLOADED' || !job.wrappedKey) {
          throw new Error(`dataset ${job.datasetName} is not uploaded`);
        }
        if (job.resultKeyId !== wrapping.keyId) throw new Error('result key rotated during the run');
        let t = performance.now();
        const same =
          run.resync || !dataset.key || dataset.delta === 'none'
            ? null
            : await this.repo.unchangedSnapshot(run, version.extractId, job);
        if (same) {
          // Nothing to decode or diff: the rows are the last result's, chunk for chunk.
          outcomes.push({
            dataset,
            jobId: job.id,
            snapshotKey: same.snapshotKey,
            rowCount: same.rowCount,
            unchangedSince: same.sourceRunId,
            counts: { inserts: 0, updates: 0, deletes: 0 },
            fullLoad: false,
            current: '',
            previous: undefined,
          });
          timings.deltaMs += performance.now() - t;
          continue;
        }
        const dataKey = unwrapKeyForRecipient(
          Buffer.from(job.wrappedKey, 'base64'),
          wrapping.privateKeyObject,
          job.id,
        );
        t = performance.now();
        const current = await this.snapshot(run, job, dataset, dataKey, work);
        timings.decodeMs += performance.now() - t;
        if ('error' in current) {
          await this.lifecycle.move(run.id, ['UPLOADED'], 'FAILED', {
            errorCode: current.code,
            errorMessage: current.error,
          });
          return;
        }
        t = performance.now();
        outcomes.push(
          await this.delta(run, version.extractId, job.id, dataset, current.path, current.rowCount, work),
        );
        timings.deltaMs += performance.now() - t;
      }
      // The snapshots go up (before the transaction that points the delta state at them) while the
      // change sets are encoded — not while the deltas are taken: a diff waits for each read of its
      // two files, and a store's reads, writes and flushes would be in the way.
      const snapshotsStored = Promise.allSettled(
        outcomes
          .filter((o) => !o.skipped && !o.unchangedSince)
          .map((o) => this.results.putFile(run.schoolId, o.snapshotKey, o.current)),
      );
      const records: Prisma.DeliveryCreateManyInput[] = [];
      try {
        const format = encoderFor(doc.delivery.format);
        const sink = SINKS[doc.delivery.target] ?? 'PULL';
        const createdAt = new Date();
        const changeSets = outcomes
          .filter((o) => !o.skipped && o.counts.inserts + o.counts.updates + o.counts.deletes > 0)
          .map((o) => this.changeSet(run, o, doc, version, school, createdAt));
        const upload = async (
          name: string,
          datasetName: string | null,
          cs: ChangeSet[],
          contentType: string,
        ) => {
          const files = encodeFiles(doc.delivery.format, cs);
          const key = this.results.changeSetKey(run.id, name);
          let size = 0;
          if (format.kind === 'files') {
            // A whole-run format (OneRoster): one JSON bundle of its files.
            size = await this.results.putCompressed(run.schoolId, key, bundle(files));
          } else {
            size = await this.results.putCompressed(run.schoolId, key, files[0]!.content);
          }
          const outcome = outcomes.filter((o) => datasetName === null || o.dataset.name === datasetName);
          const hold = outcome.map((o) => o.hold).filter(Boolean);
          records.push({
            runId: run.id,
            partnerId: run.partnerId,
            schoolId: run.schoolId,
            extractId: version.extractId,
            datasetName,
            sink,
            format: doc.delivery.format,
            state: hold.length > 0 ? 'HELD' : 'PENDING',
            holdReason: hold.length > 0 ? hold.join('; ') : null,
            idempotencyKey: `${run.id}.${datasetName ?? 'all'}`,
            objectKey: key,
            contentType,
            contentEncoding: 'gzip',
            byteSize: BigInt(size),
            fullLoad: outcome.every((o) => o.fullLoad),
            insertCount: outcome.reduce((n, o) => n + o.counts.inserts, 0),
            updateCount: outcome.reduce((n, o) => n + o.counts.updates, 0),
            deleteCount: outcome.reduce((n, o) => n + o.counts.deletes, 0),
          });
        };
        const encodeStarted = performance.now();
        if (changeSets.length > 0) {
          if (format.kind === 'files') {
            await upload('bundle.json', null, changeSets, 'application/json');
          } else {
            for (const cs of changeSets) {
              await upload(
                `${cs.metadata.dataset.name}.${format.fileExtension}`,
                cs.metadata.dataset.name,
                [cs],
                format.contentType,
              );
            }
          }
        }
        timings.encodeMs = performance.now() - encodeStarted;
      } catch (error) {
        // Nothing may still read the work directory when it is removed.
        await snapshotsStored;
        throw error;
      }
      const storeStarted = performance.now();
      for (const stored of await snapshotsStored) if (stored.status === 'rejected') throw stored.reason;
      timings.storeMs = performance.now() - storeStarted;
      const totals = {
        insertCount: outcomes.reduce((n, o) => n + o.counts.inserts, 0),
        updateCount: outcomes.reduce((n, o) => n + o.counts.updates, 0),
        deleteCount: outcomes.reduce((n, o) => n + o.counts.deletes, 0),
      };
      const moved = await this.prisma.client.$transaction(async (tx) => {
        const { count } = await tx.run.updateMany({
          where: { id: run.id, state: 'UPLOADED' },
          data: { state: 'PROCESSED', processedAt: new Date(), ...totals },
        });
        if (count === 0) return false;
        if (records.length > 0) await tx.delivery.createMany({ data: records, skipDuplicates: true });
        for (const o of outcomes) {
          if (o.skipped) continue;
          if (o.unchangedSince) {
            // Only while the state still holds that result (its snapshot may be gone otherwise):
            // if it moved on, the transaction is undone and the retry processes the job in full.
            const { count: kept } = await tx.deltaState.updateMany({
              where: {
                schoolId: run.schoolId,
                extractId: version.extractId,
                datasetName: o.dataset.name,
                paramsHash: run.paramsHash,
                runId: o.unchangedSince,
                snapshotKey: o.snapshotKey,
              },
              data: { runId: run.id, runUploadedAt: run.uploadedAt ?? new Date() },
            });
            if (kept === 0)
              throw new Error(`the delta state of ${o.dataset.name} moved on during processing`);
            continue;
          }
          const where = {
            schoolId_extractId_datasetName_paramsHash: {
              schoolId: run.schoolId,
              extractId: version.extractId,
              datasetName: o.dataset.name,
              paramsHash: run.paramsHash,
            },
          };
          await tx.deltaState.upsert({
            where,
            create: {
              ...where.schoolId_extractId_datasetName_paramsHash,
              snapshotKey: o.snapshotKey,
              rowCount: o.rowCount,
              runId: run.id,
              runUploadedAt: run.uploadedAt ?? new Date(),
            },
            update: {
              snapshotKey: o.snapshotKey,
              rowCount: o.rowCount,
              runId: run.id,
              runUploadedAt: run.uploadedAt ?? new Date(),
            },
          });
        }
        return true;
      });
      if (!moved) return;
      const processed = await this.repo.find(run.id);
      if (processed) {
        await this.lifecycle.recordCurrent(processed, undefined, {
          timings: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])),
        });
      }
      for (const r of records) {
        if (r.state === 'HELD') {
          this.logger.warn(
            { runId: run.id, dataset: r.datasetName, reason: r.holdReason },
            'change set held for review',
          );
          await this.audit.record(SYSTEM_ACTOR, {
            action: 'delivery.held',
            partnerId: run.partnerId,
            schoolId: run.schoolId,
            targetType: 'run',
            targetId: run.id,
            details: { dataset: r.datasetName, reason: r.holdReason },
          });
        }
      }
      await this.cleanupOldSnapshots(run, outcomes);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Decodes and verifies one dataset's chunks into a sorted snapshot file. */
  private async snapshot(
    run: RunRow,
    job: {
      id: string;
      chunkCount: number | null;
      rowCount: number | null;
      byteCount: bigint | null;
      resultSha256: string | null;
    },
    dataset: Dataset,
    dataKey: Buffer,
    work: string,
  ): Promise<{ path: string; rowCount: number } | { error: string; code: string }> {
    const decoder = new ResultDecoder({ runId: job.id, dataKey });
    const columns = dataset.columns.map((c) => c.name);
    // A dataset without key columns is sent whole every run: rows are keyed by their position.
    const keyless = !dataset.key;
    const builder = new SnapshotBuilder({
      columns: keyless ? [...columns, ROW_NUMBER] : columns,
      keyColumns: dataset.key ?? [ROW_NUMBER],
      tempDir: work,
      path: join(work, `${job.id}.ksnap`),
    });
    /** For each snapshot column, its column in the result (-1: the row number of a keyless dataset). */
    let select: number[] | undefined;
    const chunkCount = job.chunkCount ?? 0;
    const reads: Promise<Buffer>[] = [];
    const read = (seq: number) => {
      const bytes = this.results.getBuffer(run.schoolId, this.results.chunkKey(run.id, job.id, seq));
      // Awaited in turn; a read ahead of a refused chunk is dropped with its error.
      bytes.catch(() => undefined);
      return bytes;
    };
    try {
      for (let seq = 0; seq < chunkCount; seq++) {
        while (reads.length < READ_AHEAD && seq + reads.length < chunkCount)
          reads.push(read(seq + reads.length));
        const bytes = await reads.shift()!;
        // Checked against the agent's sha256 at ingest, and stored encrypted since.
        const opened = decoder.openCells(seq, bytes);
        if (opened.status !== 'opened') continue;
        if (opened.columns) {
          const order = columns.map((name) => opened.columns!.indexOf(name));
          const missing = columns.filter((_, i) => order[i]! < 0);
          if (missing.length > 0) {
            return {
              code: 'result.columns_mismatch',
              error: `the result lacks column(s) ${missing.join(', ')}`,
            };
          }
          select = keyless ? [...order, -1] : order;
        }
        if (!select) return { code: 'result.corrupt', error: 'the result has no column header' };
        // Straight from the chunk's bytes into snapshot records: no value per cell.
        builder.addCells(opened.cells, select);
      }
      decoder.finish({
        rowCount: job.rowCount ?? -1,
        chunkCount: job.chunkCount ?? -1,
        byteCount: Number(job.byteCount ?? -1),
        resultSha256: job.resultSha256 ?? '',
      });
      const done = await builder.finish();
      return { path: done.path, rowCount: done.rowCount };
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'result.invalid';
      this.logger.warn({ runId: run.id, dataset: dataset.name, code }, 'result refused');
      // The run's error is logged and shown to the partner: never the key values (pupil ids).
      const message =
        err instanceof DuplicateKeyError
          ? `two rows share one key (${err.keyColumns.join(', ')}); fix the extract's key or SQL`
          : (err as Error).message;
      return { code, error: `dataset ${dataset.name}: ${message}` };
    }
  }

  private async delta(
    run: RunRow,
    extractId: string,
    jobId: string,
    dataset: Dataset,
    current: string,
    rowCount: number,
    work: string,
  ): Promise<DatasetOutcome> {
    const snapshotKey = this.results.snapshotKey(extractId, dataset.name, run.paramsHash, run.id);
    const state =
      run.resync || dataset.delta === 'none' || !dataset.key
        ? null
        : await this.prisma.client.deltaState.findUnique({
            where: {
              schoolId_extractId_datasetName_paramsHash: {
                schoolId: run.schoolId,
                extractId,
                datasetName: dataset.name,
                paramsHash: run.paramsHash,
              },
            },
          });
    const base = {
      dataset,
      jobId,
      snapshotKey,
      rowCount,
      current,
      previous: undefined as string | undefined,
    };
    if (state && run.uploadedAt && state.runUploadedAt > run.uploadedAt && state.runId !== run.id) {
      // A later run already moved the delta on: this one's changes are stale.
      return {
        ...base,
        skipped: 'superseded',
        counts: { inserts: 0, updates: 0, deletes: 0 },
        fullLoad: false,
      };
    }
    if (!state) {
      // A full load: every row is an insert, and there is nothing to diff or to hold.
      return { ...base, counts: { inserts: rowCount, updates: 0, deletes: 0 }, fullLoad: true };
    }
    const previous = join(work, `${jobId}.previous.ksnap`);
    await this.results.download(run.schoolId, state.snapshotKey, previous);
    const summary = await summariseDiff(previous, current);
    const deletes = dataset.delta === 'changes' ? 0 : summary.deletes;
    const decision = holdDecision(summary, { threshold: this.config.delivery.holdShare });
    return {
      ...base,
      previous,
      counts: { inserts: summary.inserts, updates: summary.updates, deletes },
      fullLoad: false,
      ...(decision.hold ? { hold: decision.reason ?? 'too many changes' } : {}),
    };
  }

  private changeSet(
    run: RunRow,
    o: DatasetOutcome,
    doc: ExtractDocument,
    version: { version: number; extract: { name: string } },
    school: { urn: string; name: string },
    createdAt: Date,
  ): ChangeSet {
    const columns = o.dataset.columns.map((c) => c.name);
    const keyNames = o.dataset.key ?? columns;
    const keyIdx = keyNames.map((k) => columns.indexOf(k));
    const dropDeletes = o.dataset.delta === 'changes';
    const toRow = (values: DeltaValue[]) =>
      Object.fromEntries(columns.map((c, i) => [c, values[i] as Value])) as Record<string, Value>;
    const toKey = (key: DeltaValue[], row: DeltaValue[]) =>
      o.dataset.key
        ? Object.fromEntries(keyNames.map((k, i) => [k, key[i]]))
        : Object.fromEntries(keyIdx.map((c, i) => [keyNames[i], row[c]]));
    async function* changes(): AsyncGenerator<Change> {
      for await (const c of diffSnapshots(o.previous, o.current) as AsyncIterable<DeltaChange>) {
        if (c.op === 'insert') yield { op: 'insert', key: toKey(c.key, c.row), row: toRow(c.row) };
        else if (c.op === 'update')
          yield { op: 'update', key: toKey(c.key, c.row), row: toRow(c.row), changed: c.changed };
        else if (!dropDeletes) yield { op: 'delete', key: toKey(c.key, c.previousRow) };
      }
    }
    // A full load is the snapshot's rows (checked when it was built), in order: NDJSON and JSON
    // write them straight from the file. The snapshot's columns begin with the dataset's.
    const inserts: InsertRows = {
      [Symbol.asyncIterator]: changes,
      jsonRows: (template) => new SnapshotJsonRows(o.current, template),
    };
    return {
      metadata: {
        changeSetId: randomUUID(),
        idempotencyKey: `${run.id}.${o.dataset.name}`,
        runId: run.id,
        partnerId: run.partnerId,
        school,
        extract: { name: doc.name, version: version.version },
        dataset: {
          name: o.dataset.name,
          columns: o.dataset.columns.map((c) => ({
            name: c.name,
            type: c.type,
            nullable: c.nullable ?? false,
          })),
          key: keyNames,
        },
        fullLoad: o.fullLoad,
        counts: o.counts,
        createdAt,
      },
      changes: o.fullLoad ? inserts : changes(),
    };
  }

  /** Only the newest snapshot of a dataset is kept (older ones are never read again). */
  private async cleanupOldSnapshots(run: RunRow, outcomes: DatasetOutcome[]): Promise<void> {
    for (const o of outcomes) {
      if (o.skipped) continue;
      const prefix = o.snapshotKey.slice(0, o.snapshotKey.lastIndexOf('/') + 1);
      for await (const info of this.results.objects.list(run.schoolId, prefix)) {
        if (info.key !== o.snapshotKey)
          await this.results.delete(run.schoolId, info.key).catch(() => undefined);
      }
    }
  }
}

/** A whole-run format's files as one JSON document `{ "files": { name: text } }`. */
async function* bundle(files: { name: string; content: AsyncIterable<Buffer> }[]): AsyncGenerator<Buffer> {
  yield Buffer.from('{"files":{');
  let first = true;
  for (const file of files) {
    const parts: Buffer[] = [];
    for await (const p of file.content) parts.push(p);
    yield Buffer.from(
      `${first ? '' : ','}${JSON.stringify(file.name)}:${JSON.stringify(Buffer.concat(parts).toString('utf8'))}`,
    );
    first = false;
  }
  yield Buffer.from('}}');
}
