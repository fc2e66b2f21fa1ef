import { compareBytes, corrupt, decodeRow, encodeRecord, equalBytes, recordBound } from './encoding.js';
import { type SnapshotInfo, SnapshotReader } from './format.js';

/**
 * Reads a whole snapshot file and checks everything: header, footer, every block checksum, and that
 * each record is exactly what the builder would write for its row (canonical values, key encoding
 * and digest), with keys strictly increasing. Throws `delta.corrupt_snapshot` (or
 * `delta.unsupported_format`) on the first problem; returns the header facts otherwise. Slower than
 * a diff (it re-hashes every row): for checks and tests, not the delivery path.
 */
export async function verifySnapshot(path: string): Promise<SnapshotInfo> {
  const reader = await SnapshotReader.open(path);
  try {
    const { columns, keyColumns } = reader.info;
    const keyIndexes = Int32Array.from(keyColumns, (k) => columns.indexOf(k));
    if (keyIndexes.some((i) => i < 0)) throw corrupt(`${path}: a key column is not a column`);
    const keyMask = new Uint8Array(columns.length);
    for (const i of keyIndexes) keyMask[i] = 1;
    let scratch = Buffer.alloc(1024);
    let prevKey = Buffer.alloc(0);
    let first = true;
    while (reader.next() || (await reader.advance())) {
      const { buf, recStart, keyStart, keyEnd, recEnd } = reader;
      const row = decodeRow(buf, keyEnd, recEnd, columns.length);
      const bound = recordBound(row, columns, keyMask);
      if (scratch.length < bound) scratch = Buffer.alloc(2 * bound);
      const end = encodeRecord(scratch, 0, scratch.length, row, columns, keyIndexes);
      if (end !== recEnd - recStart || !equalBytes(scratch, 0, buf, recStart, end)) {
        throw corrupt(`${path}: record ${reader.count} is not the canonical encoding of its row`);
      }
      if (!first && compareBytes(prevKey, 0, prevKey.length, buf, keyStart, keyEnd) >= 0) {
        throw corrupt(`${path}: record ${reader.count} is not in key order (or repeats a key)`);
      }
      prevKey = Buffer.from(buf.subarray(keyStart, keyEnd));
      first = false;
    }
    return reader.info;
  } finally {
    await reader.close();
  }
}
