/**
 * What an extract's SQL may not call or say, in any dialect. One list for every dialect: a
 * name forbidden in one engine has no business in another, and a partner's SIMS extract is
 * validated the same way as their PostgreSQL one. Names compare case-insensitively on the last
 * part of a qualified name (`pg_catalog."PG_READ_FILE"` is `pg_read_file`).
 */

/** Functions with side effects, server file or network access, sleeps and locks. */
export const FORBIDDEN_FUNCTIONS: ReadonlySet<string> = new Set([
  // PostgreSQL: server files and programs, large objects, sequences, settings, sessions, sleeps
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_logdir_ls',
  'lo_import',
  'lo_export',
  'lo_create',
  'lo_creat',
  'lo_unlink',
  'lo_put',
  'lo_get',
  'lo_open',
  'lo_from_bytea',
  'nextval',
  'setval',
  'set_config',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_switch_wal',
  'pg_promote',
  'pg_create_restore_point',
  'pg_notify',
  'pg_logical_emit_message',
  'pg_import_system_collations',
  'query_to_xml',
  'query_to_xml_and_xmlschema',
  'query_to_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'database_to_xml',
  'schema_to_xml',
  'table_to_xml',
  // SQL Server: remote and ad-hoc data sources, server files
  'openrowset',
  'opendatasource',
  'openquery',
  'openxml',
  'fn_get_audit_file',
  'fn_xe_file_target_read_file',
  'fn_trace_gettable',
  'fn_dblog',
  'fn_dump_dblog',
  // MySQL / MariaDB
  'load_file',
  'sleep',
  'benchmark',
  'get_lock',
  'release_lock',
  'release_all_locks',
  'is_used_lock',
  'sys_exec',
  'sys_eval',
  'master_pos_wait',
  'source_pos_wait',
  // SQLite (shell and extension functions)
  'load_extension',
  'readfile',
  'writefile',
  'edit',
  'fts3_tokenizer',
]);

/** Name prefixes that are forbidden whatever follows (families of functions and procedures). */
export const FORBIDDEN_FUNCTION_PREFIXES: readonly string[] = [
  'dblink', // dblink, dblink_exec, dblink_connect …
  'pg_advisory_', // session and transaction advisory locks
  'pg_try_advisory_',
  'pg_read_', // pg_read_file, pg_read_binary_file and future relatives
  'pg_ls_', // pg_ls_dir, pg_ls_logdir, pg_ls_waldir …
  'xp_', // SQL Server extended procedures: xp_cmdshell, xp_dirtree …
  'sp_', // SQL Server system procedures: sp_executesql, sp_oacreate …
];

/** Statement words that are never read-only; `WAITFOR` is reported as a forbidden function. */
export const STATEMENT_KEYWORDS: ReadonlySet<string> = new Set([
  'insert',
  'update',
  'delete',
  'merge',
  'replace',
  'upsert',
  'create',
  'drop',
  'alter',
  'truncate',
  'rename',
  'grant',
  'revoke',
  'deny',
  'declare',
  'set',
  'use',
  'attach',
  'detach',
  'pragma',
  'vacuum',
  'reindex',
  'analyze',
  'copy',
  'backup',
  'restore',
  'shutdown',
  'kill',
  'load',
  'handler',
  'lock',
  'unlock',
  'begin',
  'commit',
  'rollback',
  'savepoint',
  'do',
  'listen',
  'notify',
  'prepare',
  'deallocate',
  'refresh',
  'cluster',
  'checkpoint',
  'dbcc',
  'bulk',
  'open',
  'fetch',
  'close',
  'print',
  'raiserror',
  'throw',
  'reconfigure',
  'discard',
  'reset',
  'security',
  'comment',
  'explain',
  'show',
  'describe',
]);

export const PROCEDURE_KEYWORDS: ReadonlySet<string> = new Set(['exec', 'execute', 'call']);

/**
 * SQL Server table hints that take or hold locks. Read-only hints (NOLOCK, READUNCOMMITTED,
 * READCOMMITTED, READPAST, NOEXPAND, INDEX, FORCESEEK, FORCESCAN) stay allowed: integrators
 * use NOLOCK so as not to block SIMS users.
 */
export const LOCKING_HINTS: ReadonlySet<string> = new Set([
  'updlock',
  'xlock',
  'tablock',
  'tablockx',
  'holdlock',
  'paglock',
  'rowlock',
  'serializable',
  'repeatableread',
  'readcommittedlock',
]);

export function isForbiddenFunction(name: string): boolean {
  const n = name.toLowerCase();
  return FORBIDDEN_FUNCTIONS.has(n) || FORBIDDEN_FUNCTION_PREFIXES.some((p) => n.startsWith(p));
}
