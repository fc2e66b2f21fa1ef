import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Change, ChangeSetMetadata } from './change-set.js';
import { encodeCsv } from './csv.js';
import { encodeJson, encodeNdjson } from './json.js';
import { encodeOneRosterCsv } from './oneroster.js';
import { metadataFor } from './test-support/fixtures.js';

const TOTAL = 200_000;
/** Changes the encoder may have read but not yet written: a few batches, nowhere near the total. */
const MAX_AHEAD = 5_000;
const MAX_CHUNK_BYTES = 256 * 1024;

/** 200k inserts, updates and deletes from a generator that counts how many were taken. */
function source(): { changes: AsyncGenerator<Change>; pulled: () => number; metadata: ChangeSetMetadata } {
  let pulled = 0;
  async function* changes(): AsyncGenerator<Change> {
    for (let i = 0; i < TOTAL; i++) {
      pulled++;
      const sourcedId = `u${i}`;
      const row = {
        sourcedId,
        givenName: `Given ${i}`,
        familyName: 'Family',
        username: `user${i}`,
        enabledUser: 'true',
      };
      if (i % 10 === 9) yield { op: 'delete', key: { sourcedId } };
      else if (i % 10 === 8) yield { op: 'update', key: { sourcedId }, row, changed: ['givenName'] };
      else yield { op: 'insert', key: { sourcedId }, row };
    }
  }
  const metadata = metadataFor(
    {
      name: 'users',
      columns: ['sourcedId', 'givenName', 'familyName', 'username', 'enabledUser'],
      key: ['sourcedId'],
    },
    { counts: { inserts: TOTAL * 0.8, updates: TOTAL * 0.1, deletes: TOTAL * 0.1 } },
  );
  return { changes: changes(), pulled: () => pulled, metadata };
}

/**
 * Reads `content` chunk by chunk, counting the records in it by their line ends, and checks at every
 * chunk that the encoder has not read far ahead of what it has written, i.e. holds only a little.
 */
async function consume(content: AsyncIterable<Buffer>, pulled: () => number, lineEnd: string) {
  let records = 0;
  let chunks = 0;
  let pulledAtFirstChunk = -1;
  for await (const chunk of content) {
    expect(Buffer.isBuffer(chunk)).toBe(true);
    expect(chunk.length).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    if (chunks === 0) pulledAtFirstChunk = pulled();
    chunks++;
    const text = chunk.toString('latin1');
    for (let at = text.indexOf(lineEnd); at !== -1; at = text.indexOf(lineEnd, at + lineEnd.length))
      records++;
    expect(pulled() - records).toBeLessThanOrEqual(MAX_AHEAD);
  }
  return { records, chunks, pulledAtFirstChunk };
}

describe.each([
  ['ndjson', encodeNdjson, '\n', 1],
  ['json', encodeJson, '\n', 2],
  ['csv', encodeCsv, '\r\n', 1],
])('%s streams 200k changes', (_name, encode, lineEnd, extraLines) => {
  it('in many bounded chunks, reading only a little ahead of what it writes', async () => {
    const { changes, pulled, metadata } = source();
    const { records, chunks, pulledAtFirstChunk } = await consume(
      encode({ metadata, changes }),
      pulled,
      lineEnd,
    );
    expect(pulled()).toBe(TOTAL);
    expect(records).toBe(TOTAL + extraLines); // the header line (and for JSON its closing line)
    expect(chunks).toBeGreaterThan(50);
    expect(pulledAtFirstChunk).toBeLessThan(MAX_AHEAD);
  });
});

describe('oneroster-csv streams 200k changes', () => {
  it('in many bounded chunks, and through a Node Readable', async () => {
    const { changes, pulled, metadata } = source();
    const [, users] = encodeOneRosterCsv([{ metadata, changes }]);
    expect(users!.name).toBe('users.csv');
    const { records, chunks } = await consume(Readable.from(users!.content), pulled, '\r\n');
    expect(records).toBe(TOTAL + 1);
    expect(chunks).toBeGreaterThan(50);
  });
});
