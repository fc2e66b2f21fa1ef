import {
  ChangeChecker,
  type ChangeSet,
  type EncodedFile,
  type NormalizedMetadata,
  normalizeMetadata,
  type Value,
} from './change-set.js';
import { type CsvOptions, writeCsv } from './csv.js';
import { FormatError, FormatErrorCode } from './errors.js';

/** One OneRoster 1.2 CSV file: its name without `.csv`, its columns in the order the binding fixes, the ones that must be there. */
export interface OneRosterFileSpec {
  file: string;
  header: readonly string[];
  required: readonly string[];
}

/**
 * The OneRoster 1.2 rostering files Keystage writes, by dataset name. Extract dataset names are
 * lower-case identifiers, so `academicSessions.csv` is the dataset `academic_sessions`; column names
 * are OneRoster's own camelCase (see `packages/extract-spec/library/oneroster.yaml`). Headers follow
 * the 1EdTech OneRoster 1.2 CSV binding; `required` excludes `status` and `dateLastModified`, which
 * Keystage fills in itself.
 */
export const ONEROSTER_FILES: Readonly<Record<string, OneRosterFileSpec>> = {
  orgs: {
    file: 'orgs',
    header: ['sourcedId', 'status', 'dateLastModified', 'name', 'type', 'identifier', 'parentSourcedId'],
    required: ['sourcedId', 'name', 'type'],
  },
  academic_sessions: {
    file: 'academicSessions',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'title',
      'type',
      'startDate',
      'endDate',
      'parentSourcedId',
      'schoolYear',
    ],
    required: ['sourcedId', 'title', 'type', 'startDate', 'endDate', 'schoolYear'],
  },
  courses: {
    file: 'courses',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'schoolYearSourcedId',
      'title',
      'courseCode',
      'grades',
      'orgSourcedId',
      'subjects',
      'subjectCodes',
    ],
    required: ['sourcedId', 'title', 'orgSourcedId'],
  },
  classes: {
    file: 'classes',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'title',
      'grades',
      'courseSourcedId',
      'classCode',
      'classType',
      'location',
      'schoolSourcedId',
      'termSourcedIds',
      'subjects',
      'subjectCodes',
      'periods',
    ],
    required: ['sourcedId', 'title', 'courseSourcedId', 'classType', 'schoolSourcedId', 'termSourcedIds'],
  },
  enrollments: {
    file: 'enrollments',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'classSourcedId',
      'schoolSourcedId',
      'userSourcedId',
      'role',
      'primary',
      'beginDate',
      'endDate',
    ],
    required: ['sourcedId', 'classSourcedId', 'schoolSourcedId', 'userSourcedId', 'role'],
  },
  users: {
    file: 'users',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'enabledUser',
      'username',
      'userIds',
      'givenName',
      'familyName',
      'middleName',
      'identifier',
      'email',
      'sms',
      'phone',
      'agentSourcedIds',
      'grades',
      'password',
      'userMasterIdentifier',
      'preferredGivenName',
      'preferredMiddleName',
      'preferredFamilyName',
      'primaryOrgSourcedId',
      'pronouns',
    ],
    required: ['sourcedId', 'enabledUser', 'username', 'givenName', 'familyName'],
  },
  roles: {
    file: 'roles',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'userSourcedId',
      'roleType',
      'role',
      'beginDate',
      'endDate',
      'orgSourcedId',
      'userProfileSourcedId',
    ],
    required: ['sourcedId', 'userSourcedId', 'roleType', 'role', 'orgSourcedId'],
  },
  demographics: {
    file: 'demographics',
    header: [
      'sourcedId',
      'status',
      'dateLastModified',
      'birthDate',
      'sex',
      'americanIndianOrAlaskaNative',
      'asian',
      'blackOrAfricanAmerican',
      'nativeHawaiianOrOtherPacificIslander',
      'white',
      'demographicRaceTwoOrMoreRaces',
      'hispanicOrLatinoEthnicity',
      'countryOfBirthCode',
      'stateOfBirthAbbreviation',
      'cityOfBirth',
      'publicSchoolResidenceStatus',
    ],
    required: ['sourcedId'],
  },
};

/** Every file a OneRoster 1.2 manifest declares, in the binding's order. */
export const ONEROSTER_MANIFEST_FILES = [
  'academicSessions',
  'categories',
  'classes',
  'classResources',
  'courses',
  'courseResources',
  'demographics',
  'enrollments',
  'lineItemLearningObjectiveIds',
  'lineItems',
  'lineItemScoreScales',
  'orgs',
  'resources',
  'resultLearningObjectiveIds',
  'results',
  'resultScoreScales',
  'roles',
  'scoreScales',
  'userProfiles',
  'userResources',
  'users',
] as const;

/** How the manifest declares a file: `bulk` (the whole set), `delta` (changes) or `absent`. */
export type OneRosterFileMode = 'bulk' | 'delta' | 'absent';

export interface OneRosterOptions extends CsvOptions {
  /**
   * Off by default here, unlike plain CSV: OneRoster files are read by rostering programs, and the
   * guard's `'` would alter identifiers and names. Turn it on for a partner who opens them by hand.
   */
  formulaGuard?: boolean;
  /** `source.systemName` in the manifest; `Keystage` unless given. */
  systemName?: string;
  /** `source.systemCode` in the manifest; the school's URN unless given. */
  systemCode?: string;
}

const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';
const KEYSTAGE_FIELDS = new Set(['status', 'dateLastModified']);

/**
 * What stops a dataset from being written as a OneRoster 1.2 file; empty when it can be. A dataset
 * maps when its name is a OneRoster file (see {@link ONEROSTER_FILES}), its key is `[sourcedId]`,
 * every column is a column of that file and every required column is there. Missing optional
 * columns are written empty; `status` and `dateLastModified`, when the dataset has them, are ignored
 * and filled in by Keystage.
 */
export function checkOneRosterDataset(dataset: {
  name: string;
  columns: readonly { name: string }[];
  key: readonly string[];
}): string[] {
  const spec = Object.hasOwn(ONEROSTER_FILES, dataset.name) ? ONEROSTER_FILES[dataset.name] : undefined;
  if (!spec) {
    return [
      `dataset ${dataset.name} is not a OneRoster 1.2 file: expected one of ${Object.keys(ONEROSTER_FILES).join(', ')}`,
    ];
  }
  const problems: string[] = [];
  if (dataset.key.length !== 1 || dataset.key[0] !== 'sourcedId') {
    problems.push(`dataset ${dataset.name} must be keyed by sourcedId alone`);
  }
  const header = new Set(spec.header);
  const names = new Set(dataset.columns.map((column) => column.name));
  for (const name of names) {
    if (!header.has(name))
      problems.push(`column ${name} of dataset ${dataset.name} is not a ${spec.file}.csv column`);
  }
  for (const name of spec.required) {
    if (!names.has(name))
      problems.push(`dataset ${dataset.name} lacks ${spec.file}.csv's required column ${name}`);
  }
  return problems;
}

interface PlannedFile {
  spec: OneRosterFileSpec;
  metadata: NormalizedMetadata;
  changes: ChangeSet['changes'];
  mode: OneRosterFileMode;
}

/**
 * OneRoster 1.2 CSV for the datasets of one run at one school: `manifest.csv` first, then one file
 * per dataset that has rows to send (`orgs.csv`, `academicSessions.csv`, `users.csv`…), each with the
 * binding's full header in its order (columns the dataset lacks are empty). Files are RFC 4180 as
 * plain CSV, with carriage returns inside fields turned into LF (the binding forbids them).
 *
 * - A full load (`fullLoad: true`) is a `bulk` file: `status` and `dateLastModified` empty, as the
 *   binding requires; deletes, meaningless in a full set, are left out.
 * - Otherwise a `delta` file: `status` is `active` for inserts and updates, `tobedeleted` for
 *   deletes (which carry only `sourcedId`), and `dateLastModified` is the change set's `createdAt`.
 * - The manifest (`propertyName,value`) gives `manifest.version` 1.0, `oneroster.version` 1.2,
 *   `file.<name>` for every 1.2 file (`bulk`, `delta`, or `absent` for those not sent, including a
 *   dataset with no rows: the binding allows no empty files), then `source.systemName` and
 *   `source.systemCode`.
 *
 * Everything is checked before this returns: a dataset that cannot map throws `formats.not_oneroster`
 * listing every problem; change sets from different runs, partners or schools, or two for one file,
 * `formats.invalid_input`. Each file's content streams its change set once; read them in any order.
 */
export function encodeOneRosterCsv(
  changeSets: readonly ChangeSet[],
  options: OneRosterOptions = {},
): EncodedFile[] {
  if (!Array.isArray(changeSets) || changeSets.length === 0) {
    throw new FormatError(FormatErrorCode.InvalidInput, 'OneRoster CSV needs at least one change set');
  }
  const planned = changeSets.map((changeSet) => ({
    metadata: normalizeMetadata(changeSet.metadata),
    changes: changeSet.changes,
  }));
  const first = planned[0]!.metadata;
  const problems: string[] = [];
  const files = new Set<string>();
  for (const { metadata } of planned) {
    const { dataset } = metadata;
    if (metadata.runId !== first.runId || metadata.partnerId !== first.partnerId) {
      throw new FormatError(
        FormatErrorCode.InvalidInput,
        'OneRoster CSV is written for the change sets of one run',
      );
    }
    if (metadata.school.urn !== first.school.urn) {
      throw new FormatError(
        FormatErrorCode.InvalidInput,
        'OneRoster CSV is written for one school at a time',
      );
    }
    if (files.has(dataset.name)) {
      throw new FormatError(FormatErrorCode.InvalidInput, `dataset ${dataset.name} is given twice`);
    }
    files.add(dataset.name);
    problems.push(...checkOneRosterDataset(dataset));
  }
  if (problems.length > 0) {
    throw new FormatError(
      FormatErrorCode.NotOneRoster,
      `these datasets cannot be delivered as OneRoster 1.2 CSV: ${problems.join('; ')}`,
    );
  }
  const formulaGuard = options.formulaGuard === true;
  const dataFiles: PlannedFile[] = planned.map(({ metadata, changes }) => {
    const { inserts, updates, deletes } = metadata.counts;
    const rows = metadata.fullLoad ? inserts + updates : inserts + updates + deletes;
    const mode: OneRosterFileMode = rows === 0 ? 'absent' : metadata.fullLoad ? 'bulk' : 'delta';
    return { spec: ONEROSTER_FILES[metadata.dataset.name]!, metadata, changes, mode };
  });
  const modes = new Map(dataFiles.map((file) => [file.spec.file, file.mode]));
  const manifest: string[][] = [
    ['manifest.version', '1.0'],
    ['oneroster.version', '1.2'],
    ...ONEROSTER_MANIFEST_FILES.map((file) => [`file.${file}`, modes.get(file) ?? 'absent']),
    ['source.systemName', options.systemName ?? 'Keystage'],
    ['source.systemCode', options.systemCode ?? first.school.urn],
  ];
  return [
    {
      name: 'manifest.csv',
      contentType: CSV_CONTENT_TYPE,
      content: writeCsv(['propertyName', 'value'], toAsync(manifest), { formulaGuard: false }),
    },
    ...dataFiles
      .filter((file) => file.mode !== 'absent')
      .map((file) => ({
        name: `${file.spec.file}.csv`,
        contentType: CSV_CONTENT_TYPE,
        content: writeCsv(file.spec.header, oneRosterRecords(file), {
          formulaGuard,
          noCarriageReturns: true,
        }),
      })),
  ];
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

async function* oneRosterRecords({ spec, metadata, changes, mode }: PlannedFile): AsyncGenerator<Value[]> {
  const checker = new ChangeChecker(metadata);
  const bulk = mode === 'bulk';
  for await (const raw of changes) {
    const change = checker.check(raw);
    if (change.op === 'delete') {
      if (bulk) continue;
      yield spec.header.map((name) =>
        name === 'sourcedId'
          ? (change.key.sourcedId as Value)
          : name === 'status'
            ? 'tobedeleted'
            : name === 'dateLastModified'
              ? metadata.createdAt
              : null,
      );
      continue;
    }
    const row = change.row!;
    yield spec.header.map((name) => {
      if (KEYSTAGE_FIELDS.has(name)) {
        if (bulk) return null;
        return name === 'status' ? 'active' : metadata.createdAt;
      }
      return Object.hasOwn(row, name) ? (row[name] as Value) : null;
    });
  }
  checker.finish();
}
