/**
 * The extract definition document a partner keeps in git and uploads (YAML or JSON). The
 * schema constant and its type share a name (CONVENTIONS: trigger.dev's style). Checks that
 * need more than one field (duplicate columns, keys, parameters against SQL, the SQL itself)
 * live in parse-extract-document.ts so that every problem is reported at once.
 */
import { z } from 'zod';
import { MIS_KINDS } from '../dialects.js';

/** The document format and its version; a breaking change gets a new value. */
export const EXTRACT_DOCUMENT_FORMAT = 'extract/v1';

export const PARAMETER_TYPES = [
  'date',
  'date_window',
  'academic_year',
  'string',
  'string_list',
  'integer',
  'boolean',
] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];

export const COLUMN_TYPES = ['string', 'integer', 'decimal', 'boolean', 'date', 'timestamp'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/**
 * What kind of personal data a column holds; schools agree to categories as well as columns.
 * - identity: names, date of birth, gender, UPN/ULN, MIS and admission numbers
 * - contact: addresses, telephone numbers, emails, relationships to a pupil
 * - special_category: UK GDPR Article 9 data: ethnicity, religion, health and medical, SEN
 * - sensitive: not Article 9 but handled as such by the DfE: FSM, pupil premium, looked-after,
 *   service child, first language/EAL, dietary needs
 * - education: enrolment, year, registration and teaching groups, classes, timetable
 * - attendance, behaviour (incl. achievements and exclusions), assessment
 * - employment: staff records (roles, employee numbers, work contact)
 * - none: no personal data (codes, dates of terms, school identifiers)
 */
export const PERSONAL_DATA_CATEGORIES = [
  'identity',
  'contact',
  'special_category',
  'sensitive',
  'education',
  'attendance',
  'behaviour',
  'assessment',
  'employment',
  'none',
] as const;
export type PersonalDataCategory = (typeof PERSONAL_DATA_CATEGORIES)[number];

export const DELIVERY_FORMATS = ['ndjson', 'json', 'csv', 'oneroster-csv'] as const;
export const DELIVERY_TARGETS = ['webhook', 'pull', 'file'] as const;
export const DELTA_MODES = ['none', 'changes', 'changes_and_deletions'] as const;
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** "unknown X "y": expected one of …"; a missing value falls through to the parse's "required". */
const oneOf = (what: string, values: readonly string[]) => (issue: { input?: unknown }) =>
  issue.input === undefined
    ? undefined
    : `unknown ${what} ${JSON.stringify(issue.input)}: expected one of ${values.join(', ')}`;

const Identifier = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'use lower-case letters, digits and "_", starting with a letter');

/** A calendar date or one relative to the day of the run in Europe/London: `today`, `today-7`, `today+14`. */
export const DateExpression = z
  .string()
  .regex(/^(today([+-]\d{1,4})?|\d{4}-\d{2}-\d{2})$/, 'expected YYYY-MM-DD, "today", "today-N" or "today+N"')
  .refine((s) => s.startsWith('today') || isCalendarDate(s), 'not a calendar date');

/** `2024/25` (the second year must follow the first) or `current`. */
export const AcademicYearExpression = z
  .string()
  .regex(/^(current|\d{4}\/\d{2})$/, 'expected an academic year like "2024/25" or "current"')
  .refine(
    (s) => s === 'current' || (Number(s.slice(0, 4)) + 1) % 100 === Number(s.slice(5, 7)),
    'the second year must follow the first (e.g. 2024/25)',
  );

function isCalendarDate(s: string): boolean {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

const parameterBase = {
  name: Identifier,
  description: z.string().min(1),
  /** A required parameter without a default must be given a value for every run. */
  required: z.boolean().default(true),
};

export const ExtractParameter = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ ...parameterBase, type: z.literal('date'), default: DateExpression.optional() }),
    z.strictObject({
      ...parameterBase,
      type: z.literal('date_window'),
      default: z.strictObject({ from: DateExpression, to: DateExpression }).optional(),
    }),
    z.strictObject({
      ...parameterBase,
      type: z.literal('academic_year'),
      default: AcademicYearExpression.optional(),
    }),
    z.strictObject({
      ...parameterBase,
      type: z.literal('string'),
      default: z.string().optional(),
      allowed: z.array(z.string()).min(1).optional(),
    }),
    z.strictObject({
      ...parameterBase,
      type: z.literal('string_list'),
      default: z.array(z.string()).min(1).optional(),
      allowed: z.array(z.string()).min(1).optional(),
    }),
    z.strictObject({
      ...parameterBase,
      type: z.literal('integer'),
      default: z.number().int().optional(),
      min: z.number().int().optional(),
      max: z.number().int().optional(),
    }),
    z.strictObject({ ...parameterBase, type: z.literal('boolean'), default: z.boolean().optional() }),
  ],
  {
    // The union's issue carries the whole parameter; name its type.
    error: (issue) => {
      const input = issue.input as { type?: unknown } | undefined;
      return input?.type === undefined
        ? `a parameter needs a type: one of ${PARAMETER_TYPES.join(', ')}`
        : oneOf('parameter type', PARAMETER_TYPES)({ input: input.type });
    },
  },
);
export type ExtractParameter = z.infer<typeof ExtractParameter>;

export const OutputColumn = z.strictObject({
  /** As the SQL returns it (OneRoster's camelCase names are allowed). */
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and "_", not starting with a digit'),
  type: z.enum(COLUMN_TYPES, { error: oneOf('column type', COLUMN_TYPES) }),
  nullable: z.boolean().default(false),
  description: z.string().min(1),
  category: z.enum(PERSONAL_DATA_CATEGORIES, {
    error: oneOf('personal-data category', PERSONAL_DATA_CATEGORIES),
  }),
});
export type OutputColumn = z.infer<typeof OutputColumn>;

const MisKind = z.enum(MIS_KINDS, { error: oneOf('MIS kind', MIS_KINDS) });

export const Dataset = z.strictObject({
  name: Identifier,
  description: z.string().min(1),
  /** One read-only statement in the dialect of the document's `mis`; parameters as `:name`. */
  sql: z.string().min(1),
  columns: z.array(OutputColumn).min(1),
  /** The columns that identify a row, for delta (changes and deletions between runs). */
  key: z.array(z.string().min(1)).min(1).optional(),
  delta: z.enum(DELTA_MODES, { error: oneOf('delta mode', DELTA_MODES) }).default('changes'),
  /**
   * The same dataset for other MIS kinds (e.g. the T-SQL of a SIMS school), each validated in
   * its own dialect and held to the same columns and parameters.
   */
  variants: z.partialRecord(MisKind, z.string().min(1)).optional(),
});
export type Dataset = z.infer<typeof Dataset>;

const Time = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24-hour)');

/**
 * When runs happen. Only the shape is checked here; @keystage/schedule (parseSchedule) owns the
 * meaning. Times are local to Europe/London; `to` before `from` crosses midnight (the window opens
 * on the listed day and closes the next), so only `from` equal to `to` is refused here.
 */
export const Schedule = z.strictObject({
  windows: z
    .array(
      z
        .strictObject({
          days: z.array(z.enum(WEEKDAYS, { error: oneOf('day', WEEKDAYS) })).min(1),
          from: Time,
          to: Time,
        })
        .refine((w) => w.from !== w.to, {
          message:
            'from and to are the same time: a window needs a length (leave windows out for the whole day)',
          path: ['to'],
        })
        .refine((w) => new Set(w.days).size === w.days.length, {
          message: 'a day is listed twice',
          path: ['days'],
        }),
    )
    .min(1)
    .optional(),
  /** ISO 8601 duration between runs: PT15M, PT1H, P1D, P7D … */
  frequency: z
    .string()
    .regex(
      /^P(?=\d|T\d)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?)?$/,
      'expected an ISO 8601 duration such as PT15M or P1D',
    )
    .optional(),
  termTimeOnly: z.boolean().optional(),
  /** Run as soon as possible after approval or publication, then on the schedule. */
  asap: z.boolean().optional(),
  timezone: z.literal('Europe/London').optional(),
});
export type Schedule = z.infer<typeof Schedule>;

export const Delivery = z.strictObject({
  format: z.enum(DELIVERY_FORMATS, { error: oneOf('delivery format', DELIVERY_FORMATS) }),
  target: z.enum(DELIVERY_TARGETS, { error: oneOf('delivery target', DELIVERY_TARGETS) }),
});
export type Delivery = z.infer<typeof Delivery>;

export const ExtractDocument = z.strictObject({
  keystage: z.literal(EXTRACT_DOCUMENT_FORMAT, {
    error: `expected keystage: ${EXTRACT_DOCUMENT_FORMAT} (the document format)`,
  }),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and "-"'),
  title: z.string().min(1).optional(),
  description: z.string().min(1),
  mis: MisKind,
  parameters: z.array(ExtractParameter).default([]),
  datasets: z.array(Dataset).min(1),
  delivery: Delivery,
  schedule: Schedule.optional(),
});
export type ExtractDocument = z.infer<typeof ExtractDocument>;
