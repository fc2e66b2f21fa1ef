/**
 * A versioned mapping from MIS tables and columns to the permission groups that can read them,
 * kept as data (`permissions/<id>.json`), not code, so it can be corrected and versioned without
 * touching the logic. Semantics: a column needs one group of its table's `groups` (or of its
 * own `groups`, which replace the table's); an ID field (`"id": true`) additionally needs one
 * group of `idFields.groups`. So a requirement is a list of clauses, each "any one of these".
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { TableCatalogue } from '../sql/lineage.js';

const GroupName = z.string().min(1);

const ColumnEntry = z.union([
  z.string().min(1),
  z.strictObject({
    name: z.string().min(1),
    groups: z.array(GroupName).min(1).optional(),
    id: z.boolean().optional(),
    reason: z.string().optional(),
  }),
]);

export const PermissionMappingFile = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]+$/),
  version: z.number().int().positive(),
  description: z.string(),
  /** The schema the tables live in (`sims`); unqualified table names are taken to be in it. */
  schema: z.string().min(1),
  /** Every group, narrowest first: the order breaks ties between equally small sets. */
  groups: z.array(z.strictObject({ name: GroupName, description: z.string() })).min(1),
  idFields: z.strictObject({ groups: z.array(GroupName).min(1), reason: z.string() }),
  tables: z.record(
    z.string().min(1),
    z.strictObject({
      area: z.string(),
      groups: z.array(GroupName).min(1),
      columns: z.array(ColumnEntry).min(1),
    }),
  ),
});
export type PermissionMappingFile = z.infer<typeof PermissionMappingFile>;

export interface ColumnRule {
  /** Each clause is satisfied by any one of its groups; all clauses must be satisfied. */
  readonly clauses: readonly (readonly string[])[];
  readonly reasons: readonly string[];
}

export interface PermissionMapping {
  readonly id: string;
  readonly version: number;
  readonly schema: string;
  /** Group names, narrowest first. */
  readonly groups: readonly string[];
  readonly groupDescriptions: Readonly<Record<string, string>>;
  /** Bare table name → column name → rule. */
  readonly tables: ReadonlyMap<string, MappedTable>;
}

export interface MappedTable {
  readonly area: string;
  /** The table's default clause: any one of these groups. */
  readonly groups: readonly string[];
  readonly columns: ReadonlyMap<string, ColumnRule>;
}

export class PermissionMappingError extends Error {
  readonly code = 'permissions.invalid_mapping';
  constructor(
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(details.length > 0 ? `${message}: ${details.join('; ')}` : message);
    this.name = 'PermissionMappingError';
  }
}

/** Validates a mapping document (parsed JSON) and builds the lookup structure. */
export function parsePermissionMapping(data: unknown): PermissionMapping {
  const parsed = PermissionMappingFile.safeParse(data);
  if (!parsed.success) {
    throw new PermissionMappingError(
      'invalid permission mapping',
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const file = parsed.data;
  const known = new Set(file.groups.map((g) => g.name));
  const errors: string[] = [];
  const checkGroups = (where: string, groups: readonly string[]): void => {
    for (const g of groups) if (!known.has(g)) errors.push(`${where}: unknown group "${g}"`);
  };
  checkGroups('idFields', file.idFields.groups);
  const tables = new Map<string, MappedTable>();
  for (const [name, table] of Object.entries(file.tables)) {
    checkGroups(`tables.${name}`, table.groups);
    const columns = new Map<string, ColumnRule>();
    for (const entry of table.columns) {
      const col = typeof entry === 'string' ? { name: entry } : entry;
      const key = col.name.toLowerCase();
      if (columns.has(key)) errors.push(`tables.${name}: column ${col.name} listed twice`);
      if ('groups' in col && col.groups) checkGroups(`tables.${name}.${col.name}`, col.groups);
      const clauses: string[][] = [[...(('groups' in col && col.groups) || table.groups)]];
      const reasons: string[] = [];
      if ('reason' in col && col.reason) reasons.push(col.reason);
      if ('id' in col && col.id) {
        clauses.push([...file.idFields.groups]);
        reasons.push(file.idFields.reason);
      }
      columns.set(key, { clauses, reasons });
    }
    tables.set(name.toLowerCase(), { area: table.area, groups: table.groups, columns });
  }
  if (errors.length > 0) throw new PermissionMappingError('invalid permission mapping', errors);
  return {
    id: file.id,
    version: file.version,
    schema: file.schema.toLowerCase(),
    groups: file.groups.map((g) => g.name),
    groupDescriptions: Object.fromEntries(file.groups.map((g) => [g.name, g.description])),
    tables,
  };
}

/** The mapping files shipped with this package. */
export const PERMISSION_MAPPINGS = ['sims-v1'] as const;

/** Loads a mapping shipped in the package's `permissions/` folder (read at run time, not bundled). */
export function loadPermissionMapping(id: string = 'sims-v1'): PermissionMapping {
  if (!/^[a-z0-9-]+$/.test(id)) throw new PermissionMappingError(`bad mapping id ${JSON.stringify(id)}`);
  const url = new URL(`../../permissions/${id}.json`, import.meta.url);
  let text: string;
  try {
    text = readFileSync(url, 'utf8');
  } catch (err) {
    throw new PermissionMappingError(`no permission mapping ${id}`, [(err as Error).message]);
  }
  return parsePermissionMapping(JSON.parse(text));
}

/** The tables and columns a mapping knows, as a lineage catalogue (`schema.table` keys). */
export function catalogueFromMapping(mapping: PermissionMapping): TableCatalogue {
  const out: Record<string, string[]> = {};
  for (const [name, table] of mapping.tables) out[`${mapping.schema}.${name}`] = [...table.columns.keys()];
  return out;
}

/** The mapping's entry for a lineage table name, if the name is in the mapping's schema (or unqualified). */
export function mappedTable(mapping: PermissionMapping, table: string): MappedTable | undefined {
  const parts = table.toLowerCase().split('.');
  // db.schema.table and server.db.schema.table are another database's tables.
  if (parts.length > 2) return undefined;
  const name = parts.pop() ?? '';
  const schema = parts.pop();
  if (schema !== undefined && schema !== mapping.schema) return undefined;
  return mapping.tables.get(name);
}
