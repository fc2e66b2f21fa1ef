import { describe, expect, it } from 'vitest';
import type { Change, InsertRows, Value } from './change-set.js';
import { encodeCsv } from './csv.js';
import { encodeJson, encodeNdjson } from './json.js';
import { countsOf, metadataFor, readAll, streamOf } from './test-support/fixtures.js';

const pupils = {
  name: 'pupils',
  columns: [
    { name: 'upn', type: 'string' as const },
    { name: 'forename', type: 'string' as const },
    { name: 'year', type: 'integer' as const },
    { name: 'fsm', type: 'boolean' as const, nullable: true },
  ],
  key: ['upn'],
};

const changes: Change[] = [
  {
    op: 'insert',
    key: { upn: 'A1' },
    row: { fsm: null, year: 7, forename: 'Zoë 😀 "quoted", comma\nline', upn: 'A1' },
  },
  {
    op: 'update',
    key: { upn: 'B2' },
    row: { upn: 'B2', forename: "O'Brien", year: 8, fsm: true },
    changed: ['fsm'],
  },
  { op: 'delete', key: { upn: 'C3' } },
];
const metadata = metadataFor(pupils, { counts: countsOf(changes) });

const expectedHeader = {
  changeSetId: metadata.changeSetId,
  idempotencyKey: metadata.idempotencyKey,
  runId: metadata.runId,
  partnerId: metadata.partnerId,
  school: { urn: '100000', name: 'Example Academy' },
  extract: { name: 'parent-messaging', version: 3 },
  dataset: {
    name: 'pupils',
    columns: [
      { name: 'upn', type: 'string', nullable: false },
      { name: 'forename', type: 'string', nullable: false },
      { name: 'year', type: 'integer', nullable: false },
      { name: 'fsm', type: 'boolean', nullable: true },
    ],
    key: ['upn'],
  },
  fullLoad: false,
  counts: { inserts: 1, updates: 1, deletes: 1 },
  createdAt: '2025-03-01T05:00:00.000Z',
};
const expectedChanges = [
  {
    op: 'insert',
    key: { upn: 'A1' },
    row: { upn: 'A1', forename: 'Zoë 😀 "quoted", comma\nline', year: 7, fsm: null },
  },
  {
    op: 'update',
    key: { upn: 'B2' },
    row: { upn: 'B2', forename: "O'Brien", year: 8, fsm: true },
    changed: ['fsm'],
  },
  { op: 'delete', key: { upn: 'C3' } },
];

describe('encodeNdjson', () => {
  it('writes a metadata header line, then one line per change, and parses back', async () => {
    const text = await readAll(encodeNdjson({ metadata, changes: streamOf(changes) }));
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(4);
    const parsed = lines.map((line) => JSON.parse(line));
    expect(parsed[0]).toEqual({ changeSet: expectedHeader });
    expect(parsed.slice(1)).toEqual(expectedChanges);
  });

  it('writes fields in a fixed order: op, key, row, changed; rows in column order', async () => {
    const lines = (await readAll(encodeNdjson({ metadata, changes }))).trim().split('\n');
    expect(Object.keys(JSON.parse(lines[0]!).changeSet)).toEqual(Object.keys(expectedHeader));
    expect(lines[1]).toBe(
      '{"op":"insert","key":{"upn":"A1"},"row":{"upn":"A1","forename":"Zoë 😀 \\"quoted\\", comma\\nline","year":7,"fsm":null}}',
    );
    expect(lines[2]).toBe(
      '{"op":"update","key":{"upn":"B2"},"row":{"upn":"B2","forename":"O\'Brien","year":8,"fsm":true},"changed":["fsm"]}',
    );
    expect(lines[3]).toBe('{"op":"delete","key":{"upn":"C3"}}');
  });

  it('writes a Date createdAt as ISO 8601 UTC and an empty change set as the header alone', async () => {
    const empty = metadataFor(pupils, { createdAt: new Date(Date.UTC(2025, 2, 1, 5)) });
    const text = await readAll(encodeNdjson({ metadata: empty, changes: [] }));
    expect(text.split('\n')).toHaveLength(2);
    expect(JSON.parse(text).changeSet.createdAt).toBe('2025-03-01T05:00:00.000Z');
  });
});

describe('column names that are also Object.prototype names', () => {
  it('are written like any other', async () => {
    const odd = { name: 'odd', columns: ['__proto__', 'constructor'], key: ['__proto__'] };
    const row = JSON.parse('{"__proto__":"p","constructor":"c"}') as Record<string, string>;
    const key = JSON.parse('{"__proto__":"p"}') as Record<string, string>;
    const changes: Change[] = [{ op: 'insert', key, row }];
    const text = await readAll(
      encodeNdjson({ metadata: metadataFor(odd, { counts: countsOf(changes) }), changes }),
    );
    expect(text.trim().split('\n')[1]).toBe(
      '{"op":"insert","key":{"__proto__":"p"},"row":{"__proto__":"p","constructor":"c"}}',
    );
  });
});

describe('encodeJson', () => {
  it('writes one document { changeSet, changes } that JSON.parse reads back', async () => {
    const text = await readAll(encodeJson({ metadata, changes: streamOf(changes) }));
    expect(JSON.parse(text)).toEqual({ changeSet: expectedHeader, changes: expectedChanges });
    expect(text.split('\n')).toHaveLength(6); // the opening, three changes, the close, the final newline
  });

  it('writes a valid document for an empty change set', async () => {
    const text = await readAll(encodeJson({ metadata: metadataFor(pupils), changes: [] }));
    expect(JSON.parse(text)).toEqual({
      changeSet: { ...expectedHeader, counts: { inserts: 0, updates: 0, deletes: 0 } },
      changes: [],
    });
  });
});

describe.each([
  ['ndjson', encodeNdjson],
  ['json', encodeJson],
])('%s checks', (_name, encode) => {
  it('refuses bad metadata before anything is read', () => {
    const noKey = { ...pupils, key: ['missing'] };
    expect(() => encode({ metadata: metadataFor(noKey), changes: [] })).toThrowError(
      expect.objectContaining({
        code: 'formats.invalid_change_set',
        message: expect.stringMatching(/key column missing/),
      }),
    );
    expect(() =>
      encode({
        metadata: metadataFor(pupils, { counts: { inserts: -1, updates: 0, deletes: 0 } }),
        changes: [],
      }),
    ).toThrowError(expect.objectContaining({ code: 'formats.invalid_change_set' }));
    expect(() =>
      encode({ metadata: metadataFor(pupils, { createdAt: 'yesterday' }), changes: [] }),
    ).toThrowError(expect.objectContaining({ code: 'formats.invalid_change_set' }));
  });

  it.each([
    ['an unknown op', { op: 'upsert', key: { upn: 'A1' }, row: {} }, /op must be/],
    ['a key without the key column', { op: 'delete', key: { id: 'A1' } }, /key lacks column upn/],
    [
      'a row missing a column',
      { op: 'insert', key: { upn: 'A1' }, row: { upn: 'A1', forename: 'X', year: 7 } },
      /row lacks column fsm/,
    ],
    [
      'a row with an extra column',
      {
        op: 'insert',
        key: { upn: 'A1' },
        row: { upn: 'A1', forename: 'X', year: 7, fsm: null, ethnicity: 'secret' },
      },
      /does not list \(ethnicity\)/,
    ],
    [
      'a non-scalar value',
      { op: 'insert', key: { upn: 'A1' }, row: { upn: 'A1', forename: { a: 1 }, year: 7, fsm: null } },
      /column forename/,
    ],
    [
      'a non-finite number',
      { op: 'insert', key: { upn: 'A1' }, row: { upn: 'A1', forename: 'X', year: Number.NaN, fsm: null } },
      /column year/,
    ],
    [
      'an update without changed',
      { op: 'update', key: { upn: 'A1' }, row: { upn: 'A1', forename: 'X', year: 7, fsm: null } },
      /changed list/,
    ],
  ])('fails the stream on %s, naming the change but no value', async (_label, bad, message) => {
    const stream = encode({
      metadata: metadataFor(pupils, { counts: { inserts: 5, updates: 5, deletes: 5 } }),
      changes: [changes[0]!, bad as Change],
    });
    const error = await readAll(stream).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'formats.invalid_change', message: expect.stringMatching(message) });
    expect((error as Error).message).toMatch(/^change 2 of dataset pupils/);
    expect((error as Error).message).not.toMatch(/secret|Zoë/);
  });

  it('fails the stream when the changes do not add up to the counts', async () => {
    const wrong = metadataFor(pupils, { counts: { inserts: 1, updates: 1, deletes: 2 } });
    await expect(readAll(encode({ metadata: wrong, changes }))).rejects.toMatchObject({
      code: 'formats.count_mismatch',
    });
  });

  it('passes on an error from the change source', async () => {
    async function* failing(): AsyncGenerator<Change> {
      yield changes[0]!;
      throw new Error('cursor lost');
    }
    await expect(readAll(encode({ metadata, changes: failing() }))).rejects.toThrow('cursor lost');
  });
});

describe('a full load from InsertRows', () => {
  /** A source of checked rows (as a delta snapshot is): changes when iterated, or text by template. */
  function insertRows(
    dataset: { columns: readonly string[]; key: readonly string[] },
    rows: readonly Value[][],
  ): InsertRows {
    async function* changes(): AsyncGenerator<Change> {
      for (const row of rows) {
        yield {
          op: 'insert',
          key: Object.fromEntries(dataset.key.map((k) => [k, row[dataset.columns.indexOf(k)]])),
          row: Object.fromEntries(dataset.columns.map((c, i) => [c, row[i]!])),
        };
      }
    }
    return {
      [Symbol.asyncIterator]: changes,
      jsonRows(template) {
        const out = {
          rowCount: 0,
          async *[Symbol.asyncIterator]() {
            // Small uneven chunks, cut anywhere.
            const text = rows
              .map((row) => {
                out.rowCount++;
                const values = template.columns.map((c) => JSON.stringify(row[c]));
                return template.parts.map((part, i) => part + (values[i] ?? '')).join('');
              })
              .join(template.separator);
            const bytes = Buffer.from(text, 'utf8');
            for (let at = 0; at < bytes.length; at += 7) yield bytes.subarray(at, at + 7);
          },
        };
        return out;
      },
    };
  }

  const awkward = {
    name: 'awkward',
    // Integer-like names come first in a JS object, whatever the column order.
    columns: ['b', '2', '__proto__', 'a é', '10'],
    key: ['a é', '2'],
  };
  const rows: Value[][] = [
    ['x', 1, null, 'k "1"', true],
    ['y\n', -2.5, 'p', 'k😀', false],
    ['', 1e21, 'q', 'k\u0000', null],
  ];

  it.each([
    ['ndjson', encodeNdjson],
    ['json', encodeJson],
  ])('%s writes the bytes the changes would give, without checking them again', async (_name, encode) => {
    for (const [dataset, data] of [
      [awkward, rows],
      [pupils, [['A1', 'Zoë', 7, null]]],
      [awkward, []],
    ] as const) {
      const meta = metadataFor(dataset, {
        fullLoad: true,
        counts: { inserts: data.length, updates: 0, deletes: 0 },
      });
      const columns = dataset.columns.map((c) => (typeof c === 'string' ? c : c.name));
      const source = insertRows({ columns, key: dataset.key }, data as Value[][]);
      // The same changes from a plain source.
      const plain = { [Symbol.asyncIterator]: () => source[Symbol.asyncIterator]() };
      const expected = await readAll(encode({ metadata: meta, changes: plain }));
      expect(await readAll(encode({ metadata: meta, changes: source }))).toBe(expected);
    }
  });

  it('fails the stream when the rows do not add up to the counts', async () => {
    const meta = metadataFor(awkward, { fullLoad: true, counts: { inserts: 2, updates: 0, deletes: 0 } });
    await expect(
      readAll(encodeNdjson({ metadata: meta, changes: insertRows(awkward, rows) })),
    ).rejects.toMatchObject({ code: 'formats.count_mismatch' });
  });

  it('is iterated as changes by the other formats', async () => {
    const meta = metadataFor(awkward, { fullLoad: true, counts: { inserts: 3, updates: 0, deletes: 0 } });
    const csv = await readAll(encodeCsv({ metadata: meta, changes: insertRows(awkward, rows) }));
    expect(csv.split('\r\n')).toHaveLength(5); // header, three rows, the final line end
  });
});

describe('no chunk is dropped at the end of a stream', () => {
  const people = {
    name: 'people',
    columns: [
      { name: 'id', type: 'integer' as const },
      { name: 'name', type: 'string' as const },
    ],
    key: ['id'],
  };
  const inserts = (n: number, pad = 0): Change[] =>
    Array.from({ length: n }, (_, i) => ({
      op: 'insert' as const,
      key: { id: i },
      row: { id: i, name: `Person ${i} ${'x'.repeat(i === 0 ? pad : 20)}` },
    }));

  it('CSV keeps every row when the last batch fills a chunk (a 3,000-row change set came out with 1,535)', async () => {
    for (const n of [255, 256, 257, 2_000, 3_000, 3_001]) {
      const data = inserts(n);
      const csv = await readAll(
        encodeCsv({ metadata: metadataFor(people, { counts: countsOf(data) }), changes: streamOf(data) }),
      );
      const lines = csv.split('\r\n');
      expect(lines, `${n} rows`).toHaveLength(n + 2);
      expect(lines[n]).toMatch(new RegExp(`^insert,${n - 1},`));
    }
  });

  it('JSON and NDJSON keep their last bytes when the closing text completes a chunk', async () => {
    for (const encode of [encodeJson, encodeNdjson]) {
      const data = inserts(300);
      const meta = metadataFor(people, { counts: countsOf(data) });
      const whole = (await readAll(encode({ metadata: meta, changes: streamOf(data) }))).length;
      // Pad the first row so that the text before the closing `\n]}\n` (JSON) or the last line
      // (NDJSON) ends just short of a chunk (64 Ki characters).
      for (const short of [1, 2, 3]) {
        const tail = encode === encodeJson ? 4 : 1;
        const padded = inserts(300, 65_536 - short - (whole - tail));
        const text = await readAll(encode({ metadata: meta, changes: streamOf(padded) }));
        expect(text.length, `${encode.name} ${short}`).toBe(65_536 - short + tail);
        if (encode === encodeJson) expect(JSON.parse(text).changes).toHaveLength(300);
        else expect(text.trim().split('\n')).toHaveLength(301);
      }
    }
  });
});
