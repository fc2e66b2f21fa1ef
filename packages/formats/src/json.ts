import {
  ChangeChecker,
  type ChangeSet,
  type CheckedChange,
  ChunkBuffer,
  type InsertRows,
  isInsertRows,
  type NormalizedMetadata,
  normalizeMetadata,
  type RowTemplate,
} from './change-set.js';

/** One change as NDJSON and JSON write it: `op`, `key`, then `row` and `changed` where they apply. */
function changeJson(change: CheckedChange): string {
  // Built field by field so the order is fixed whatever order the caller's object had.
  if (change.op === 'delete') return JSON.stringify({ op: change.op, key: change.key });
  if (change.op === 'insert') return JSON.stringify({ op: change.op, key: change.key, row: change.row });
  return JSON.stringify({ op: change.op, key: change.key, row: change.row, changed: change.changed });
}

/**
 * An insert as {@link changeJson} writes it, as a template (`suffix` after each insert, `separator`
 * between two). Its fields come in the order JSON.stringify gives the key and row objects that
 * {@link ChangeChecker.check} builds: integer-like names first, then as the checker assigned them.
 */
function insertTemplate(metadata: NormalizedMetadata, suffix: string, separator: string): RowTemplate {
  const names = metadata.dataset.columns.map((column) => column.name);
  const parts: string[] = [];
  const columns: number[] = [];
  let text = '{"op":"insert","key":{';
  const object = (fields: readonly string[]) => {
    const shaped: Record<string, null> = Object.create(null);
    for (const name of fields) shaped[name] = null;
    Object.keys(shaped).forEach((name, i) => {
      parts.push(`${text}${i > 0 ? ',' : ''}${JSON.stringify(name)}:`);
      columns.push(names.indexOf(name));
      text = '';
    });
  };
  object(metadata.dataset.key);
  text += '},"row":{';
  object(names);
  parts.push(`${text}}}${suffix}`);
  return { parts, columns, separator };
}

/** A full load's inserts through `template`; counted into `checker`. */
async function* insertRows(
  rows: InsertRows,
  template: RowTemplate,
  checker: ChangeChecker,
): AsyncGenerator<Buffer> {
  const text = rows.jsonRows(template);
  yield* text;
  checker.addCheckedInserts(text.rowCount);
}

/**
 * Newline-delimited JSON (`application/x-ndjson`), UTF-8, one JSON object per `\n`-terminated line:
 *
 *     {"changeSet":{"changeSetId":"…","idempotencyKey":"…",…,"counts":{…},"createdAt":"…"}}
 *     {"op":"insert","key":{"id":"1"},"row":{"id":"1","name":"Ada"}}
 *     {"op":"update","key":{"id":"2"},"row":{"id":"2","name":"Bo"},"changed":["name"]}
 *     {"op":"delete","key":{"id":"3"}}
 *
 * The first line is the header: the change-set metadata under `changeSet`. Rows carry exactly the
 * dataset's columns in its order; `changed` only on updates, `row` not on deletes. The metadata is
 * checked before this returns (`formats.invalid_change_set`); each change as it is read
 * (`formats.invalid_change`), and the counts once the changes end (`formats.count_mismatch`), so a
 * bad stream fails instead of ending normally. Chunks are about 64 KiB; nothing else is held.
 * `Readable.from(encodeNdjson(…))` gives a Node stream. {@link InsertRows} are written through a
 * template, in the chunks their source writes (the same bytes; their rows are not checked again).
 */
export function encodeNdjson(changeSet: ChangeSet): AsyncIterable<Buffer> {
  const metadata = normalizeMetadata(changeSet.metadata);
  const { changes } = changeSet;
  return (async function* () {
    const checker = new ChangeChecker(metadata);
    const header = `${JSON.stringify({ changeSet: metadata })}\n`;
    if (isInsertRows(changes)) {
      yield Buffer.from(header, 'utf8');
      yield* insertRows(changes, insertTemplate(metadata, '\n', ''), checker);
      checker.finish();
      return;
    }
    const buffer = new ChunkBuffer();
    // Every push may complete a chunk, the header's and the last one's too: none is dropped.
    const first = buffer.push(header);
    if (first) yield first;
    for await (const change of changes) {
      const chunk = buffer.push(`${changeJson(checker.check(change))}\n`);
      if (chunk) yield chunk;
    }
    checker.finish();
    const rest = buffer.take();
    if (rest) yield rest;
  })();
}

/**
 * One JSON document (`application/json`), UTF-8, written as it streams:
 *
 *     {"changeSet":{…metadata…},"changes":[
 *     {"op":"insert","key":{…},"row":{…}},
 *     {"op":"delete","key":{…}}
 *     ]}
 *
 * `changeSet` and each change are exactly as in {@link encodeNdjson}; one change per line so a
 * human can read it, but any JSON parser takes the whole. Checks, chunking and {@link InsertRows} as
 * there: a stream that fails leaves the document unterminated rather than looking complete.
 */
export function encodeJson(changeSet: ChangeSet): AsyncIterable<Buffer> {
  const metadata = normalizeMetadata(changeSet.metadata);
  const { changes } = changeSet;
  return (async function* () {
    const checker = new ChangeChecker(metadata);
    const header = `{"changeSet":${JSON.stringify(metadata)},"changes":[`;
    if (isInsertRows(changes)) {
      yield Buffer.from(header, 'utf8');
      let empty = true;
      for await (const chunk of insertRows(changes, insertTemplate(metadata, '', ',\n'), checker)) {
        if (chunk.length === 0) continue;
        // The first insert starts on a line of its own.
        if (empty) yield Buffer.from('\n');
        empty = false;
        yield chunk;
      }
      checker.finish();
      yield Buffer.from(empty ? ']}\n' : '\n]}\n');
      return;
    }
    const buffer = new ChunkBuffer();
    const first = buffer.push(header);
    if (first) yield first;
    let separator = '\n';
    for await (const change of changes) {
      const chunk = buffer.push(`${separator}${changeJson(checker.check(change))}`);
      separator = ',\n';
      if (chunk) yield chunk;
    }
    checker.finish();
    const last = buffer.push(separator === '\n' ? ']}\n' : '\n]}\n');
    if (last) yield last;
    const rest = buffer.take();
    if (rest) yield rest;
  })();
}
