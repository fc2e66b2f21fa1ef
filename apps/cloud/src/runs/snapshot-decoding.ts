import { join } from 'node:path';
import { SnapshotBuilder } from '@keystage/delta';
import type { Dataset } from '@keystage/extract-spec';
import { ResultDecoder } from '@keystage/result-stream';

/** The synthetic key of a dataset without key columns. */
export const ROW_NUMBER = '__row';

/** A result that cannot become a snapshot for a reason of its own (not a bad chunk). */
export class ResultRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the agent said of a finished upload, as the run job records it. */
export interface UploadSummary {
  rowCount: number | null;
  chunkCount: number | null;
  byteCount: bigint | null;
  resultSha256: string | null;
}

/**
 * One dataset's result on its way into a sorted snapshot file: its stored (encrypted) chunks are
 * opened and verified in seq order and their rows go straight into the snapshot builder. Used after
 * the upload (reading the chunks back from the store) and, on a node that also processes runs,
 * while the chunks arrive (see SnapshotPrebuilds). Not safe for concurrent use.
 */
export class SnapshotDecoding {
  private readonly decoder: ResultDecoder;
  private readonly builder: SnapshotBuilder;
  private readonly columns: string[];
  private readonly keyless: boolean;
  /** For each snapshot column, its column in the result (-1: the row number of a keyless dataset). */
  private select: number[] | undefined;

  constructor(jobId: string, dataset: Dataset, dataKey: Buffer, dir: string) {
    this.decoder = new ResultDecoder({ runId: jobId, dataKey });
    this.columns = dataset.columns.map((c) => c.name);
    // A dataset without key columns is sent whole every run: rows are keyed by their position.
    this.keyless = !dataset.key;
    this.builder = new SnapshotBuilder({
      columns: this.keyless ? [...this.columns, ROW_NUMBER] : this.columns,
      keyColumns: dataset.key ?? [ROW_NUMBER],
      tempDir: dir,
      path: join(dir, `${jobId}.ksnap`),
    });
  }

  /** The seq of the next chunk to add. */
  get nextSeq(): number {
    return this.decoder.nextSeq;
  }

  /**
   * Opens stored chunk `seq` (checked against the agent's sha256 at ingest and stored encrypted
   * since) and adds its rows. Throws the decoder's and builder's errors, or ResultRefused.
   */
  add(seq: number, bytes: Buffer): void {
    const opened = this.decoder.openCells(seq, bytes);
    if (opened.status !== 'opened') return;
    if (opened.columns) {
      const order = this.columns.map((name) => opened.columns!.indexOf(name));
      const missing = this.columns.filter((_, i) => order[i]! < 0);
      if (missing.length > 0) {
        throw new ResultRefused(
          'result.columns_mismatch',
          `the result lacks column(s) ${missing.join(', ')}`,
        );
      }
      this.select = this.keyless ? [...order, -1] : order;
    }
    if (!this.select) throw new ResultRefused('result.corrupt', 'the result has no column header');
    // Straight from the chunk's bytes into snapshot records: no value per cell.
    this.builder.addCells(opened.cells, this.select);
  }

  /** The snapshot file while it is written in order (see SnapshotBuilder.streamingOutput). */
  get streamingOutput(): { path: string; bytes: number } | undefined {
    return this.builder.streamingOutput;
  }

  /**
   * Checks the whole result against the agent's figures and writes the snapshot file (`bytes`
   * long; `sortedInput`: it was written as the rows came).
   */
  async finish(
    summary: UploadSummary,
  ): Promise<{ path: string; rowCount: number; bytes: number; sortedInput: boolean }> {
    this.decoder.finish({
      rowCount: summary.rowCount ?? -1,
      chunkCount: summary.chunkCount ?? -1,
      byteCount: Number(summary.byteCount ?? -1),
      resultSha256: summary.resultSha256 ?? '',
    });
    const done = await this.builder.finish();
    return { path: done.path, rowCount: done.rowCount, bytes: done.bytes, sortedInput: done.sortedInput };
  }

  /** Removes what the builder wrote (nothing once finished). */
  abort(): Promise<void> {
    return this.builder.abort();
  }
}
