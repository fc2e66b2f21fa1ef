import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Change } from './change-set.js';
import { encodeCsv } from './csv.js';
import { encodeJson, encodeNdjson } from './json.js';
import { encodeOneRosterCsv } from './oneroster.js';
import { encodeFiles, encoderFor, FORMATS, isDeliveryFormat } from './registry.js';
import { countsOf, metadataFor, readAll } from './test-support/fixtures.js';

/** `DELIVERY_FORMATS` as extract documents accept them, read from the extract-spec source. */
function extractSpecDeliveryFormats(): string[] {
  const source = readFileSync(
    new URL('../../extract-spec/src/document/extract-document.schema.ts', import.meta.url),
    'utf8',
  );
  const list = /export const DELIVERY_FORMATS = \[([^\]]*)\] as const/.exec(source);
  if (!list) throw new Error('DELIVERY_FORMATS not found in extract-spec');
  return [...list[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
}

describe('FORMATS', () => {
  it('has an encoder for exactly the delivery formats extract documents accept', () => {
    expect(Object.keys(FORMATS).sort()).toEqual(extractSpecDeliveryFormats().sort());
  });

  it('names each format, its content type, extension and encoder', () => {
    expect(FORMATS.ndjson).toMatchObject({
      name: 'ndjson',
      kind: 'stream',
      contentType: 'application/x-ndjson',
      fileExtension: 'ndjson',
      encode: encodeNdjson,
    });
    expect(FORMATS.json).toMatchObject({
      name: 'json',
      kind: 'stream',
      contentType: 'application/json',
      fileExtension: 'json',
      encode: encodeJson,
    });
    expect(FORMATS.csv).toMatchObject({
      name: 'csv',
      kind: 'stream',
      contentType: 'text/csv; charset=utf-8',
      fileExtension: 'csv',
      encode: encodeCsv,
    });
    expect(FORMATS['oneroster-csv']).toMatchObject({
      kind: 'files',
      fileExtension: 'csv',
      encode: encodeOneRosterCsv,
    });
    for (const [name, definition] of Object.entries(FORMATS)) expect(definition.name).toBe(name);
  });
});

describe('encoderFor', () => {
  it('returns the registry entry', () => {
    expect(encoderFor('csv')).toBe(FORMATS.csv);
    expect(encoderFor('oneroster-csv')).toBe(FORMATS['oneroster-csv']);
  });

  it.each(['xml', 'CSV', '', 'toString', '__proto__'])(
    'refuses the unknown format %j, listing the known ones',
    (name) => {
      expect(isDeliveryFormat(name)).toBe(false);
      expect(() => encoderFor(name)).toThrowError(
        expect.objectContaining({
          name: 'FormatError',
          code: 'formats.unknown_format',
          message: `unknown delivery format ${JSON.stringify(name)}: expected one of ndjson, json, csv, oneroster-csv`,
        }),
      );
    },
  );
});

describe('encodeFiles', () => {
  const changes: Change[] = [
    { op: 'insert', key: { sourcedId: 'o1' }, row: { sourcedId: 'o1', name: 'Example', type: 'school' } },
  ];
  const orgs = () => ({
    metadata: metadataFor(
      { name: 'orgs', columns: ['sourcedId', 'name', 'type'], key: ['sourcedId'] },
      { counts: countsOf(changes) },
    ),
    changes,
  });

  it('names a stream format file after its dataset', async () => {
    const files = encodeFiles('ndjson', [orgs()]);
    expect(files.map((f) => [f.name, f.contentType])).toEqual([['orgs.ndjson', 'application/x-ndjson']]);
    const lines = (await readAll(files[0]!.content)).trim().split('\n');
    expect(JSON.parse(lines[1]!)).toEqual(changes[0]);
  });

  it('gives the OneRoster file set for oneroster-csv', () => {
    expect(encodeFiles('oneroster-csv', [orgs()]).map((f) => f.name)).toEqual(['manifest.csv', 'orgs.csv']);
  });

  it('refuses an unknown format and two change sets for one file', () => {
    expect(() => encodeFiles('xml', [orgs()])).toThrowError(
      expect.objectContaining({ code: 'formats.unknown_format' }),
    );
    expect(() => encodeFiles('csv', [orgs(), orgs()])).toThrowError(
      expect.objectContaining({ code: 'formats.invalid_input' }),
    );
  });
});
