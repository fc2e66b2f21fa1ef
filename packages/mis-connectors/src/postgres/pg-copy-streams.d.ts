// The part of pg-copy-streams 7 this package uses (it ships no types).
declare module 'pg-copy-streams' {
  import type { Readable } from 'node:stream';
  import type { Submittable } from 'pg';

  export interface CopyToStreamQuery extends Readable, Submittable {
    rowCount: number;
  }
  export function to(text: string, options?: { highWaterMark?: number }): CopyToStreamQuery;
}
