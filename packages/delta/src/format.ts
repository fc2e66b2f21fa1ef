import { closeSync, openSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { digestWorker, fillDigests } from './digests.js';
import { corrupt, DIGEST_ALGORITHM, KEY_OFFSET, keyLength, recordLength } from './encoding.js';
import { DeltaError, DeltaErrorCode } from './errors.js';

/*
 * Snapshot file, version 1 (all integers little-endian):
 *
 *   header   "KSDELTA\n" | u16 version=1 | u16 flags=0 | u32 header length | u64 row count
 *            | u32 meta length | meta (UTF-8 JSON) | u32 CRC-32 of every header byte before it
 *   blocks   u32 payload length | u32 chained CRC-32 | payload = whole records, in key order
 *   footer   "KSDEND\n\0" | u64 row count | u64 body bytes (all blocks) | u32 block count
 *            | u32 CRC of the last block (0 if none) | u32 header CRC | u32 CRC-32 of the footer before it
 *
 * A block's CRC is crc32(payload, CRC of the previous block), starting from 0, so a block that is
 * changed, dropped, repeated or moved fails the check of the block itself or of the next one. Blocks
 * hold records while the payload stays within BLOCK_PAYLOAD_BYTES; a larger record gets a block of
 * its own. The block boundaries depend only on the records, so the same rows always give the same
 * bytes.
 */

export const SNAPSHOT_FORMAT_VERSION = 1;
const HEADER_MAGIC = Buffer.from('KSDELTA\n', 'latin1');
const FOOTER_MAGIC = Buffer.from('KSDEND\n\0', 'latin1');
const HEADER_FIXED_BYTES = 28;
const FOOTER_BYTES = 40;
const BLOCK_HEADER_BYTES = 8;
/** Records are packed into blocks of at most this many payload bytes (one larger record excepted). */
export const BLOCK_PAYLOAD_BYTES = 64 * 1024;
/** Growth room of the writer's block buffer, so that encoding a row never forces an early flush. */
const BLOCK_SLACK_BYTES = 64 * 1024;

/** What a snapshot describes: its columns and, among them, its key columns (in key order). */
export interface SnapshotMeta {
  readonly columns: readonly string[];
  readonly keyColumns: readonly string[];
}

function writeU64(buf: Buffer, o: number, n: number): void {
  buf.writeUInt32LE(n % 0x100000000, o);
  buf.writeUInt32LE(Math.floor(n / 0x100000000), o + 4);
}

function readU64(buf: Buffer, o: number): number {
  const hi = buf.readUInt32LE(o + 4);
  if (hi >= 0x200000) throw corrupt('a 64-bit count is beyond 2^53');
  return hi * 0x100000000 + buf.readUInt32LE(o);
}

function encodeHeader(meta: SnapshotMeta, rowCount: number): Buffer {
  const json = Buffer.from(
    JSON.stringify({ columns: meta.columns, keyColumns: meta.keyColumns, digest: DIGEST_ALGORITHM }),
    'utf8',
  );
  const length = HEADER_FIXED_BYTES + json.length + 4;
  const buf = Buffer.alloc(length);
  HEADER_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(SNAPSHOT_FORMAT_VERSION, 8);
  buf.writeUInt16LE(0, 10);
  buf.writeUInt32LE(length, 12);
  writeU64(buf, 16, rowCount);
  buf.writeUInt32LE(json.length, 24);
  json.copy(buf, HEADER_FIXED_BYTES);
  buf.writeUInt32LE(crc32(buf.subarray(0, length - 4)), length - 4);
  return buf;
}

function writeAll(fd: number, buf: Buffer, start: number, end: number, position: number): void {
  while (start < end) {
    const n = writeSync(fd, buf, start, end - start, position);
    start += n;
    position += n;
  }
}

/** Bytes of one block buffer: a full block and room to encode one more record past its end. */
const BLOCK_BUFFER_BYTES = BLOCK_HEADER_BYTES + BLOCK_PAYLOAD_BYTES + BLOCK_SLACK_BYTES;
/** Blocks a writer with deferred digests has written itself before it hands blocks to the worker. */
const BLOCKS_BEFORE_WORKER = 16;
/**
 * Block buffers of a writer with deferred digests (≈ 4.3 MiB): the worker can be this many blocks
 * behind the caller minus one. Hashing is the slower of the two, so with few buffers the caller
 * soon waits for every block; with these, the caller gets through a result chunk's rows (a 3 MiB
 * body makes ≈ 30 blocks) and back to its event loop while the worker hashes on.
 */
const SLOTS = 64;
/** Start of the block buffers in a writer's shared memory (after an Int32 flag per buffer). */
const SLOTS_OFFSET = 4 * SLOTS;

export interface SnapshotWriterOptions {
  /**
   * The caller leaves each record's digest unset (encodes with `digest: false`): the writer fills
   * the digests before the block is written, on the digest worker where it can — a block is hashed
   * there while the caller encodes the next ones, and written in turn.
   */
  readonly deferDigests?: boolean;
}

/**
 * Writes one snapshot file synchronously, block by block (one block buffer of memory; {@link SLOTS}
 * with deferred digests). The caller appends records in key order; `finish()` writes the footer and
 * the final row count into the header.
 */
export class SnapshotWriter {
  /** Buffer of the current block; records are encoded into it at `reserve()`'s offset. */
  block: Buffer;
  rowCount = 0;
  private blockPos = BLOCK_HEADER_BYTES;
  private fd: number | undefined;
  private position: number;
  private headerLength: number;
  private blockCount = 0;
  private crc = 0;
  /** With deferred digests: {@link SLOTS} block buffers in memory shared with the digest worker. */
  private readonly shared: SharedArrayBuffer | undefined;
  private readonly slots: Buffer[] = [];
  /** Blocks (slots) whose digests the worker is computing, oldest first: written in this order. */
  private readonly pending: { slot: number; end: number }[] = [];
  /**
   * Set when the worker missed a deadline: it may still write into a slot it was given, so no slot
   * is used again (blocks go to private buffers, hashed here) and nothing it writes reaches the file.
   */
  private detached = false;

  constructor(
    readonly path: string,
    private readonly meta: SnapshotMeta,
    options: SnapshotWriterOptions = {},
  ) {
    if (options.deferDigests) {
      this.shared = new SharedArrayBuffer(SLOTS_OFFSET + SLOTS * BLOCK_BUFFER_BYTES);
      for (let i = 0; i < SLOTS; i++) {
        this.slots.push(Buffer.from(this.shared, SLOTS_OFFSET + i * BLOCK_BUFFER_BYTES, BLOCK_BUFFER_BYTES));
      }
      this.block = this.slots[0]!;
    } else {
      this.block = Buffer.allocUnsafe(BLOCK_BUFFER_BYTES);
    }
    const header = encodeHeader(meta, 0);
    this.fd = openSync(path, 'wx');
    this.headerLength = header.length;
    try {
      writeAll(this.fd, header, 0, header.length, 0);
    } catch (error) {
      this.close();
      throw error;
    }
    this.position = header.length;
  }

  /** Makes room for a record of at most `bound` bytes at `offset` (may replace `block`); returns `offset`. */
  reserve(bound: number): number {
    const need = this.blockPos + bound;
    if (need > this.block.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, 2 * this.block.length));
      this.block.copy(bigger, 0, 0, this.blockPos);
      this.block = bigger;
    }
    return this.blockPos;
  }

  /**
   * Bytes written to the file so far. They do not change any more, but for the header's (rewritten
   * with the row count by `finish()`).
   */
  get writtenBytes(): number {
    return this.position;
  }

  /** Offset in `block` where the next record goes (room up to `block.length`). */
  get offset(): number {
    return this.blockPos;
  }

  /**
   * Takes the record just encoded at block[start, end) (start = `offset`). Returns where the record
   * now starts in `block` (it moves to the start of a new block when it does not fit this one).
   */
  commit(start: number, end: number): number {
    if (end - BLOCK_HEADER_BYTES > BLOCK_PAYLOAD_BYTES && start > BLOCK_HEADER_BYTES) {
      // The record does not fit the current block: it starts the next one.
      const full = this.block;
      this.writeBlock(start, end - start);
      if (this.block === full) full.copyWithin(BLOCK_HEADER_BYTES, start, end);
      else full.copy(this.block, BLOCK_HEADER_BYTES, start, end);
      end = BLOCK_HEADER_BYTES + (end - start);
      start = BLOCK_HEADER_BYTES;
    }
    this.blockPos = end;
    this.rowCount++;
    return start;
  }

  /** Appends a record copied from src[start, end); returns where it starts in `block`. */
  append(src: Buffer, start: number, end: number): number {
    const length = end - start;
    const o = this.reserve(length);
    const block = this.block;
    if (length <= 256) {
      for (let i = 0; i < length; i++) block[o + i] = src[start + i]!;
    } else {
      src.copy(block, o, start, end);
    }
    return this.commit(o, o + length);
  }

  /**
   * The current block, block[header, payloadEnd), is complete: it is written — with deferred
   * digests, handed to the worker and written in turn later, or hashed here and written. The next
   * block starts in `block` (another buffer when this one went to the worker), with room for a
   * record of `carry` bytes.
   */
  private writeBlock(payloadEnd: number, carry = 0): void {
    this.blockPos = BLOCK_HEADER_BYTES;
    if (this.shared === undefined) {
      this.write(this.block, payloadEnd);
      return;
    }
    const slot = this.slots.indexOf(this.block);
    if (
      !this.detached &&
      slot >= 0 &&
      this.blockCount + this.pending.length >= BLOCKS_BEFORE_WORKER &&
      digestWorker().start(
        this.shared,
        slot,
        SLOTS_OFFSET + slot * BLOCK_BUFFER_BYTES + BLOCK_HEADER_BYTES,
        SLOTS_OFFSET + slot * BLOCK_BUFFER_BYTES + payloadEnd,
      )
    ) {
      this.pending.push({ slot, end: payloadEnd });
      // The next block goes into a buffer the worker is not using (waiting for the oldest if needed).
      if (this.pending.length === SLOTS) this.writePending(1);
      this.block = this.detached
        ? Buffer.allocUnsafe(Math.max(BLOCK_BUFFER_BYTES, BLOCK_HEADER_BYTES + carry))
        : this.slots[this.freeSlot()]!;
      return;
    }
    this.writePending(this.pending.length);
    fillDigests(this.block, BLOCK_HEADER_BYTES, payloadEnd);
    this.write(this.block, payloadEnd);
    if (this.detached) {
      if (slot >= 0)
        this.block = Buffer.allocUnsafe(Math.max(BLOCK_BUFFER_BYTES, BLOCK_HEADER_BYTES + carry));
      return;
    }
    // A block grown for a large record is done with: back to the shared buffers if the next fits.
    if (slot < 0 && BLOCK_HEADER_BYTES + carry <= BLOCK_BUFFER_BYTES) this.block = this.slots[0]!;
  }

  /** A slot the worker does not have (pending ones are at most SLOTS - 1 here). */
  private freeSlot(): number {
    const busy = new Uint8Array(SLOTS);
    for (const p of this.pending) busy[p.slot] = 1;
    return busy.indexOf(0);
  }

  /** Writes the `count` oldest blocks the worker has, each once its digests are done. */
  private writePending(count: number): void {
    for (const { slot, end } of this.pending.splice(0, count)) {
      const block = this.slots[slot]!;
      // Once the worker missed a deadline, nothing more is waited for (the event loop is blocked
      // while waiting): the remaining blocks are hashed here.
      if (this.detached || !digestWorker().wait(this.shared!, slot)) {
        this.detached = true;
        fillDigests(block, BLOCK_HEADER_BYTES, end);
      }
      this.write(block, end);
    }
  }

  /** Writes block[0, payloadEnd) to the file, with its header. */
  private write(block: Buffer, payloadEnd: number): void {
    this.crc = crc32(block.subarray(BLOCK_HEADER_BYTES, payloadEnd), this.crc);
    block.writeUInt32LE(payloadEnd - BLOCK_HEADER_BYTES, 0);
    block.writeUInt32LE(this.crc, 4);
    writeAll(this.fd!, block, 0, payloadEnd, this.position);
    this.position += payloadEnd;
    this.blockCount++;
  }

  /** Writes the last block, the footer and the header's row count; closes the file. Returns its size. */
  finish(): number {
    if (this.fd === undefined)
      throw new DeltaError(DeltaErrorCode.InvalidState, 'the snapshot writer is closed');
    try {
      if (this.blockPos > BLOCK_HEADER_BYTES) this.writeBlock(this.blockPos);
      this.writePending(this.pending.length);
      const header = encodeHeader(this.meta, this.rowCount);
      const headerCrc = header.readUInt32LE(header.length - 4);
      const footer = Buffer.alloc(FOOTER_BYTES);
      FOOTER_MAGIC.copy(footer, 0);
      writeU64(footer, 8, this.rowCount);
      writeU64(footer, 16, this.position - this.headerLength);
      footer.writeUInt32LE(this.blockCount, 24);
      footer.writeUInt32LE(this.crc, 28);
      footer.writeUInt32LE(headerCrc, 32);
      footer.writeUInt32LE(crc32(footer.subarray(0, 36)), 36);
      writeAll(this.fd, footer, 0, FOOTER_BYTES, this.position);
      writeAll(this.fd, header, 0, header.length, 0);
      return this.position + FOOTER_BYTES;
    } finally {
      this.close();
    }
  }

  /** Closes the file without finishing it (the caller removes it). */
  close(): void {
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      closeSync(fd);
    }
  }
}

/** Header and footer facts of a snapshot file. */
export interface SnapshotInfo {
  readonly columns: readonly string[];
  readonly keyColumns: readonly string[];
  readonly rowCount: number;
  /** File size in bytes. */
  readonly bytes: number;
  readonly formatVersion: number;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/**
 * Reads a snapshot file block by block with async reads into one buffer (`chunkBytes`, grown if a
 * block is bigger). Every block is checked against its chained CRC before any of its records are
 * handed out; the end of the file is checked against the footer (row count, block count, CRC).
 *
 * Step with `r.next() || (await r.advance())` (the await only at block boundaries). The current record
 * is buf[recStart, recEnd): its key buf[keyStart, keyEnd), its digest the 16 bytes at recStart + 6,
 * its row encoding buf[keyEnd, recEnd). The bytes stay valid until the next `nextBlock()`.
 *
 * With `readAhead`, the next `chunkBytes` of the file are being read while the current ones are
 * used (two more buffers of that size), so that a reader that goes through a whole file does not
 * wait for each read in turn.
 */
export class SnapshotReader {
  buf: Buffer;
  recStart = 0;
  keyStart = 0;
  keyEnd = 0;
  recEnd = 0;
  /** Records handed out so far. */
  count = 0;
  private pos = 0;
  private end = 0;
  private bufLen = 0;
  /** File offset of buf[0]. */
  private bufFileOffset: number;
  /** Offset in buf of the next block header. */
  private next_ = 0;
  private blocksRead = 0;
  private crc = 0;
  private closed = false;
  /** Read-ahead: file bytes [aheadAt, aheadAt + aheadLen) in `ahead`, of which aheadPos are used. */
  private ahead: Buffer | undefined;
  private aheadAt = 0;
  private aheadPos = 0;
  private aheadLen = 0;
  /** The read in flight into `spare`, of the bytes after `ahead`'s. */
  private reading: Promise<number> | undefined;
  private spare: Buffer | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly info: SnapshotInfo,
    bodyStart: number,
    private readonly bodyEnd: number,
    private readonly blockCount: number,
    private readonly lastCrc: number,
    chunkBytes: number,
    readAhead: boolean,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
    this.bufFileOffset = bodyStart;
    if (readAhead) {
      this.ahead = Buffer.allocUnsafe(chunkBytes);
      this.spare = Buffer.allocUnsafe(chunkBytes);
      this.aheadAt = bodyStart;
    }
  }

  /** Opens `path`, checks header and footer (truncation is refused here, before any record). */
  static async open(path: string, chunkBytes = 1024 * 1024, readAhead = false): Promise<SnapshotReader> {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size < HEADER_FIXED_BYTES + 4 + FOOTER_BYTES) {
        throw corrupt(`${path}: ${size} bytes is too short for a snapshot file (truncated?)`);
      }
      const fixed = Buffer.alloc(HEADER_FIXED_BYTES);
      await readExactly(fh, fixed, 0);
      if (!fixed.subarray(0, 8).equals(HEADER_MAGIC))
        throw corrupt(`${path} is not a Keystage snapshot file`);
      const version = fixed.readUInt16LE(8);
      if (version !== SNAPSHOT_FORMAT_VERSION) {
        throw new DeltaError(
          DeltaErrorCode.UnsupportedFormat,
          `${path}: snapshot format version ${version} is not supported (this code reads ${SNAPSHOT_FORMAT_VERSION})`,
        );
      }
      const headerLength = fixed.readUInt32LE(12);
      const metaLength = fixed.readUInt32LE(24);
      if (headerLength !== HEADER_FIXED_BYTES + metaLength + 4 || headerLength + FOOTER_BYTES > size) {
        throw corrupt(`${path}: bad header length (truncated or corrupted)`);
      }
      const header = Buffer.alloc(headerLength);
      await readExactly(fh, header, 0);
      const headerCrc = header.readUInt32LE(headerLength - 4);
      if (crc32(header.subarray(0, headerLength - 4)) !== headerCrc)
        throw corrupt(`${path}: header checksum mismatch`);
      const headerRows = readU64(header, 16);
      let meta: unknown;
      try {
        meta = JSON.parse(header.toString('utf8', HEADER_FIXED_BYTES, HEADER_FIXED_BYTES + metaLength));
      } catch {
        throw corrupt(`${path}: header metadata is not JSON`);
      }
      const m = meta as { columns?: unknown; keyColumns?: unknown; digest?: unknown };
      if (!isStringArray(m.columns) || !isStringArray(m.keyColumns)) {
        throw corrupt(`${path}: header metadata lacks columns or key columns`);
      }
      if (m.digest !== DIGEST_ALGORITHM) {
        throw new DeltaError(
          DeltaErrorCode.UnsupportedFormat,
          `${path}: row digest ${JSON.stringify(m.digest)} is not supported (${DIGEST_ALGORITHM})`,
        );
      }

      const footer = Buffer.alloc(FOOTER_BYTES);
      await readExactly(fh, footer, size - FOOTER_BYTES);
      if (!footer.subarray(0, 8).equals(FOOTER_MAGIC)) throw corrupt(`${path}: no footer (truncated file)`);
      if (crc32(footer.subarray(0, 36)) !== footer.readUInt32LE(36))
        throw corrupt(`${path}: footer checksum mismatch`);
      const rowCount = readU64(footer, 8);
      const bodyBytes = readU64(footer, 16);
      if (bodyBytes !== size - FOOTER_BYTES - headerLength) {
        throw corrupt(`${path}: file size does not match the footer (truncated or padded)`);
      }
      if (rowCount !== headerRows || footer.readUInt32LE(32) !== headerCrc) {
        throw corrupt(`${path}: header and footer do not belong together`);
      }
      const info: SnapshotInfo = {
        columns: m.columns,
        keyColumns: m.keyColumns,
        rowCount,
        bytes: size,
        formatVersion: version,
      };
      return new SnapshotReader(
        fh,
        path,
        info,
        headerLength,
        size - FOOTER_BYTES,
        footer.readUInt32LE(24),
        footer.readUInt32LE(28),
        chunkBytes,
        readAhead,
      );
    } catch (error) {
      await fh.close();
      throw error;
    }
  }

  /** Moves to the next record of the current block; false when the block is used up. */
  next(): boolean {
    const p = this.pos;
    if (p >= this.end) return false;
    const buf = this.buf;
    if (p + KEY_OFFSET > this.end) throw corrupt(`${this.path}: a record header runs past its block`);
    const length = recordLength(buf, p);
    const keyEnd = p + KEY_OFFSET + keyLength(buf, p);
    if (keyEnd > p + length || p + length > this.end) throw corrupt(`${this.path}: bad record length`);
    this.recStart = p;
    this.keyStart = p + KEY_OFFSET;
    this.keyEnd = keyEnd;
    this.recEnd = p + length;
    this.pos = p + length;
    this.count++;
    return true;
  }

  /**
   * Loads and checks the next block; false at the end of the file, after checking that the whole
   * body was read and matches the footer. Previous records' bytes are invalid afterwards.
   */
  async nextBlock(): Promise<boolean> {
    if (this.blocksRead === this.blockCount) {
      if (this.bufFileOffset + this.next_ !== this.bodyEnd)
        throw corrupt(`${this.path}: data after the last block`);
      if (this.count !== this.info.rowCount) {
        throw corrupt(`${this.path}: ${this.count} records, the footer says ${this.info.rowCount}`);
      }
      if (this.crc !== this.lastCrc) throw corrupt(`${this.path}: checksum mismatch at the end of the file`);
      return false;
    }
    await this.ensure(BLOCK_HEADER_BYTES);
    const b = this.next_;
    const length = this.buf.readUInt32LE(b);
    if (this.bufFileOffset + b + BLOCK_HEADER_BYTES + length > this.bodyEnd) {
      throw corrupt(`${this.path}: a block runs past the end of the data (truncated or corrupted)`);
    }
    await this.ensure(BLOCK_HEADER_BYTES + length);
    const start = this.next_ + BLOCK_HEADER_BYTES;
    const crc = crc32(this.buf.subarray(start, start + length), this.crc);
    if (crc !== this.buf.readUInt32LE(this.next_ + 4)) {
      throw corrupt(`${this.path}: checksum mismatch in block ${this.blocksRead + 1} of ${this.blockCount}`);
    }
    this.crc = crc;
    this.blocksRead++;
    this.pos = start;
    this.end = start + length;
    this.next_ = this.end;
    return true;
  }

  /** Moves to the next record, loading blocks as needed; false at the end. */
  async advance(): Promise<boolean> {
    if (this.next()) return true;
    while (await this.nextBlock()) if (this.next()) return true;
    return false;
  }

  /** Makes `n` bytes from the next block header available in `buf`. */
  private async ensure(n: number): Promise<void> {
    if (this.bufLen - this.next_ >= n) return;
    if (this.next_ > 0) {
      this.buf.copyWithin(0, this.next_, this.bufLen);
      this.bufLen -= this.next_;
      this.bufFileOffset += this.next_;
      this.pos -= this.next_;
      this.end -= this.next_;
      this.next_ = 0;
    }
    if (this.buf.length < n) {
      const bigger = Buffer.allocUnsafe(Math.max(n, 2 * this.buf.length));
      this.buf.copy(bigger, 0, 0, this.bufLen);
      this.buf = bigger;
    }
    while (this.bufLen < n) {
      const at = this.bufFileOffset + this.bufLen;
      const want = Math.min(this.buf.length - this.bufLen, this.bodyEnd - at);
      if (want <= 0) throw corrupt(`${this.path}: unexpected end of data (truncated)`);
      let bytesRead: number;
      if (this.ahead === undefined) {
        ({ bytesRead } = await this.fh.read(this.buf, this.bufLen, want, at));
      } else {
        if (this.aheadPos === this.aheadLen) await this.readAhead();
        bytesRead = Math.min(want, this.aheadLen - this.aheadPos);
        this.ahead.copy(this.buf, this.bufLen, this.aheadPos, this.aheadPos + bytesRead);
        this.aheadPos += bytesRead;
      }
      if (bytesRead === 0) throw corrupt(`${this.path}: unexpected end of file (truncated)`);
      this.bufLen += bytesRead;
    }
  }

  /**
   * Makes the next bytes of the file `ahead` (the read in flight, or a new one) and starts reading
   * the ones after them. Reads go in file order: `ahead` always continues where `buf` ends.
   */
  private async readAhead(): Promise<void> {
    const at = this.aheadAt + this.aheadLen;
    const read = (into: Buffer, from: number) => {
      const length = Math.min(into.length, this.bodyEnd - from);
      return length <= 0 ? Promise.resolve(0) : this.fh.read(into, 0, length, from).then((r) => r.bytesRead);
    };
    const bytesRead = await (this.reading ?? read(this.spare!, at));
    [this.ahead, this.spare] = [this.spare!, this.ahead!];
    this.aheadAt = at;
    this.aheadPos = 0;
    this.aheadLen = bytesRead;
    this.reading = bytesRead === 0 ? undefined : read(this.spare, at + bytesRead);
    // Awaited by the next readAhead (or close); a failure surfaces there.
    this.reading?.catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reading?.catch(() => undefined);
    await this.fh.close();
  }
}

async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw corrupt('unexpected end of file (truncated)');
    done += bytesRead;
  }
}

/** Header and footer of a snapshot file (cheap: two small reads). Refuses a truncated file. */
export async function readSnapshotInfo(path: string): Promise<SnapshotInfo> {
  const reader = await SnapshotReader.open(path);
  await reader.close();
  return reader.info;
}

/** Throws `delta.schema_mismatch` unless the two snapshots have the same columns and key columns. */
export function assertSameSchema(previous: SnapshotInfo, current: SnapshotInfo): void {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((v, i) => v === b[i]);
  if (!same(previous.columns, current.columns) || !same(previous.keyColumns, current.keyColumns)) {
    throw new DeltaError(
      DeltaErrorCode.SchemaMismatch,
      'the previous snapshot has other columns or key columns than the current one; resync (no previous snapshot)',
    );
  }
}
