/**
 * A small, strict RFC 4180 reader for tests (no CSV parser is installed, and one written here cannot
 * share a bug with csv-stringify). Records end in CRLF; a field is either bare (no comma, quote, CR
 * or LF) or quoted, with `""` for a quote inside. Anything else throws, so sloppy output fails tests.
 */
export function readCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  if (text.length === 0) return records;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        const char = text[i]!;
        if (char === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += char;
        i++;
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`bare quote inside a field at ${i}`);
        field += text[i];
        i++;
      }
    }
    record.push(field);
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text.startsWith('\r\n', i)) {
      records.push(record);
      record = [];
      i += 2;
      if (i === text.length) return records;
      continue;
    }
    throw new Error(`expected a comma or CRLF at ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`);
  }
}

/** The records of a CSV with a header, as objects keyed by the header's names. */
export function readCsvObjects(text: string): { header: string[]; rows: Record<string, string>[] } {
  const [header, ...records] = readCsv(text);
  if (!header) throw new Error('no header');
  for (const record of records) {
    if (record.length !== header.length)
      throw new Error(`a record has ${record.length} fields, not ${header.length}`);
  }
  return {
    header,
    rows: records.map((record) => Object.fromEntries(header.map((name, i) => [name, record[i]!]))),
  };
}
