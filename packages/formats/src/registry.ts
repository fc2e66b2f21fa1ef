import type { ChangeSet, EncodedFile } from './change-set.js';
import { type CsvOptions, encodeCsv } from './csv.js';
import { FormatError, FormatErrorCode } from './errors.js';
import { encodeJson, encodeNdjson } from './json.js';
import { encodeOneRosterCsv, type OneRosterOptions } from './oneroster.js';

/** A format that writes one change set as one stream of bytes. */
export interface StreamFormat {
  name: string;
  kind: 'stream';
  /** For the HTTP `Content-Type` of a webhook or pull response. */
  contentType: string;
  /** Without the dot: a file is `<dataset>.<fileExtension>`. */
  fileExtension: string;
  encode(changeSet: ChangeSet, options?: CsvOptions): AsyncIterable<Buffer>;
}

/** A format that writes the change sets of a run as a set of files (OneRoster CSV). */
export interface FileSetFormat {
  name: string;
  kind: 'files';
  /** Of each file. */
  contentType: string;
  fileExtension: string;
  encode(changeSets: readonly ChangeSet[], options?: OneRosterOptions): EncodedFile[];
}

export type DeliveryFormatDefinition = StreamFormat | FileSetFormat;

/**
 * Every delivery format, by the name extract documents use (`delivery.format`, `DELIVERY_FORMATS` in
 * `@keystage/extract-spec`). NDJSON, JSON and CSV encode one change set into one stream; OneRoster
 * CSV encodes all the datasets of a run into a manifest and one file per OneRoster file.
 */
export const FORMATS = {
  ndjson: {
    name: 'ndjson',
    kind: 'stream',
    contentType: 'application/x-ndjson',
    fileExtension: 'ndjson',
    encode: encodeNdjson,
  },
  json: {
    name: 'json',
    kind: 'stream',
    contentType: 'application/json',
    fileExtension: 'json',
    encode: encodeJson,
  },
  csv: {
    name: 'csv',
    kind: 'stream',
    contentType: 'text/csv; charset=utf-8',
    fileExtension: 'csv',
    encode: encodeCsv,
  },
  'oneroster-csv': {
    name: 'oneroster-csv',
    kind: 'files',
    contentType: 'text/csv; charset=utf-8',
    fileExtension: 'csv',
    encode: encodeOneRosterCsv,
  },
} as const satisfies Record<string, DeliveryFormatDefinition>;

export type DeliveryFormatName = keyof typeof FORMATS;

/** True when `format` names an entry of {@link FORMATS}. */
export function isDeliveryFormat(format: unknown): format is DeliveryFormatName {
  return typeof format === 'string' && Object.hasOwn(FORMATS, format);
}

/**
 * The {@link FORMATS} entry for `format`; throws `formats.unknown_format` naming the formats there
 * are, so a typo in configuration fails loudly rather than delivering nothing.
 */
export function encoderFor<F extends DeliveryFormatName>(format: F): (typeof FORMATS)[F];
export function encoderFor(format: string): DeliveryFormatDefinition;
export function encoderFor(format: string): DeliveryFormatDefinition {
  if (!isDeliveryFormat(format)) {
    throw new FormatError(
      FormatErrorCode.UnknownFormat,
      `unknown delivery format ${JSON.stringify(format)}: expected one of ${Object.keys(FORMATS).join(', ')}`,
    );
  }
  return FORMATS[format];
}

/**
 * The files of a run in any format: for a stream format one file per change set,
 * `<dataset>.<fileExtension>`; for OneRoster CSV its manifest and files. For a delivery to a bucket
 * or a pull endpoint that does not care which kind of format it has.
 */
export function encodeFiles(
  format: string,
  changeSets: readonly ChangeSet[],
  options: CsvOptions & OneRosterOptions = {},
): EncodedFile[] {
  const definition = encoderFor(format);
  if (definition.kind === 'files') return definition.encode(changeSets, options);
  const names = new Set<string>();
  return changeSets.map((changeSet) => {
    const content = definition.encode(changeSet, options);
    const name = `${changeSet.metadata.dataset.name}.${definition.fileExtension}`;
    if (names.has(name))
      throw new FormatError(FormatErrorCode.InvalidInput, `two change sets would both be ${name}`);
    names.add(name);
    return { name, contentType: definition.contentType, content };
  });
}
