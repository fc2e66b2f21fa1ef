import {
  ChangeChecker,
  type ChangeSet,
  type CheckedChange,
  ChunkBuffer,
  normalizeMetadata,
} from './change-set.js';

/** One change as NDJSON and JSON write it: `op`, `key`, then `row` and `changed` where they apply. */
function changeJson(change: CheckedChange): string {
  // Built field by field so the order is fixed whatever order the caller's object had.
  if (change.op === 'delete') return JSON.stringify({ op: change.op, key: change.key });
  if (change.op === 'insert') return JSON.stringify({ op: change.op, key: change.key, row: change.row });
  return JSON.stringify({ op: change.op, key: change.key, row: change.row, changed: change.changed });
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
 * `Readable.from(encodeNdjson(…))` gives a Node stream.
 */
export function encodeNdjson(changeSet: ChangeSet): AsyncIterable<Buffer> {
  const metadata = normalizeMetadata(changeSet.metadata);
  const { changes } = changeSet;
  return (async function* () {
    const checker = new ChangeChecker(metadata);
    const buffer = new ChunkBuffer();
    buffer.push(`${JSON.stringify({ changeSet: metadata })}\n`);
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
 * human can read it, but any JSON parser takes the whole. Checks and chunking as there: a stream that
 * fails leaves the document unterminated rather than looking complete.
 */
export function encodeJson(changeSet: ChangeSet): AsyncIterable<Buffer> {
  const metadata = normalizeMetadata(changeSet.metadata);
  const { changes } = changeSet;
  return (async function* () {
    const checker = new ChangeChecker(metadata);
    const buffer = new ChunkBuffer();
    buffer.push(`{"changeSet":${JSON.stringify(metadata)},"changes":[`);
    let separator = '\n';
    for await (const change of changes) {
      const chunk = buffer.push(`${separator}${changeJson(checker.check(change))}`);
      separator = ',\n';
      if (chunk) yield chunk;
    }
    checker.finish();
    buffer.push(separator === '\n' ? ']}\n' : '\n]}\n');
    const rest = buffer.take();
    if (rest) yield rest;
  })();
}
