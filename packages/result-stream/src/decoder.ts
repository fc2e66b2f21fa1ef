import { createHash, type Hash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { AEAD_KEY_BYTES, CryptoError, decryptChunk, sha256Hex } from '@keystage/crypto';
import type { ResultSummary } from './encoder.js';
import { ResultStreamError, ResultStreamErrorCode } from './errors.js';
import {
  CODEC_DEFLATE_RAW,
  CODEC_STORED,
  MAX_CHUNK_BYTES,
  MAX_CHUNK_PLAINTEXT_BYTES,
  unpackBody,
  type WireValue,
} from './format.js';

export interface ResultDecoderOptions {
  /** The run the chunks must belong to. */
  runId: string;
  /** The run's 32-byte data key (unwrapped from `job.accept`). */
  dataKey: Uint8Array;
  /**
   * Most bytes one chunk may inflate to (default and maximum 16 MiB). Inflating stops and the
   * chunk is refused with `chunk.inflate_limit` as soon as the output passes it.
   */
  maxChunkPlaintextBytes?: number;
}

/** The outcome of {@link ResultDecoder.open}. */
export type OpenedChunk =
  | {
      status: 'opened';
      seq: number;
      rows: WireValue[][];
      /** The column names: present on chunk 0 only. */
      columns?: string[];
    }
  | {
      /** A chunk below the next expected seq: already opened, ignore it (a resend after reconnect). */
      status: 'duplicate';
      seq: number;
    };

/** What {@link ResultDecoder.finish} verified. */
export interface VerifiedResult extends ResultSummary {
  columns: string[];
}

/**
 * Control-plane side: opens the chunks of one run, in seq order, and verifies the whole stream at
 * the end. Each chunk is checked in this order: size, sha256 of the bytes, authenticated decryption
 * with the (runId, seq) associated data, the codec byte, inflating with a hard output limit, the
 * msgpack body and its shape. A chunk that fails any check leaves the decoder unchanged (the sender
 * may resend it); the caller decides whether to fail the run.
 */
export class ResultDecoder {
  readonly runId: string;
  private readonly dataKey: Uint8Array;
  private readonly maxPlaintext: number;
  private readonly digest: Hash = createHash('sha256');
  private next = 0;
  private rows = 0;
  private bytes = 0;
  private columnNames: string[] | undefined;
  private finished = false;

  constructor(options: ResultDecoderOptions) {
    const { runId, dataKey } = options;
    if (typeof runId !== 'string' || runId.length === 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'runId is a non-empty string');
    }
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== AEAD_KEY_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `dataKey is ${AEAD_KEY_BYTES} bytes`,
      );
    }
    const max = options.maxChunkPlaintextBytes ?? MAX_CHUNK_PLAINTEXT_BYTES;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_CHUNK_PLAINTEXT_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.InvalidArgument,
        `maxChunkPlaintextBytes is 1 to ${MAX_CHUNK_PLAINTEXT_BYTES}`,
      );
    }
    this.runId = runId;
    this.dataKey = Uint8Array.from(dataKey);
    this.maxPlaintext = max;
  }

  /** The seq the next `open` expects (= chunks opened so far). */
  get nextSeq(): number {
    return this.next;
  }

  /** Rows decoded so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** The column names, once chunk 0 is opened. */
  get columns(): readonly string[] | undefined {
    return this.columnNames;
  }

  /**
   * Opens chunk `seq`. A seq below {@link nextSeq} returns `{ status: 'duplicate' }` without looking
   * at the bytes; a seq above it throws `chunk.gap`. Other failures: `chunk.size`,
   * `chunk.digest_mismatch`, `chunk.decrypt_failed` (another run, another position, another key or
   * altered bytes), `chunk.inflate_limit`, `chunk.unsupported_format`, `chunk.corrupt`.
   */
  open(seq: number, bytes: Uint8Array, sha256: string): OpenedChunk {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidArgument, 'seq is a non-negative integer');
    }
    if (seq < this.next) return { status: 'duplicate', seq };
    if (this.finished) {
      throw new ResultStreamError(ResultStreamErrorCode.InvalidState, 'the result is already finished');
    }
    if (seq > this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkGap,
        `chunk ${seq} arrived while chunk ${this.next} is expected`,
      );
    }
    if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_CHUNK_BYTES) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkSize,
        `a chunk is 1 to ${MAX_CHUNK_BYTES} bytes`,
      );
    }
    if (typeof sha256 !== 'string' || sha256Hex(bytes) !== sha256.toLowerCase()) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkDigestMismatch,
        `chunk ${seq} does not match its sha256`,
      );
    }
    let plaintext: Buffer;
    try {
      plaintext = decryptChunk(bytes, this.dataKey, { runId: this.runId, seq });
    } catch (cause) {
      if (!(cause instanceof CryptoError)) throw cause;
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkDecryptFailed,
        `chunk ${seq} did not authenticate for this run and position`,
        { cause },
      );
    }
    const body = this.inflate(seq, plaintext);
    const decoded = unpackBody(body, seq === 0, this.columnNames?.length);
    // Everything checked: commit.
    this.digest.update(body);
    this.next = seq + 1;
    this.rows += decoded.rows.length;
    this.bytes += bytes.length;
    if (decoded.columns) {
      this.columnNames = decoded.columns;
      return { status: 'opened', seq, rows: decoded.rows, columns: decoded.columns };
    }
    return { status: 'opened', seq, rows: decoded.rows };
  }

  /**
   * Checks the stream against the agent's `run.complete` figures: `result.incomplete` while chunks
   * are missing (wait for them, then call again), `result.chunk_count_mismatch`,
   * `result.row_count_mismatch`, `result.byte_count_mismatch`, `result.digest_mismatch`. A failed
   * check changes nothing; after a successful one the decoder accepts no more chunks.
   */
  finish(summary: ResultSummary): VerifiedResult {
    const { rowCount, chunkCount, byteCount, resultSha256 } = summary;
    if (this.next === 0 || this.columnNames === undefined) {
      if (Number.isSafeInteger(chunkCount) && chunkCount > 0) {
        throw new ResultStreamError(ResultStreamErrorCode.Incomplete, `0 of ${chunkCount} chunks opened`);
      }
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkCountMismatch,
        'a result has at least one chunk (chunk 0 carries the columns)',
      );
    }
    if (chunkCount > this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.Incomplete,
        `${this.next} of ${chunkCount} chunks opened`,
      );
    }
    if (chunkCount !== this.next) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkCountMismatch,
        `${this.next} chunks opened, the summary says ${chunkCount}`,
      );
    }
    if (rowCount !== this.rows) {
      throw new ResultStreamError(
        ResultStreamErrorCode.RowCountMismatch,
        `${this.rows} rows decoded, the summary says ${rowCount}`,
      );
    }
    if (byteCount !== this.bytes) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ByteCountMismatch,
        `${this.bytes} chunk bytes received, the summary says ${byteCount}`,
      );
    }
    const digest = this.digest.copy().digest('hex');
    if (typeof resultSha256 !== 'string' || resultSha256.toLowerCase() !== digest) {
      throw new ResultStreamError(ResultStreamErrorCode.DigestMismatch, 'the result digest does not match');
    }
    this.finished = true;
    this.dataKey.fill(0);
    return { rowCount, chunkCount, byteCount, resultSha256: digest, columns: this.columnNames };
  }

  private inflate(seq: number, plaintext: Buffer): Buffer {
    const codec = plaintext[0];
    const data = plaintext.subarray(1);
    if (codec === CODEC_STORED) {
      if (data.length > this.maxPlaintext) {
        throw new ResultStreamError(
          ResultStreamErrorCode.ChunkInflateLimit,
          `chunk ${seq} is over the limit`,
        );
      }
      return data;
    }
    if (codec !== CODEC_DEFLATE_RAW) {
      throw new ResultStreamError(
        ResultStreamErrorCode.ChunkUnsupportedFormat,
        `chunk ${seq} has unknown codec ${String(codec)}`,
      );
    }
    try {
      return inflateRawSync(data, { maxOutputLength: this.maxPlaintext });
    } catch (cause) {
      if ((cause as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ResultStreamError(
          ResultStreamErrorCode.ChunkInflateLimit,
          `chunk ${seq} inflates beyond ${this.maxPlaintext} bytes`,
          { cause },
        );
      }
      throw new ResultStreamError(ResultStreamErrorCode.ChunkCorrupt, `chunk ${seq} does not inflate`, {
        cause,
      });
    }
  }
}
