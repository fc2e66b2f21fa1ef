import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { unwrapKeyForRecipient } from '@keystage/crypto';
import type { DeliverySink, Prisma } from '@keystage/db';
import { DuplicateKeyError, holdDecision, summariseDiff } from '@keystage/delta';
import type { Dataset, ExtractDocument } from '@keystage/extract-spec';
import { type ChangeSetMetadata, encodeFiles, encoderFor } from '@keystage/formats';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { PlatformKeysService } from '../agents/platform-keys.service.js';
import { AuditService, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { UUID } from '../common/uuid.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { DeliveryQueue } from '../deliveries/delivery-queue.js';
import { changeSetOf, SNAPSHOT_ENCODING, snapshotChangeSet } from '../results/change-sets.js';
import { ResultStore } from '../results/result-store.js';
import { RunLifecycle } from './run-lifecycle.js';
import { type RunRow, RunsRepository } from './runs.repository.js';
import { SnapshotDecoding, type UploadSummary } from './snapshot-decoding.js';
import { type Prebuilt, SnapshotPrebuilds } from './snapshot-prebuilds.js';

/** Stored chunks read ahead of the one being decoded, so that reading overlaps decoding. */
const READ_AHEAD = 4;

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
  /** Stores the snapshot when it was mostly stored while decoded ahead (else: putFile). */
  store?: () => Promise<unknown>;
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
    private readonly prebuilds: SnapshotPrebuilds,
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
    /** Work directories of snapshots decoded ahead, taken over by this processing. */
    const disposers: (() => Promise<void>)[] = [];
    const jobIds: string[] = [];
    try {
      const wrapping = await this.platformKeys.active('result-wrapping');
      /**
       * Where processing time goes, in the `run processed` log line and audit entry. Storing the new
       * snapshots runs alongside the encoding: `storeMs` is only what is left to wait for after it.
       */
      const timings = { decodeMs: 0, deltaMs: 0, encodeMs: 0, storeMs: 0 };
      let decodedAhead = 0;
      const outcomes: DatasetOutcome[] = [];
      const jobs = await this.prisma.client.runJob.findMany({
        where: { runId: run.id },
        orderBy: { position: 'asc' },
      });
      jobIds.push(...jobs.map((j) => j.id));
      for (const job of jobs) {
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
        const current = await this.snapshot(run, job, dataset, dataKey, work, disposers);
        timings.decodeMs += performance.now() - t;
        if ('ahead' in current) decodedAhead++;
        if ('error' in current) {
          await this.lifecycle.move(run.id, ['UPLOADED'], 'FAILED', {
            errorCode: current.code,
            errorMessage: current.error,
          });
          return;
        }
        t = performance.now();
        const outcome = await this.delta(
          run,
          version.extractId,
          job.id,
          dataset,
          current.path,
          current.rowCount,
          work,
        );
        // Stored while it was written (decoded ahead, in order, under the same key): only the end
        // is left to write.
        const { storing, bytes } = current;
        if (storing && bytes !== undefined && storing.key === outcome.snapshotKey) {
          outcome.store = () => storing.put.finish(bytes);
        }
        outcomes.push(outcome);
        timings.deltaMs += performance.now() - t;
      }
      // The snapshots go up (before the transaction that points the delta state at them) while the
      // change sets are encoded — not while the deltas are taken: a diff waits for each read of its
      // two files, and a store's reads, writes and flushes would be in the way.
      const snapshotsStored = Promise.allSettled(
        outcomes
          .filter((o) => !o.skipped && !o.unchangedSince)
          .map((o) =>
            o.store
              ? // Stored while written; if that failed late (a full disk, say), store the file now.
                o.store().catch(() => this.results.putFile(run.schoolId, o.snapshotKey, o.current))
              : this.results.putFile(run.schoolId, o.snapshotKey, o.current),
          ),
      );
      const records: Prisma.DeliveryCreateManyInput[] = [];
      try {
        const format = encoderFor(doc.delivery.format);
        const sink = SINKS[doc.delivery.target] ?? 'PULL';
        const createdAt = new Date();
        const changed = outcomes.filter(
          (o) => !o.skipped && o.counts.inserts + o.counts.updates + o.counts.deletes > 0,
        );
        const record = (
          key: string,
          datasetName: string | null,
          contentType: string,
          contentEncoding: string,
          size: number | null,
        ) => {
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
            contentEncoding,
            byteSize: size === null ? null : BigInt(size),
            fullLoad: outcome.every((o) => o.fullLoad),
            insertCount: outcome.reduce((n, o) => n + o.counts.inserts, 0),
            updateCount: outcome.reduce((n, o) => n + o.counts.updates, 0),
            deleteCount: outcome.reduce((n, o) => n + o.counts.deletes, 0),
          });
        };
        const metadata = (o: DatasetOutcome) => this.metadata(run, o, doc, version, school, createdAt);
        const changeSet = (o: DatasetOutcome) =>
          changeSetOf(o.dataset, metadata(o), o.current, o.fullLoad ? undefined : o.previous);
        const encodeStarted = performance.now();
        if (changed.length > 0 && format.kind === 'files') {
          // A whole-run format (OneRoster): one JSON bundle of its files.
          const key = this.results.changeSetKey(run.id, 'bundle.json');
          const files = encodeFiles(doc.delivery.format, changed.map(changeSet));
          const size = await this.results.putCompressed(run.schoolId, key, bundle(files));
          record(key, null, 'application/json', 'gzip', size);
        } else if (format.kind !== 'files') {
          for (const o of changed) {
            const name = o.dataset.name;
            const key = this.results.changeSetKey(run.id, `${name}.${format.fileExtension}`);
            if (o.fullLoad) {
              // Every row of the snapshot, which is stored anyway: written out when it is read.
              const stored = snapshotChangeSet(o.snapshotKey, doc.delivery.format, o.dataset, metadata(o));
              await this.results.putSnapshotChangeSet(run.schoolId, key, stored);
              record(key, name, format.contentType, SNAPSHOT_ENCODING, null);
            } else {
              const [file] = encodeFiles(doc.delivery.format, [changeSet(o)]);
              const size = await this.results.putCompressed(run.schoolId, key, file!.content);
              record(key, name, format.contentType, 'gzip', size);
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
          // Datasets whose snapshot was decoded while their chunks arrived (SnapshotPrebuilds).
          decodedAhead,
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
      await this.cleanupOldSnapshots(run, version.extractId, outcomes);
    } finally {
      await rm(work, { recursive: true, force: true });
      for (const dispose of disposers) await dispose().catch(() => undefined);
      // A job processing did not take (reused, superseded, failed) leaves nothing decoded ahead.
      for (const id of jobIds) this.prebuilds.release(id);
    }
  }

  /**
   * Decodes and verifies one dataset's chunks into a sorted snapshot file — or finishes the one this
   * node decoded while the chunks arrived, when it took them all (and decodes the stored chunks if
   * that does not check out).
   */
  private async snapshot(
    run: RunRow,
    job: UploadSummary & { id: string; wrappedKey: string | null },
    dataset: Dataset,
    dataKey: Buffer,
    work: string,
    disposers: (() => Promise<void>)[],
  ): Promise<
    | { path: string; rowCount: number; bytes?: number; ahead?: true; storing?: Prebuilt['storing'] }
    | { error: string; code: string }
  > {
    const chunkCount = job.chunkCount ?? 0;
    const ahead = await this.prebuilds.take(job.id, job.wrappedKey ?? '', chunkCount);
    if (ahead) {
      const { storing } = ahead;
      // Whatever is not finished by the end of processing is not stored.
      disposers.push(async () => {
        await storing?.put.abort();
        await ahead.dispose();
      });
      try {
        const done = await ahead.decoding.finish(job);
        if (!done.sortedInput) await storing?.put.abort();
        return { ...done, ahead: true, ...(storing && done.sortedInput ? { storing } : {}) };
      } catch (err) {
        this.logger.info(
          { runId: run.id, dataset: dataset.name, code: (err as { code?: string }).code },
          'the snapshot decoded ahead does not check out; decoding the stored chunks',
        );
        await ahead.decoding.abort();
      }
    }
    const decoding = new SnapshotDecoding(job.id, dataset, dataKey, work);
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
        decoding.add(seq, await reads.shift()!);
      }
      return await decoding.finish(job);
    } catch (err) {
      await decoding.abort();
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

  private metadata(
    run: RunRow,
    o: DatasetOutcome,
    doc: ExtractDocument,
    version: { version: number; extract: { name: string } },
    school: { urn: string; name: string },
    createdAt: Date,
  ): ChangeSetMetadata {
    return {
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
        key: o.dataset.key ?? o.dataset.columns.map((c) => c.name),
      },
      fullLoad: o.fullLoad,
      counts: o.counts,
      createdAt,
    };
  }

  /**
   * Only the newest snapshot of a dataset is kept for the delta — and those that full loads' change
   * sets are kept as, until their run's retention ends (the run sweeper deletes them then). A
   * snapshot of a run that is not processed yet, or was uploaded after this one, is another
   * processing's (runs of one dataset may be processed side by side): never touched here.
   */
  private async cleanupOldSnapshots(
    run: RunRow,
    extractId: string,
    outcomes: DatasetOutcome[],
  ): Promise<void> {
    const prisma = this.prisma.client;
    for (const o of outcomes) {
      if (o.skipped) continue;
      const prefix = o.snapshotKey.slice(0, o.snapshotKey.lastIndexOf('/') + 1);
      const keep = new Set([o.snapshotKey]);
      const state = await prisma.deltaState.findUnique({
        where: {
          schoolId_extractId_datasetName_paramsHash: {
            schoolId: run.schoolId,
            extractId,
            datasetName: o.dataset.name,
            paramsHash: run.paramsHash,
          },
        },
        select: { snapshotKey: true },
      });
      if (state) keep.add(state.snapshotKey);
      const candidates: { key: string; runId: string }[] = [];
      for await (const info of this.results.objects.list(run.schoolId, prefix)) {
        const name = info.key.slice(prefix.length);
        if (!keep.has(info.key) && name.endsWith('.snap'))
          candidates.push({ key: info.key, runId: name.slice(0, -5) });
      }
      if (candidates.length === 0) continue;
      const runIds = candidates.map((c) => c.runId).filter((id) => UUID.test(id));
      const inUse = new Set([
        // Full loads' change sets kept as these snapshots, still readable.
        ...(
          await prisma.delivery.findMany({
            where: {
              runId: { in: runIds },
              datasetName: o.dataset.name,
              contentEncoding: SNAPSHOT_ENCODING,
              state: { not: 'DISCARDED' },
              run: { purgedAt: null },
            },
            select: { runId: true },
          })
        ).map((d) => d.runId),
        // Runs still being processed, or uploaded after this one.
        ...(
          await prisma.run.findMany({
            where: {
              id: { in: runIds },
              OR: [
                { state: 'UPLOADED' },
                ...(run.uploadedAt ? [{ uploadedAt: { gt: run.uploadedAt } }] : []),
              ],
            },
            select: { id: true },
          })
        ).map((r) => r.id),
      ]);
      for (const c of candidates) {
        if (!inUse.has(c.runId)) await this.results.delete(run.schoolId, c.key).catch(() => undefined);
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
