import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Change, ChangeSet, EncodedFile } from './change-set.js';
import {
  checkOneRosterDataset,
  encodeOneRosterCsv,
  ONEROSTER_FILES,
  ONEROSTER_MANIFEST_FILES,
} from './oneroster.js';
import { readCsv, readCsvObjects } from './test-support/csv-reader.js';
import { countsOf, metadataFor, readAll } from './test-support/fixtures.js';

/** The 1EdTech OneRoster 1.2 CSV headers, written out here rather than taken from the code under test. */
const HEADERS: Record<string, string> = {
  'orgs.csv': 'sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId',
  'academicSessions.csv':
    'sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear',
  'courses.csv':
    'sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes',
  'classes.csv':
    'sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods',
  'enrollments.csv':
    'sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate',
  'users.csv':
    'sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns',
  'roles.csv':
    'sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId',
  'demographics.csv':
    'sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus',
};

/**
 * The datasets of the library's oneroster extract, read from its YAML with a few regular expressions
 * (the yaml package is not a dependency here): name, key and column names.
 */
function libraryDatasets(): { name: string; key: string[]; columns: { name: string; type: 'string' }[] }[] {
  const yaml = readFileSync(new URL('../../extract-spec/library/oneroster.yaml', import.meta.url), 'utf8');
  const datasets = yaml.slice(yaml.indexOf('\ndatasets:\n'), yaml.indexOf('\ndelivery:\n'));
  return datasets
    .split(/^ {2}- name: /m)
    .slice(1)
    .map((block) => ({
      name: block.slice(0, block.indexOf('\n')).trim(),
      key: /^ {4}key: \[(.*)\]$/m
        .exec(block)![1]!
        .split(',')
        .map((s) => s.trim()),
      columns: [...block.matchAll(/\{\s*name: (\w+),/g)].map((m) => ({
        name: m[1]!,
        type: 'string' as const,
      })),
    }));
}

const usersColumns = [
  'sourcedId',
  'status',
  'dateLastModified',
  'enabledUser',
  'username',
  'givenName',
  'familyName',
  'middleName',
  'identifier',
  'email',
  'grades',
  'preferredGivenName',
  'primaryOrgSourcedId',
];

function user(id: string, givenName: string, extra: Record<string, string | null> = {}) {
  return {
    sourcedId: id,
    status: 'ignored',
    dateLastModified: '1999-01-01T00:00:00Z',
    enabledUser: 'true',
    username: `ADM${id}`,
    givenName,
    familyName: 'Smith',
    middleName: null,
    identifier: `UPN${id}`,
    email: null,
    grades: '7',
    preferredGivenName: null,
    primaryOrgSourcedId: '100000',
    ...extra,
  };
}

function changeSet(name: string, columns: string[], changes: Change[], fullLoad = false): ChangeSet {
  return {
    metadata: metadataFor({ name, columns, key: ['sourcedId'] }, { fullLoad, counts: countsOf(changes) }),
    changes,
  };
}

async function filesOf(files: EncodedFile[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of files) {
    expect(file.contentType).toBe('text/csv; charset=utf-8');
    out.set(file.name, await readAll(file.content));
  }
  return out;
}

function manifestOf(text: string): Map<string, string> {
  const [header, ...records] = readCsv(text);
  expect(header).toEqual(['propertyName', 'value']);
  return new Map(records.map(([name, value]) => [name!, value!]));
}

describe('encodeOneRosterCsv', () => {
  it('writes a delta: active inserts and updates, tobedeleted deletes, dateLastModified from createdAt', async () => {
    const users = changeSet('users', usersColumns, [
      { op: 'insert', key: { sourcedId: 'u1' }, row: user('u1', 'Zoë, "Jo"') },
      { op: 'update', key: { sourcedId: 'u2' }, row: user('u2', 'Bo'), changed: ['givenName'] },
      { op: 'delete', key: { sourcedId: 'u3' } },
    ]);
    const files = await filesOf(encodeOneRosterCsv([users]));
    expect([...files.keys()]).toEqual(['manifest.csv', 'users.csv']);
    const text = files.get('users.csv')!;
    expect(text.slice(0, text.indexOf('\r\n'))).toBe(HEADERS['users.csv']);
    const { rows } = readCsvObjects(text);
    expect(rows.map((r) => [r.sourcedId, r.status, r.dateLastModified])).toEqual([
      ['u1', 'active', '2025-03-01T05:00:00.000Z'],
      ['u2', 'active', '2025-03-01T05:00:00.000Z'],
      ['u3', 'tobedeleted', '2025-03-01T05:00:00.000Z'],
    ]);
    expect(rows[0]).toMatchObject({ givenName: 'Zoë, "Jo"', username: 'ADMu1', userIds: '', pronouns: '' });
    // A delete carries only its sourcedId.
    expect(Object.entries(rows[2]!).filter(([, value]) => value !== '')).toEqual([
      ['sourcedId', 'u3'],
      ['status', 'tobedeleted'],
      ['dateLastModified', '2025-03-01T05:00:00.000Z'],
    ]);
    expect(manifestOf(files.get('manifest.csv')!).get('file.users')).toBe('delta');
  });

  it('writes a full load as bulk: status and dateLastModified empty, deletes left out', async () => {
    const users = changeSet(
      'users',
      usersColumns,
      [
        { op: 'insert', key: { sourcedId: 'u1' }, row: user('u1', 'Ada') },
        { op: 'delete', key: { sourcedId: 'u9' } },
      ],
      true,
    );
    const files = await filesOf(encodeOneRosterCsv([users]));
    const { rows } = readCsvObjects(files.get('users.csv')!);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ sourcedId: 'u1', status: '', dateLastModified: '', givenName: 'Ada' });
    expect(manifestOf(files.get('manifest.csv')!).get('file.users')).toBe('bulk');
  });

  it('writes the manifest: versions, every 1.2 file bulk, delta or absent, then the source', async () => {
    const orgs = changeSet(
      'orgs',
      ['sourcedId', 'name', 'type', 'identifier'],
      [
        {
          op: 'insert',
          key: { sourcedId: '100000' },
          row: { sourcedId: '100000', name: 'Example', type: 'school', identifier: '9991234' },
        },
      ],
      true,
    );
    const sessions = changeSet(
      'academic_sessions',
      ['sourcedId', 'title', 'type', 'startDate', 'endDate', 'schoolYear'],
      [{ op: 'delete', key: { sourcedId: '2023/24' } }],
    );
    const roles = changeSet('roles', ['sourcedId', 'userSourcedId', 'roleType', 'role', 'orgSourcedId'], []);
    const files = await filesOf(encodeOneRosterCsv([orgs, sessions, roles]));
    // roles has no rows: no file, and absent (OneRoster allows no empty files).
    expect([...files.keys()]).toEqual(['manifest.csv', 'orgs.csv', 'academicSessions.csv']);
    const manifestText = files.get('manifest.csv')!;
    expect(
      manifestText.startsWith('propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.2\r\n'),
    ).toBe(true);
    const manifest = manifestOf(manifestText);
    expect([...manifest.keys()]).toEqual([
      'manifest.version',
      'oneroster.version',
      ...ONEROSTER_MANIFEST_FILES.map((file) => `file.${file}`),
      'source.systemName',
      'source.systemCode',
    ]);
    expect(ONEROSTER_MANIFEST_FILES).toHaveLength(21);
    expect(manifest.get('file.orgs')).toBe('bulk');
    expect(manifest.get('file.academicSessions')).toBe('delta');
    expect(manifest.get('file.roles')).toBe('absent');
    expect(manifest.get('file.users')).toBe('absent');
    expect(manifest.get('file.lineItems')).toBe('absent');
    expect(manifest.get('source.systemName')).toBe('Keystage');
    expect(manifest.get('source.systemCode')).toBe('100000');
    expect(files.get('orgs.csv')).toBe(`${HEADERS['orgs.csv']}\r\n100000,,,Example,school,9991234,\r\n`);
    expect(files.get('academicSessions.csv')).toBe(
      `${HEADERS['academicSessions.csv']}\r\n2023/24,tobedeleted,2025-03-01T05:00:00.000Z,,,,,,\r\n`,
    );
  });

  it.each(Object.entries(HEADERS))(
    'writes %s with the OneRoster 1.2 header in order',
    async (fileName, header) => {
      const [name, spec] = Object.entries(ONEROSTER_FILES).find(([, s]) => `${s.file}.csv` === fileName)!;
      const row = Object.fromEntries(spec.required.map((column) => [column, `${column}-value`]));
      // The dataset's columns in reverse: the file still follows the binding's order.
      const columns = [...spec.required].reverse();
      const set = changeSet(name, columns, [{ op: 'insert', key: { sourcedId: row.sourcedId }, row }]);
      const files = await filesOf(encodeOneRosterCsv([set]));
      const [written, record] = readCsv(files.get(fileName)!);
      expect(written!.join(',')).toBe(header);
      expect(record).toHaveLength(written!.length);
      for (const column of columns) expect(record![written!.indexOf(column)]).toBe(`${column}-value`);
      expect(record![1]).toBe('active');
    },
  );

  it('turns carriage returns inside fields into line feeds, and writes no formula guard unless asked', async () => {
    const set = changeSet('users', usersColumns, [
      { op: 'insert', key: { sourcedId: 'u1' }, row: user('u1', '=Ann\r\nLine\rTwo') },
    ]);
    const plain = readCsvObjects((await filesOf(encodeOneRosterCsv([set]))).get('users.csv')!);
    expect(plain.rows[0]!.givenName).toBe('=Ann\nLine\nTwo');
    const again = changeSet('users', usersColumns, [
      { op: 'insert', key: { sourcedId: 'u1' }, row: user('u1', '=Ann') },
    ]);
    const guarded = readCsvObjects(
      (await filesOf(encodeOneRosterCsv([again], { formulaGuard: true }))).get('users.csv')!,
    );
    expect(guarded.rows[0]!.givenName).toBe("'=Ann");
  });

  it('refuses datasets that cannot map, listing every problem', () => {
    const pupils = changeSet('pupils', ['sourcedId', 'givenName'], []);
    const badUsers: ChangeSet = {
      metadata: metadataFor({ name: 'users', columns: ['upn', 'givenName', 'ethnicity'], key: ['upn'] }),
      changes: [],
    };
    let error: unknown;
    try {
      encodeOneRosterCsv([pupils, badUsers]);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ name: 'FormatError', code: 'formats.not_oneroster' });
    const message = (error as Error).message;
    expect(message).toMatch(/dataset pupils is not a OneRoster 1.2 file/);
    expect(message).toMatch(/users must be keyed by sourcedId/);
    expect(message).toMatch(/column ethnicity of dataset users is not a users.csv column/);
    expect(message).toMatch(/lacks users.csv's required column familyName/);
  });

  it('refuses change sets of different runs or schools, or a dataset twice', () => {
    const a = changeSet('orgs', ['sourcedId', 'name', 'type'], []);
    const otherRun = { ...a, metadata: { ...a.metadata, runId: 'another' } };
    const otherSchool = { ...a, metadata: { ...a.metadata, school: { urn: '200000', name: 'Other' } } };
    for (const sets of [[a, otherRun], [a, otherSchool], [a, a], []]) {
      expect(() => encodeOneRosterCsv(sets)).toThrowError(
        expect.objectContaining({ code: 'formats.invalid_input' }),
      );
    }
  });

  it('maps every dataset of the library oneroster extract', () => {
    const datasets = libraryDatasets();
    expect(datasets.map((d) => d.name)).toEqual([
      'orgs',
      'academic_sessions',
      'courses',
      'classes',
      'enrollments',
      'users',
      'roles',
    ]);
    for (const dataset of datasets) {
      expect(dataset.columns.length).toBeGreaterThan(3);
      expect(checkOneRosterDataset(dataset)).toEqual([]);
    }
  });
});
