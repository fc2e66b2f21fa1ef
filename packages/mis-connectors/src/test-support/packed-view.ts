import { Unpackr } from 'msgpackr';
import { isPackedBatch, type PackedBatch } from '../packed.js';
import type { MisConnector, QueryParam, Row, RowStream, StreamOptions } from '../types.js';

// As the control plane reads chunks: plain msgpack, 64-bit integers as numbers.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** The rows of a packed batch, decoded (each checked to end where `ends` says). */
export function unpackBatch(batch: PackedBatch): Row[] {
  const rows: Row[] = [];
  let start = 0;
  for (let i = 0; i < batch.rowCount; i++) {
    const end = batch.ends[i] as number;
    rows.push(unpackr.unpack(batch.bytes.subarray(start, end)) as Row);
    start = end;
  }
  if (start !== batch.bytes.length) throw new Error('a packed batch has bytes after its last row');
  return rows;
}

/**
 * A connector seen through the packed path: every stream is opened with `packed: true` and its
 * packed batches are decoded back into rows, so the connector contract runs against it as is.
 * `packedRows()` counts the rows that arrived packed.
 */
export function packedView(inner: MisConnector): MisConnector & { packedRows(): number } {
  let packedRows = 0;
  /** The open stream's state: cancelled rows of a batch already here are not handed out (as RunRowStream). */
  let current = { cancelled: false };
  return {
    kind: inner.kind,
    display: inner.display,
    connect: () => inner.connect(),
    serverVersion: () => inner.serverVersion(),
    cancel: () => {
      current.cancelled = true;
      return inner.cancel();
    },
    permissions: () => inner.permissions(),
    close: () => inner.close(),
    packedRows: () => packedRows,
    async stream(sql: string, params?: readonly QueryParam[], options?: StreamOptions): Promise<RowStream> {
      const state = { cancelled: false };
      const s = await inner.stream(sql, params, { ...options, packed: true });
      current = state;
      async function* batches(): AsyncGenerator<Row[]> {
        for await (const b of s.packedBatches()) {
          if (isPackedBatch(b)) {
            packedRows += b.rowCount;
            yield unpackBatch(b);
          } else {
            yield b;
          }
        }
      }
      return {
        columns: s.columns,
        get rowCount() {
          return s.rowCount;
        },
        get buffered() {
          return s.buffered;
        },
        close: () => s.close(),
        batches,
        packedBatches: batches,
        async *[Symbol.asyncIterator]() {
          for await (const b of batches()) {
            for (const row of b) {
              if (state.cancelled) break;
              yield row;
            }
          }
        },
      };
    },
  };
}
