import { type ColumnDef, type PortableType, TABLES, type TableDef } from './tables.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';
export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres', 'mysql'];

function sized(type: PortableType): { base: 'varchar' | 'char'; length: number } | null {
  const m = /^(varchar|char)\((\d+)\)$/.exec(type);
  return m ? { base: m[1] as 'varchar' | 'char', length: Number(m[2]) } : null;
}

/** The column type a dialect uses for a portable type. */
export function sqlType(dialect: Dialect, type: PortableType): string {
  const s = sized(type);
  if (s) {
    // SQLite: VARCHAR/CHAR give TEXT affinity and do not pad; PostgreSQL CHAR(n) pads,
    // which is harmless because char(n) columns only ever hold values of exactly n characters.
    return `${s.base.toUpperCase()}(${s.length})`;
  }
  switch (type) {
    case 'int':
      return dialect === 'mysql' ? 'INT' : 'INTEGER';
    case 'bigint':
      return dialect === 'sqlite' ? 'INTEGER' : 'BIGINT';
    case 'flag':
      return dialect === 'sqlite' ? 'INTEGER' : dialect === 'postgres' ? 'SMALLINT' : 'TINYINT';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return dialect === 'postgres' ? 'TIMESTAMP(0) WITHOUT TIME ZONE' : 'DATETIME';
    case 'uuid':
      return dialect === 'postgres' ? 'UUID' : dialect === 'mysql' ? 'CHAR(36)' : 'TEXT';
    case 'text':
      return 'TEXT';
    default:
      throw new Error(`no SQL type for ${type}`);
  }
}

export function quoteIdent(dialect: Dialect, name: string): string {
  return dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
}

function columnSql(dialect: Dialect, table: TableDef, col: ColumnDef): string {
  const type = sqlType(dialect, col.type);
  const isPk = col.name === table.primaryKey;
  if (isPk) {
    // INTEGER PRIMARY KEY makes the column SQLite's rowid: smaller file, faster inserts.
    return `${col.name} ${type} NOT NULL PRIMARY KEY`;
  }
  return `${col.name} ${type}${col.nullable ? '' : ' NOT NULL'}`;
}

/** CREATE TABLE for one table; `qualifier` is the schema (PostgreSQL) or database (MariaDB) name. */
export function createTableSql(dialect: Dialect, table: TableDef, qualifier?: string): string {
  const name = qualifier ? `${qualifier}.${table.name}` : table.name;
  const cols = table.columns.map((col) => `  ${columnSql(dialect, table, col)}`).join(',\n');
  const suffix = dialect === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin' : '';
  return `CREATE TABLE ${name} (\n${cols}\n)${suffix}`;
}

export function indexName(table: TableDef, columns: readonly string[]): string {
  return `${table.name}_${columns.join('_')}_idx`;
}

/** CREATE INDEX statements for one table (run after the bulk load). */
export function createIndexSql(dialect: Dialect, table: TableDef, qualifier?: string): string[] {
  return table.indexes.map((cols) => {
    const idx = indexName(table, cols);
    if (dialect === 'postgres') {
      return `CREATE INDEX ${idx} ON ${qualifier ? `${qualifier}.` : ''}${table.name} (${cols.join(', ')})`;
    }
    if (dialect === 'sqlite') {
      return `CREATE INDEX ${qualifier ? `${qualifier}.` : ''}${idx} ON ${table.name} (${cols.join(', ')})`;
    }
    return `CREATE INDEX ${idx} ON ${qualifier ? `${qualifier}.` : ''}${table.name} (${cols.join(', ')})`;
  });
}

/** The whole schema as a script, for reading or for tools (`demo-mis ddl`). */
export function schemaSql(dialect: Dialect, qualifier?: string): string {
  const parts: string[] = [];
  for (const t of TABLES) {
    parts.push(`${createTableSql(dialect, t, qualifier)};`);
    for (const idx of createIndexSql(dialect, t, qualifier)) parts.push(`${idx};`);
  }
  return `${parts.join('\n\n')}\n`;
}
