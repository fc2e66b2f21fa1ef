import { stringify } from 'csv-stringify/sync';
import {
  ChangeChecker,
  type ChangeSet,
  ChunkBuffer,
  type NormalizedMetadata,
  normalizeMetadata,
  type Value,
} from './change-set.js';
import { FormatError, FormatErrorCode } from './errors.js';

export interface CsvOptions {
  /**
   * Spreadsheet formula-injection guard, on unless `false`. A text cell whose first character is
   * `=`, `+`, `-`, `@`, a tab or a carriage return (or the full-width `＝ ＋ － ＠`) gets a `'`
   * prepended, so Excel, LibreOffice and Google Sheets show it as text instead of running it
   * (OWASP "CSV injection"). Numbers are never changed (`-5` stays `-5`); the text `-5` becomes `'-5`.
   * Turn it off only for a consumer that is a program, never a person with a spreadsheet.
   */
  formulaGuard?: boolean;
}

/** The leading column of a Keystage CSV: insert, update or delete. */
export const CSV_OP_COLUMN = '_op';

/** Records stringified at a time: enough to amortise csv-stringify's set-up, small enough to stream. */
const CSV_BATCH_RECORDS = 256;

interface CsvWriteOptions {
  formulaGuard: boolean;
  /** OneRoster forbids carriage returns inside a field: CRLF and CR become LF. */
  noCarriageReturns?: boolean;
}

/**
 * RFC 4180 through csv-stringify: CRLF after every record (the last too), fields quoted only when
 * they hold a comma, a double quote, CR or LF (quotes doubled), no BOM. `null` is an empty field, an
 * empty string is `""`, booleans are `true`/`false`, numbers as JavaScript writes them.
 */
function stringifyOptions({ formulaGuard, noCarriageReturns }: CsvWriteOptions) {
  return {
    record_delimiter: 'windows' as const,
    // Without this csv-stringify quotes only fields holding the record delimiter (CRLF), not a lone LF.
    quote_record_delimiter: true,
    // Quotes exactly the empty string, so it differs from null (csv-stringify leaves null unquoted).
    quoted_match: /^$/,
    escape_formulas: formulaGuard,
    cast: {
      boolean: (value: boolean) => (value ? 'true' : 'false'),
      ...(noCarriageReturns ? { string: (value: string) => value.replace(/\r\n?/g, '\n') } : {}),
    },
  };
}

/** Streams `header` then `records` as CSV, in chunks of about 64 KiB. */
export async function* writeCsv(
  header: readonly string[],
  records: AsyncIterable<readonly Value[]>,
  options: CsvWriteOptions,
): AsyncGenerator<Buffer> {
  const csvOptions = stringifyOptions(options);
  const buffer = new ChunkBuffer();
  let batch: (readonly Value[])[] = [header];
  for await (const record of records) {
    batch.push(record);
    if (batch.length >= CSV_BATCH_RECORDS) {
      const chunk = buffer.push(stringify(batch, csvOptions));
      batch = [];
      if (chunk) yield chunk;
    }
  }
  // The last batch may fill a chunk too: it is handed out, not dropped.
  if (batch.length > 0) {
    const chunk = buffer.push(stringify(batch, csvOptions));
    if (chunk) yield chunk;
  }
  const rest = buffer.take();
  if (rest) yield rest;
}

function checkCsvColumns(metadata: NormalizedMetadata): string[] {
  const columns = metadata.dataset.columns.map((column) => column.name);
  if (columns.includes(CSV_OP_COLUMN)) {
    throw new FormatError(
      FormatErrorCode.InvalidChangeSet,
      `dataset ${metadata.dataset.name} has a column named ${CSV_OP_COLUMN}, which CSV uses for the operation`,
    );
  }
  return columns;
}

/**
 * CSV (`text/csv`, RFC 4180, UTF-8 without BOM, CRLF) with a header row: `_op` (insert, update or
 * delete), then the dataset's columns in order. An insert or update carries the whole row; a delete
 * only its key columns, the others empty. CSV carries neither the metadata (the delivery headers and
 * the file name do) nor an update's `changed` list. Quoting and cells as {@link writeCsv}; the
 * formula guard as {@link CsvOptions.formulaGuard}, on by default. Checks as in `encodeNdjson`.
 */
export function encodeCsv(changeSet: ChangeSet, options: CsvOptions = {}): AsyncIterable<Buffer> {
  const metadata = normalizeMetadata(changeSet.metadata);
  const columns = checkCsvColumns(metadata);
  const { changes } = changeSet;
  const records = (async function* () {
    const checker = new ChangeChecker(metadata);
    for await (const raw of changes) {
      const change = checker.check(raw);
      if (change.op === 'delete') {
        const { key } = change;
        yield [change.op, ...columns.map((name) => (Object.hasOwn(key, name) ? (key[name] as Value) : null))];
      } else {
        const row = change.row!;
        yield [change.op, ...columns.map((name) => row[name] as Value)];
      }
    }
    checker.finish();
  })();
  return writeCsv([CSV_OP_COLUMN, ...columns], records, { formulaGuard: options.formulaGuard !== false });
}
