import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  bindParameters,
  type ExtractDocument,
  LIBRARY_EXTRACTS,
  libraryDocumentText,
  MIS_DIALECT,
  parseExtractDocument,
  resolveParameters,
} from '@keystage/extract-spec';
import { createConnector } from '@keystage/mis-connectors';

/** A value as compared: text, with SQL NULL and the empty string alike (CSV cannot tell them apart). */
export const norm = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

export interface DatasetState {
  extract: string;
  dataset: string;
  delta: string;
  key: string[] | undefined;
  columns: string[];
  /** Rows by key (all columns joined for keyless datasets), normalised. */
  rows: Map<string, string[]>;
}

export function libraryDocuments(): ExtractDocument[] {
  return LIBRARY_EXTRACTS.map((name) => {
    const parsed = parseExtractDocument(libraryDocumentText(name));
    if (!parsed.ok) throw new Error(`library extract ${name} does not parse`);
    return parsed.document;
  });
}

/** Every library dataset read straight from the demo MIS (SQLite), as the agent would read it. */
export async function recompute(misPath: string, today: string): Promise<Map<string, DatasetState>> {
  const out = new Map<string, DatasetState>();
  const connector = createConnector('sqlite', { path: misPath });
  await connector.connect();
  try {
    for (const doc of libraryDocuments()) {
      const resolved = resolveParameters(doc.parameters, {}, { today });
      if (!resolved.ok) throw new Error(`${doc.name}: parameters`);
      for (const dataset of doc.datasets) {
        const bound = bindParameters(dataset.sql, MIS_DIALECT[doc.mis], resolved.bindings, 'colon');
        const params = Object.entries(bound.named).map(([name, value]) => ({
          name,
          type: (typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : 'string') as
            | 'integer'
            | 'number'
            | 'string',
          value,
        }));
        const stream = await connector.stream(bound.sql, params, {});
        const names = stream.columns.map((c) => c.name);
        const columns = dataset.columns.map((c) => c.name);
        const order = columns.map((c) => names.indexOf(c));
        const rows = new Map<string, string[]>();
        for await (const raw of stream) {
          const row = order.map((i) => norm((raw as unknown[])[i]));
          rows.set(keyOf(dataset.key, columns, row), row);
        }
        out.set(`${doc.name}/${dataset.name}`, {
          extract: doc.name,
          dataset: dataset.name,
          delta: dataset.delta,
          key: dataset.key,
          columns,
          rows,
        });
      }
    }
  } finally {
    await connector.close();
  }
  return out;
}

export function keyOf(key: string[] | undefined, columns: string[], row: string[]): string {
  const names = key ?? columns;
  return names.map((k) => row[columns.indexOf(k)]).join('\u0001');
}

export interface ReceivedChange {
  op: 'insert' | 'update' | 'delete';
  key: string;
  row?: string[];
}

/** Reads one received change set file (NDJSON, JSON or CSV) into normalised changes. */
export function readChangeSet(file: string, state: DatasetState): ReceivedChange[] {
  const text = readFileSync(file, 'utf8');
  const { columns, key } = state;
  const fromObject = (c: {
    op: ReceivedChange['op'];
    key: Record<string, unknown>;
    row?: Record<string, unknown>;
  }) => {
    const row = c.row ? columns.map((name) => norm(c.row![name])) : undefined;
    const keyRow = columns.map((name) => norm(c.row?.[name] ?? c.key[name]));
    return { op: c.op, key: keyOf(key, columns, keyRow), ...(row ? { row } : {}) };
  };
  if (file.endsWith('.ndjson')) {
    const lines = text.split('\n').filter(Boolean).slice(1);
    return lines.map((l) => fromObject(JSON.parse(l)));
  }
  if (file.endsWith('.json')) return (JSON.parse(text).changes as never[]).map(fromObject);
  if (file.endsWith('.csv')) {
    const records = parseCsv(text);
    const header = records[0]!;
    return records.slice(1).map((r) => {
      const get = (name: string) => r[header.indexOf(name)] ?? '';
      const op = get('_op') as ReceivedChange['op'];
      const row = columns.map((c) => get(c));
      return { op, key: keyOf(key, columns, row), ...(op === 'delete' ? {} : { row }) };
    });
  }
  throw new Error(`unknown change set file ${file}`);
}

/** RFC 4180. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** Every file under a directory, recursively. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
