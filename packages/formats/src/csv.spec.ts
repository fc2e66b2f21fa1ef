import { describe, expect, it } from 'vitest';
import type { Change, Value } from './change-set.js';
import { encodeCsv } from './csv.js';
import { readCsv, readCsvObjects } from './test-support/csv-reader.js';
import { countsOf, metadataFor, readAll, streamOf } from './test-support/fixtures.js';

const contacts = {
  name: 'contacts',
  columns: [
    { name: 'id', type: 'integer' as const },
    { name: 'name', type: 'string' as const },
    { name: 'note', type: 'string' as const, nullable: true },
    { name: 'balance', type: 'decimal' as const },
    { name: 'consent', type: 'boolean' as const, nullable: true },
  ],
  key: ['id'],
};

function row(id: number, name: string, note: Value, balance: number, consent: boolean | null) {
  return { id, name, note, balance, consent };
}

async function csvOf(changes: Change[], formulaGuard?: boolean): Promise<string> {
  const metadata = metadataFor(contacts, { counts: countsOf(changes) });
  return readAll(
    encodeCsv({ metadata, changes: streamOf(changes) }, formulaGuard === undefined ? {} : { formulaGuard }),
  );
}

describe('encodeCsv', () => {
  it('writes _op, then the columns in order; a delete carries only its key', async () => {
    const text = await csvOf([
      { op: 'insert', key: { id: 1 }, row: row(1, 'Ada', 'first', 12.5, true) },
      { op: 'update', key: { id: 2 }, row: row(2, 'Bo', null, -3, false), changed: ['balance'] },
      { op: 'delete', key: { id: 3 } },
    ]);
    expect(text).toBe(
      '_op,id,name,note,balance,consent\r\n' +
        'insert,1,Ada,first,12.5,true\r\n' +
        'update,2,Bo,,-3,false\r\n' +
        'delete,3,,,,\r\n',
    );
  });

  it('quotes commas, quotes, newlines and carriage returns, keeps unicode, and round-trips', async () => {
    const awkward = [
      'comma, inside',
      'say "hello"',
      'two\nlines',
      'windows\r\nline',
      'lone\rreturn',
      'Zoë Ó Dálaigh — 日本語 😀',
      '"',
      ' leading and trailing spaces ',
      '',
    ];
    const changes: Change[] = awkward.map((name, i) => ({
      op: 'insert',
      key: { id: i },
      row: row(i, name, null, i / 4, null),
    }));
    const text = await csvOf(changes);
    expect(text).toContain('"comma, inside"');
    expect(text).toContain('"say ""hello"""');
    expect(text).toContain('"two\nlines"');
    expect(text).toContain('"lone\rreturn"');
    const { header, rows } = readCsvObjects(text);
    expect(header).toEqual(['_op', 'id', 'name', 'note', 'balance', 'consent']);
    expect(rows.map((r) => r.name)).toEqual(awkward);
    expect(rows.map((r) => r.balance)).toEqual(awkward.map((_, i) => String(i / 4)));
    // null is an empty field, the empty string a quoted empty one (a reader sees "" for both).
    expect(text).toContain('insert,8,"",,2,\r\n');
  });

  it('writes a header alone for an empty change set', async () => {
    expect(await csvOf([])).toBe('_op,id,name,note,balance,consent\r\n');
  });

  it('guards against formula injection by default, text cells only', async () => {
    const dangerous = ['=1+2', '+44 20 7946 0000', '-2+3', '@SUM(A1)', '\tTAB', '\rCR', '＝HYPERLINK()'];
    const changes: Change[] = dangerous.map((note, i) => ({
      op: 'insert',
      key: { id: i },
      row: row(i, 'safe name', note, -5, null),
    }));
    const { rows } = readCsvObjects(await csvOf(changes));
    expect(rows.map((r) => r.note)).toEqual(dangerous.map((note) => `'${note}`));
    // Numbers are never changed, and ordinary text is left alone.
    expect(rows.every((r) => r.balance === '-5' && r.name === 'safe name')).toBe(true);
  });

  it('leaves cells untouched with formulaGuard: false', async () => {
    const changes: Change[] = [{ op: 'insert', key: { id: 1 }, row: row(1, '=cmd|calc', '@x', 1, null) }];
    const { rows } = readCsvObjects(await csvOf(changes, false));
    expect(rows[0]).toMatchObject({ name: '=cmd|calc', note: '@x' });
  });

  it('refuses a dataset with a column named _op', () => {
    const clash = { ...contacts, columns: [...contacts.columns, { name: '_op', type: 'string' as const }] };
    expect(() => encodeCsv({ metadata: metadataFor(clash), changes: [] })).toThrowError(
      expect.objectContaining({ code: 'formats.invalid_change_set' }),
    );
  });

  it('checks changes and counts like the other formats', async () => {
    const bad = [{ op: 'insert', key: { id: 1 }, row: { id: 1 } }] as unknown as Change[];
    await expect(csvOf(bad)).rejects.toMatchObject({ code: 'formats.invalid_change' });
    const metadata = metadataFor(contacts, { counts: { inserts: 2, updates: 0, deletes: 0 } });
    const one: Change[] = [{ op: 'insert', key: { id: 1 }, row: row(1, 'a', null, 1, null) }];
    await expect(readAll(encodeCsv({ metadata, changes: one }))).rejects.toMatchObject({
      code: 'formats.count_mismatch',
    });
  });

  it('keeps records whole across batches', async () => {
    const changes: Change[] = Array.from({ length: 1000 }, (_, i) => ({
      op: 'insert',
      key: { id: i },
      row: row(i, `name ${i}, "q"\n`, null, i, i % 2 === 0),
    }));
    const records = readCsv(await csvOf(changes));
    expect(records).toHaveLength(1001);
    expect(records[1000]).toEqual(['insert', '999', 'name 999, "q"\n', '', '999', 'false']);
  });
});
