import type { Change, ChangeSetMetadata, ColumnMetadata } from '../change-set.js';

/** Change-set metadata for tests; `overrides` replace whole fields. */
export function metadataFor(
  dataset: { name: string; columns: readonly ColumnMetadata[] | readonly string[]; key: readonly string[] },
  overrides: Partial<ChangeSetMetadata> = {},
): ChangeSetMetadata {
  const columns = dataset.columns.map((column) =>
    typeof column === 'string' ? { name: column, type: 'string' as const } : column,
  );
  return {
    changeSetId: '5b0c3a1e-8f0d-4f43-9a55-2d4f1c9e7b10',
    idempotencyKey: 'cs_5b0c3a1e-8f0d-4f43-9a55-2d4f1c9e7b10',
    runId: '0d9f6a52-1c3e-4b7a-8e21-6f4b2a9c3d01',
    partnerId: '7e3b1f40-2a6c-4d8e-9b15-3c7a0e5f2d19',
    school: { urn: '100000', name: 'Example Academy' },
    extract: { name: 'parent-messaging', version: 3 },
    dataset: { name: dataset.name, columns, key: dataset.key },
    fullLoad: false,
    counts: { inserts: 0, updates: 0, deletes: 0 },
    createdAt: '2025-03-01T05:00:00.000Z',
    ...overrides,
  };
}

/** The counts of `changes`, for metadata that matches them. */
export function countsOf(changes: readonly Change[]): ChangeSetMetadata['counts'] {
  return {
    inserts: changes.filter((change) => change.op === 'insert').length,
    updates: changes.filter((change) => change.op === 'update').length,
    deletes: changes.filter((change) => change.op === 'delete').length,
  };
}

/** Reads a byte stream to the end as UTF-8. */
export async function readAll(content: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of content) {
    if (!Buffer.isBuffer(chunk)) throw new Error('an encoder yielded something other than a Buffer');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The changes as an async generator, as a database cursor would give them. */
export async function* streamOf(changes: readonly Change[]): AsyncGenerator<Change> {
  for (const change of changes) yield change;
}
