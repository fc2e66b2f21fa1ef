/**
 * SQL dialects the validator understands and the MIS kinds of the control plane that use them.
 * The dialect names are node-sql-parser's `database` option values.
 */

export const SQL_DIALECTS = ['transactsql', 'postgresql', 'mysql', 'mariadb', 'sqlite'] as const;
export type SqlDialect = (typeof SQL_DIALECTS)[number];

/** The control plane's `MisType` values. */
export const MIS_KINDS = ['SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL'] as const;
export type MisKind = (typeof MIS_KINDS)[number];

/** Which SQL dialect an extract for a MIS kind is written in. */
export const MIS_DIALECT: Readonly<Record<MisKind, SqlDialect>> = {
  SIMS: 'transactsql',
  CMIS: 'transactsql',
  DEMO_SQLITE: 'sqlite',
  POSTGRES: 'postgresql',
  MYSQL: 'mysql',
};

export function isSqlDialect(value: unknown): value is SqlDialect {
  return typeof value === 'string' && (SQL_DIALECTS as readonly string[]).includes(value);
}
