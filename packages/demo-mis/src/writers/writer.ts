import type { Batch } from '../generator.js';

/** A destination for generated rows. Batches arrive table by table, in `TABLES` order. */
export interface RowWriter {
  /** Human-readable target, without credentials. */
  readonly display: string;
  /** Connects (or opens the file) and creates the tables; fails fast on a bad target. */
  open(): Promise<void>;
  write(batch: Batch): Promise<void>;
  /** Creates indexes and commits. */
  close(): Promise<void>;
  /** Leaves nothing half-written behind (rolls back, removes the temporary file). */
  abort(): Promise<void>;
}
