import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentsService } from '../apps/cloud/src/agents/agents.service.js';
import { AgreementsService } from '../apps/cloud/src/agreements/agreements.service.js';
import { type RunningServer, startServer } from '../apps/cloud/src/bootstrap.js';
import { loadConfig } from '../apps/cloud/src/config/config.js';
import { PrismaProvider } from '../apps/cloud/src/database/prisma.provider.js';
import { DeliveryService } from '../apps/cloud/src/deliveries/delivery.service.js';
import { ExtractsService } from '../apps/cloud/src/extracts/extracts.service.js';
import { RunsService } from '../apps/cloud/src/runs/runs.service.js';
import { createConnector, type Row } from '../packages/mis-connectors/src/index.js';
import { PG_SERVER, pgExec } from '../packages/mis-connectors/src/test-support/databases.js';
import { agent, tempDataDir } from './support/agent.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { killAll, uniquePrefix } from './support/process.js';

// A PostgreSQL MIS end to end: a real agent process reads it (with COPY: the statement has no
// parameters), the control plane decodes, diffs and stores the change set; what the partner
// pulls must be exactly the rows the connector's cursor path reads from the same table.
const SYSTEM = { type: 'SYSTEM' as const, id: null, requestId: null };
const misName = `ks_pgmis_${uniquePrefix('m')
  .replace(/[^a-z0-9_]/gi, '_')
  .toLowerCase()}`;
const misUrl = (() => {
  const u = new URL(PG_SERVER.toString());
  u.pathname = `/${misName}`;
  return u.toString();
})();
const SQL = `SELECT pupil_id, mark_date, period, code, minutes_late, recorded_at, comment
  FROM marks ORDER BY pupil_id, mark_date, period`;
const EXTRACT = `keystage: extract/v1
name: pg-marks
description: Every attendance mark, from a PostgreSQL MIS.
mis: POSTGRES
datasets:
  - name: marks
    description: Session marks.
    key: [pupil_id, mark_date, period]
    delta: changes_and_deletions
    columns:
      - { name: pupil_id, type: integer, description: Pupil, category: identity }
      - { name: mark_date, type: date, description: Day, category: education }
      - { name: period, type: string, description: AM or PM, category: education }
      - { name: code, type: string, description: Attendance code, category: education }
      - { name: minutes_late, type: integer, nullable: true, description: Minutes late, category: education }
      - { name: recorded_at, type: timestamp, description: When it was recorded, category: none }
      - { name: comment, type: string, nullable: true, description: Comment, category: education }
    sql: |
      ${SQL.replace(/\n\s*/g, '\n      ')}
  - name: reader
    description: How the agent read it (the text of the statement the server ran).
    key: [id]
    delta: none
    columns:
      - { name: id, type: integer, description: One row, category: none }
      - { name: via, type: string, description: The statement's first words, category: none }
    sql: SELECT 1 AS id, left(current_query(), 6) AS via
delivery: { format: ndjson, target: pull }
`;
const COLUMNS = ['pupil_id', 'mark_date', 'period', 'code', 'minutes_late', 'recorded_at', 'comment'];

let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaProvider['client'];
let partnerId: string;
let schoolId: string;
let extractId: string;

async function mis(sql: string, database = misName): Promise<void> {
  await pgExec(sql, [], database);
}

/** The rows as the connector's cursor path reads them, by key. */
async function expectedRows(): Promise<Map<string, Record<string, unknown>>> {
  const c = createConnector('postgres', { url: misUrl, schema: 'public' });
  try {
    const out = new Map<string, Record<string, unknown>>();
    for await (const row of await c.stream(SQL)) out.set(keyOf(row), rowObject(row));
    return out;
  } finally {
    await c.close();
  }
}

const keyOf = (row: Row | unknown[]) => `${row[0]}|${row[1]}|${row[2]}`;
const rowObject = (row: Row) => Object.fromEntries(COLUMNS.map((c, i) => [c, row[i]]));

type Change = { op: string; key: Record<string, unknown>; row?: Record<string, unknown> };

/** Runs the extract now and returns the changes to the marks the partner can pull, and how they were read. */
async function runAndPull(): Promise<{ changes: Change[]; fullLoad: boolean; via: unknown }> {
  const runs = server.app.get(RunsService);
  const started = await runs.runNow(partnerId, { schoolId, extractId }, SYSTEM);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const run = await prisma.run.findUnique({
      where: { id: started.id },
      select: { state: true, errorMessage: true },
    });
    if (run?.state === 'FAILED' || run?.state === 'MISSED')
      throw new Error(`${run.state}: ${run.errorMessage}`);
    if (run?.state === 'PROCESSED' || run?.state === 'DELIVERED') break;
    if (Date.now() > deadline) throw new Error(`run stuck in ${run?.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pull = async (datasetName: string) => {
    const delivery = await prisma.delivery.findFirst({ where: { runId: started.id, datasetName } });
    if (!delivery) throw new Error(`no change set for ${datasetName}`);
    const { stream } = await server.app.get(DeliveryService).content(partnerId, delivery.id, SYSTEM);
    const parts: Buffer[] = [];
    for await (const p of stream) parts.push(p as Buffer);
    const lines = Buffer.concat(parts).toString('utf8').split('\n').filter(Boolean);
    const header = JSON.parse(lines[0]!) as { changeSet: { fullLoad: boolean } };
    return {
      changes: lines.slice(1).map((l) => JSON.parse(l) as Change),
      fullLoad: header.changeSet.fullLoad,
    };
  };
  const reader = await pull('reader');
  return { ...(await pull('marks')), via: reader.changes[0]?.row?.via };
}

beforeAll(async () => {
  await mis(`DROP DATABASE IF EXISTS ${misName}`, 'postgres');
  await mis(`CREATE DATABASE ${misName} ENCODING 'UTF8' TEMPLATE template0`, 'postgres');
  await mis(`CREATE TABLE marks (
      pupil_id int NOT NULL, mark_date date NOT NULL, period char(2) NOT NULL, code char(1) NOT NULL,
      minutes_late int, recorded_at timestamptz NOT NULL, comment text,
      PRIMARY KEY (pupil_id, mark_date, period));
    INSERT INTO marks
      SELECT p, DATE '2025-09-01' + (d / 2), CASE WHEN d % 2 = 0 THEN 'AM' ELSE 'PM' END,
             (ARRAY['/', '\\', 'L', 'N', 'M', 'I'])[1 + (p * 7 + d) % 6],
             CASE WHEN (p + d) % 17 = 0 THEN (p + d) % 30 ELSE NULL END,
             TIMESTAMPTZ '2025-09-01 08:40:00+00' + make_interval(days => d / 2, mins => p % 50),
             CASE (p + d) % 41
               WHEN 0 THEN 'parent phoned: ' || p
               WHEN 1 THEN 'tab' || chr(9) || 'and' || chr(10) || 'newline, back\\slash "quoted" Zoë 😀'
               WHEN 2 THEN '\\N'
               ELSE NULL END
        FROM generate_series(1, 120) p, generate_series(0, 199) d`);
  db = await createTestDatabase('pg_agent');
  server = await startServer(
    loadConfig({
      DATABASE_URL: db.url,
      KEYSTAGE_SECRET: 'pg-agent-test-secret-'.padEnd(48, 'p'),
      PORT: '0',
      LOG_LEVEL: process.env.KS_LOG ?? 'silent',
      REDIS_PREFIX: uniquePrefix('pgagent'),
      DELTA_HOLD_SHARE: '1',
    }),
  );
  prisma = server.app.get(PrismaProvider).client;
  const school = await prisma.school.create({
    data: { urn: '300777', laEstab: '873/6777', name: 'PG School', misType: 'POSTGRES' },
  });
  schoolId = school.id;
  partnerId = (await prisma.partner.create({ data: { slug: 'pg-partner', name: 'PG Partner' } })).id;
  const version = await server.app.get(ExtractsService).publish(partnerId, EXTRACT, SYSTEM);
  extractId = version.extractId;
  const agreements = server.app.get(AgreementsService);
  const asked = await agreements.request(
    partnerId,
    {
      schoolId,
      extractVersionIds: [version.id],
      purpose: 'pg test',
      lawfulBasis: 'public_task',
      retentionDays: 7,
    },
    SYSTEM,
  );
  await agreements.approve(schoolId, asked.id, 'ok', SYSTEM);
  const { token } = await server.app.get(AgentsService).createEnrolmentToken(schoolId, 1, SYSTEM);
  const dataDir = tempDataDir('pg');
  const enrol = agent(dataDir, ['enrol', '--url', server.url, '--token', token, '--mis-kind', 'POSTGRES']);
  expect((await enrol.exited()).code).toBe(0);
  const creds = agent(dataDir, [
    'credentials',
    'set',
    '--kind',
    'POSTGRES',
    '--location',
    misUrl,
    '--no-password',
  ]);
  expect((await creds.exited()).code).toBe(0);
  await agent(dataDir, ['run']).waitFor(/"authenticated"/);
}, 90_000);

afterAll(async () => {
  killAll();
  await server?.stop();
  await db?.drop();
  await mis(`DROP DATABASE IF EXISTS ${misName} WITH (FORCE)`, 'postgres').catch(() => undefined);
});

describe('a PostgreSQL MIS through a real agent', () => {
  it('delivers exactly the rows the cursor reads, then exactly the changes', async () => {
    const expected = await expectedRows();
    expect(expected.size).toBe(24_000);
    const first = await runAndPull();
    // The agent read with COPY (the statement has no parameters): the server ran `COPY (…`.
    expect(first.via).toBe('COPY (');
    expect(first.fullLoad).toBe(true);
    expect(first.changes).toHaveLength(expected.size);
    for (const c of first.changes) {
      expect(c.op).toBe('insert');
      const key = keyOf([c.row!.pupil_id, c.row!.mark_date, c.row!.period]);
      expect(c.row, key).toEqual(expected.get(key));
    }

    await mis(`UPDATE marks SET comment = 'late bus' || chr(9) || '→ ok', minutes_late = 7
                WHERE pupil_id = 3 AND mark_date < DATE '2025-09-05';
               DELETE FROM marks WHERE pupil_id = 4 AND mark_date = DATE '2025-09-01';
               INSERT INTO marks VALUES (999, DATE '2025-09-01', 'AM', '/', NULL, TIMESTAMPTZ '2025-09-01 09:00+00', NULL)`);
    const after = await expectedRows();
    const second = await runAndPull();
    expect(second.fullLoad).toBe(false);
    const byOp = (op: string) => second.changes.filter((c) => c.op === op);
    expect(byOp('update')).toHaveLength(8);
    for (const c of byOp('update')) {
      const key = keyOf([c.row!.pupil_id, c.row!.mark_date, c.row!.period]);
      expect(c.row).toEqual(after.get(key));
      expect(c.row!.comment).toBe('late bus\t→ ok');
    }
    expect(byOp('delete').map((c) => c.key)).toEqual([
      { pupil_id: 4, mark_date: '2025-09-01', period: 'AM' },
      { pupil_id: 4, mark_date: '2025-09-01', period: 'PM' },
    ]);
    expect(byOp('insert').map((c) => c.row)).toEqual([after.get('999|2025-09-01|AM')]);
  }, 120_000);
});
