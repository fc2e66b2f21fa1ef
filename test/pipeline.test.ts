import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createPrismaClient } from '@keystage/db';
import { dropDatabase, withDatabase } from '@keystage/db/migrator';
import { afterAll, describe, expect, it } from 'vitest';
import { londonToday } from '../apps/cloud/src/runs/run-dispatcher.js';
import { killAll, STACK_LINE, spawnProcess, uniquePrefix } from './support/process.js';
import {
  type DatasetState,
  filesUnder,
  libraryDocuments,
  parseCsv,
  type ReceivedChange,
  readChangeSet,
  recompute,
} from './support/recompute.js';

// The whole pipeline with real processes, as `pnpm demo --once` runs it: control plane, the demo
// MIS, an enrolled agent process, the partner's webhook receiver and pull client, the file drop.
// What the partner received is compared with the MIS read directly — then again after a school
// day of changes (`demo-mis mutate`), against a recomputation from the two database states.
const DEMO = resolve(import.meta.dirname, '../apps/cloud/dist/demo.js');
const DEMO_MIS = resolve(import.meta.dirname, '../packages/demo-mis/dist/cli.js');
const serverUrl = process.env.KEYSTAGE_TEST_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseUrl = withDatabase(serverUrl, `keystage_pipeline_test_${process.pid}`);
const work = mkdtempSync(join(tmpdir(), 'ks-pipeline-'));
const misPath = join(work, 'school.sqlite');
const outputDir = join(work, 'demo-output');
const objectsDir = join(work, 'objects');
const env = {
  DATABASE_URL: databaseUrl,
  // Both demo runs listen on the same port: the enrolled agent keeps the URL it enrolled with.
  PORT: String(20_000 + (process.pid % 20_000)),
  KEYSTAGE_SECRET: 'pipeline-test-'.padEnd(48, 'p'),
  REDIS_PREFIX: uniquePrefix('pipeline'),
  DEMO_MIS_PATH: misPath,
  DEMO_MIS_PRESET: 'tiny',
  DEMO_OUTPUT_DIR: outputDir,
  DEMO_STATE_DIR: join(work, 'state'),
  OBJECT_STORE_DIR: objectsDir,
  // Everything changes in a tiny school: nothing is held for review in this test.
  DELTA_HOLD_SHARE: '1',
  DEMO_ONCE_TIMEOUT_MS: '150000',
};

afterAll(async () => {
  killAll();
  await dropDatabase(databaseUrl);
});

const FILE = /([0-9a-f-]{36})\.([A-Za-z0-9_]+)\.(ndjson|json|csv)$/;

/** Every received change set: its file, run and dataset. */
function received(): { file: string; runId: string; dataset: string; sink: string }[] {
  return filesUnder(outputDir).flatMap((file) => {
    const m = basename(file).match(FILE);
    if (!m) return [];
    const sink = file.slice(outputDir.length + 1).split('/')[0]!;
    return [{ file, runId: m[1]!, dataset: m[2]!, sink }];
  });
}

async function runExtracts(): Promise<Map<string, string>> {
  const prisma = createPrismaClient(databaseUrl);
  try {
    const runs = await prisma.run.findMany({
      select: { id: true, extractVersion: { select: { document: true } } },
    });
    return new Map(runs.map((r) => [r.id, (r.extractVersion.document as { name: string }).name]));
  } finally {
    await prisma.$disconnect();
  }
}

async function demoOnce() {
  const p = spawnProcess([DEMO, '--once'], env);
  const { code } = await p.exited(170_000);
  expect(code, p.output().split('\n').slice(-40).join('\n')).toBe(0);
  expect(p.output()).not.toMatch(STACK_LINE);
  expect(p.output()).toMatch(/0 duplicate\(s\) dropped/);
  return p.output();
}

function changesOf(
  files: ReturnType<typeof received>,
  runToExtract: Map<string, string>,
  states: Map<string, DatasetState>,
) {
  const out = new Map<string, ReceivedChange[]>();
  for (const f of files) {
    const extract = runToExtract.get(f.runId);
    if (!extract || f.dataset === 'all') continue;
    const state = states.get(`${extract}/${f.dataset}`);
    expect(state, `${extract}/${f.dataset}`).toBeDefined();
    const id = `${extract}/${f.dataset}`;
    expect(out.has(id), `one change set per dataset and run: ${id}`).toBe(false);
    out.set(id, readChangeSet(f.file, state!));
  }
  return out;
}

const ONEROSTER = 'oneroster';

describe('the whole pipeline, end to end', () => {
  let before: Map<string, DatasetState>;
  let firstFiles: ReturnType<typeof received>;

  it('pnpm demo --once delivers exactly the rows of the MIS, each change set once', async () => {
    const output = await demoOnce();
    expect(output).toMatch(/delivered/);
    before = await recompute(misPath, londonToday());
    firstFiles = received();
    const runToExtract = await runExtracts();
    const got = changesOf(firstFiles, runToExtract, before);
    let compared = 0;
    for (const [id, state] of before) {
      if (state.extract === ONEROSTER) continue;
      const changes = got.get(id) ?? [];
      expect(
        changes.every((c) => c.op === 'insert'),
        id,
      ).toBe(true);
      expect(changes.length, id).toBe(state.rows.size);
      const byKey = new Map(changes.map((c) => [c.key, c.row]));
      for (const [key, row] of state.rows) expect(byKey.get(key), `${id} ${key}`).toEqual(row);
      compared += state.rows.size;
    }
    expect(compared).toBeGreaterThan(200);
    // OneRoster: one bundle per run (manifest + files), as many data lines as the datasets' rows.
    const bundles = firstFiles.filter((f) => runToExtract.get(f.runId) === ONEROSTER);
    expect(bundles).toHaveLength(1);
    const files = JSON.parse(readFileSync(bundles[0]!.file, 'utf8')).files as Record<string, string>;
    expect(Object.keys(files)).toContain('manifest.csv');
    const lines = Object.entries(files)
      .filter(([name]) => name !== 'manifest.csv')
      .reduce((n, [, text]) => n + parseCsv(text).length - 1, 0);
    const expected = [...before.values()]
      .filter((s) => s.extract === ONEROSTER)
      .reduce((n, s) => n + s.rows.size, 0);
    expect(lines).toBe(expected);
  }, 200_000);

  it('after a school day of changes, delivers exactly the inserts, updates and deletes', async () => {
    execFileSync(process.execPath, [DEMO_MIS, 'mutate', '--db', misPath, '--quiet']);
    const after = await recompute(misPath, londonToday());
    await demoOnce();
    const seen = new Set(firstFiles.map((f) => f.file));
    const secondFiles = received().filter((f) => !seen.has(f.file));
    const runToExtract = await runExtracts();
    const got = changesOf(secondFiles, runToExtract, after);
    let changed = 0;
    for (const [id, now] of after) {
      if (now.extract === ONEROSTER) continue;
      const then = before.get(id)!;
      const expected: ReceivedChange[] = [];
      const full = now.delta === 'none' || !now.key;
      for (const [key, row] of now.rows) {
        const old = then.rows.get(key);
        if (full || !old) expected.push({ op: 'insert', key, row });
        else if (old.join('\u0002') !== row.join('\u0002')) expected.push({ op: 'update', key, row });
      }
      if (!full && now.delta !== 'changes') {
        for (const key of then.rows.keys()) if (!now.rows.has(key)) expected.push({ op: 'delete', key });
      }
      const actual = got.get(id) ?? [];
      const sort = (list: ReceivedChange[]) =>
        list.map((c) => `${c.op} ${c.key} ${c.row?.join('|') ?? ''}`).sort();
      expect(sort(actual), id).toEqual(sort(expected));
      if (!full) changed += expected.length;
    }
    expect(changed).toBeGreaterThan(0);
  }, 200_000);

  it('keeps no readable pupil data at rest: the object store holds ciphertext only', async () => {
    const pupils =
      before.get('parent-messaging/pupils') ??
      [...before.values()].find((s) => s.columns.includes('legal_surname'))!;
    const surnameAt = pupils.columns.findIndex((c) => /surname/.test(c));
    const surnames = [...pupils.rows.values()]
      .map((r) => r[surnameAt]!)
      .filter((s) => s.length >= 5)
      .slice(0, 20);
    expect(surnames.length).toBeGreaterThan(5);
    const objects = filesUnder(objectsDir);
    expect(objects.length).toBeGreaterThan(10);
    for (const file of objects) {
      const bytes = readFileSync(file);
      for (const name of surnames)
        expect(bytes.includes(Buffer.from(name)), `${name} in ${file}`).toBe(false);
    }
    // A full load's change set is kept as the snapshot it is (a small descriptor, written out when
    // read: the webhook read them all, so their sizes are known now); the others gzip-compressed.
    const prisma = createPrismaClient(databaseUrl);
    try {
      const deliveries = await prisma.delivery.findMany({
        select: { objectKey: true, contentEncoding: true, byteSize: true, fullLoad: true, datasetName: true },
      });
      expect(deliveries.length).toBeGreaterThan(5);
      // (A whole-run format — OneRoster's bundle of files — is always written out and compressed.)
      const full = deliveries.filter((d) => d.fullLoad && d.datasetName !== null);
      const changes = deliveries.filter((d) => !full.includes(d));
      expect(full.length).toBeGreaterThan(3);
      expect(changes.length).toBeGreaterThan(3);
      for (const d of full) {
        expect(d.contentEncoding).toBe('snapshot');
        expect(Number(d.byteSize)).toBeGreaterThan(0);
        const stored = objects.find((f) => f.endsWith(d.objectKey))!;
        expect(statSync(stored).size).toBeLessThan(8_192);
      }
      expect(changes.every((d) => d.contentEncoding === 'gzip')).toBe(true);
      const largest = changes.reduce((a, b) => (b.byteSize! > a.byteSize! ? b : a));
      const stored = objects.find((f) => f.endsWith(largest.objectKey))!;
      expect(stored).toBeDefined();
      expect(statSync(stored).size).toBeLessThan(Number(largest.byteSize) / 3);
    } finally {
      await prisma.$disconnect();
    }
    // The library documents really carry pupil names (the search above is not vacuous).
    expect(
      libraryDocuments().some((d) => d.datasets.some((s) => s.columns.some((c) => /surname/.test(c.name)))),
    ).toBe(true);
  });
});
