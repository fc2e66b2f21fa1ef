import { describe, expect, it } from 'vitest';
import { SQL_DIALECTS, type SqlDialect } from '../dialects.js';
import { validateSql } from './sql-validator.js';

/** `code@line:column` of every problem, for compact assertions. */
function problemsOf(sql: string, dialect: SqlDialect, allowProcedures?: string[]): string[] {
  const r = validateSql(sql, dialect, allowProcedures ? { allowProcedures } : {});
  return r.ok ? [] : r.problems.map((p) => `${p.code}@${p.line}:${p.column}`);
}

type Case = readonly [sql: string, expected: readonly string[]];

/** Every rejection names its reason and position; `expected` must all be among the problems. */
function rejects(dialect: SqlDialect, cases: readonly Case[]): void {
  it.each(cases.map(([sql, expected]) => ({ sql, expected })))('rejects $sql', ({ sql, expected }) => {
    const got = problemsOf(sql, dialect);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(expect.arrayContaining([...expected]));
  });
}

function accepts(dialect: SqlDialect, cases: readonly string[]): void {
  it.each(cases)('accepts %s', (sql) => {
    const r = validateSql(sql, dialect);
    expect(r.ok ? [] : r.problems).toEqual([]);
    expect(r.ok && r.statementKind).toBe('select');
  });
}

// Statements every dialect must reject the same way (positions are 1-based, in the SQL).
const COMMON_REJECTS: readonly Case[] = [
  // Multiple statements, also hidden after comments.
  ['SELECT 1 /* ; */ ; DROP TABLE x', ['sql.multiple_statements@1:20']],
  ['SELECT 1; -- harmless?\nDROP TABLE x', ['sql.multiple_statements@2:1']],
  ['SELECT a FROM t /* multi\nline */; DELETE FROM t', ['sql.multiple_statements@2:10']],
  ['SELECT 1; SELECT 2', ['sql.multiple_statements@1:11']],
  // Not read-only.
  ['INSERT INTO t VALUES (1)', ['sql.not_read_only@1:1']],
  ['UPDATE t SET a = 1', ['sql.not_read_only@1:1']],
  ['DELETE FROM t', ['sql.not_read_only@1:1']],
  ['DROP TABLE t', ['sql.not_read_only@1:1']],
  ['CREATE TABLE t (a int)', ['sql.not_read_only@1:1']],
  ['TRUNCATE TABLE t', ['sql.not_read_only@1:1']],
  ['PRAGMA writable_schema = 1', ['sql.not_read_only@1:1']],
  ['SET ROLE admin', ['sql.not_read_only@1:1']],
  ["ATTACH DATABASE '/tmp/x.db' AS x", ['sql.not_read_only@1:1']],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', ['sql.not_read_only@1:12']],
  ['WITH d AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM d', ['sql.not_read_only@1:12']],
  ['WITH d AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM d', ['sql.not_read_only@1:12']],
  // SELECT … INTO writes a table or a file.
  ['SELECT a INTO new_t FROM t', ['sql.select_into@1:10']],
  ["SELECT a FROM t INTO OUTFILE '/tmp/x'", ['sql.select_into@1:17']],
  // Locks.
  ['SELECT a FROM t FOR UPDATE', ['sql.locking_clause@1:17']],
  ['SELECT a FROM t FOR SHARE', ['sql.locking_clause@1:17']],
  ['SELECT a FROM t LOCK IN SHARE MODE', ['sql.locking_clause@1:17']],
  ['SELECT a FROM t WITH (UPDLOCK)', ['sql.locking_clause@1:23']],
  ['SELECT a FROM t WITH (XLOCK)', ['sql.locking_clause@1:23']],
  ['SELECT a FROM t WITH (TABLOCKX)', ['sql.locking_clause@1:23']],
  ['SELECT a FROM t WITH (HOLDLOCK)', ['sql.locking_clause@1:23']],
  // Side-effect functions, at any depth and in any casing or quoting.
  ["SELECT a FROM t WHERE a IN (SELECT pg_read_file('/etc/passwd'))", ['sql.forbidden_function@1:36']],
  ['SELECT a FROM t ORDER BY pg_sleep(10)', ['sql.forbidden_function@1:26']],
  ["SELECT pg_catalog.Pg_Read_File('/etc/passwd')", ['sql.forbidden_function@1:19']],
  ["SELECT a, (SELECT set_config('role', 'admin', false)) FROM t", ['sql.forbidden_function@1:19']],
  ["SELECT nextval('seq')", ['sql.forbidden_function@1:8']],
  ["SELECT lo_import('/etc/passwd')", ['sql.forbidden_function@1:8']],
  ["SELECT * FROM dblink('host=x', 'SELECT 1') AS r(a int)", ['sql.forbidden_function@1:15']],
  ['SELECT pg_terminate_backend(1)', ['sql.forbidden_function@1:8']],
  ["SELECT * FROM OPENQUERY(srv, 'SELECT 1')", ['sql.forbidden_function@1:15']],
  ["SELECT * FROM OPENROWSET('SQLNCLI', 'Server=x;', 'SELECT 1')", ['sql.forbidden_function@1:15']],
  ["SELECT a FROM t WAITFOR DELAY '00:00:05'", ['sql.forbidden_function@1:17']],
  ["SELECT LOAD_FILE('/etc/passwd')", ['sql.forbidden_function@1:8']],
  ['SELECT a FROM t WHERE SLEEP(5) = 0', ['sql.forbidden_function@1:23']],
  ["SELECT BENCHMARK(1000000, MD5('a'))", ['sql.forbidden_function@1:8']],
  ["SELECT GET_LOCK('a', 10)", ['sql.forbidden_function@1:8']],
  ["SELECT load_extension('evil.so')", ['sql.forbidden_function@1:8']],
  ["SELECT writefile('/tmp/x', 'y')", ['sql.forbidden_function@1:8']],
  // Procedures.
  ['EXEC sp_who', ['sql.procedure_call@1:1']],
  ["EXEC xp_cmdshell 'dir'", ['sql.procedure_call@1:1']],
  ['CALL refresh_everything()', ['sql.procedure_call@1:1']],
  // Parameters only as :name.
  ['SELECT a FROM t WHERE b = @p', ['sql.variable@1:27']],
  ['SELECT a FROM t WHERE b = ?', ['sql.positional_parameter@1:27']],
  // Unparseable: rejected with the parser's position, never accepted by default.
  ['SELECT a FROM t WHERE b =', ['sql.parse_error@1:26']],
  ['', ['sql.empty@1:1']],
  ['-- only a comment', ['sql.empty@1:1']],
];

const COMMON_ACCEPTS: readonly string[] = [
  'SELECT 1',
  'SELECT 1;',
  'SELECT 1 -- ; DROP TABLE x',
  'SELECT 1 /* ; DROP TABLE x */',
  "SELECT 'a;b -- c /* d' AS s",
  "SELECT 'pg_sleep(1); DROP TABLE x' AS harmless",
  'SELECT t.sleep, t.benchmark FROM t',
  "SELECT s.a, COUNT(*) AS n FROM sims.t s JOIN sims.u ON u.id = s.id WHERE s.b = 'x' GROUP BY s.a HAVING COUNT(*) > 1 ORDER BY n DESC",
  'WITH c AS (SELECT a FROM t) SELECT c.a FROM c WHERE c.a IN (SELECT b FROM u)',
  'SELECT a FROM t UNION ALL SELECT b FROM u',
  'SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t',
  'SELECT CASE WHEN a = 1 THEN 1 ELSE 0 END AS f, COALESCE(b, c) AS g FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)',
  'SELECT a FROM t WHERE d BETWEEN :from AND :to AND e IN (:codes)',
];

describe('validateSql: T-SQL (SIMS, CMIS)', () => {
  rejects('transactsql', [
    ...COMMON_REJECTS,
    // SQL Server reads '\' as a one-character string, so the rest is a second statement.
    ["SELECT '\\'; DROP TABLE x; --'", ['sql.multiple_statements@1:13']],
    ['SELECT 1 SELECT 2', ['sql.multiple_statements@1:10', 'sql.parse_error@1:16']],
    ['SELECT 1 DROP TABLE x', ['sql.not_read_only@1:10', 'sql.parse_error@1:14']],
    ["SELECT 1 EXEC xp_cmdshell 'dir'", ['sql.procedure_call@1:10', 'sql.parse_error@1:15']],
    ['SELECT a FROM t x DELETE FROM t', ['sql.not_read_only@1:19']],
    ['SELECT "PG_READ_FILE"(\'/etc/passwd\')', ['sql.forbidden_function@1:8']],
    ["SELECT [xp_cmdshell]('dir')", ['sql.forbidden_function@1:8']],
    ["SELECT a FROM OPENDATASOURCE('SQLNCLI','x').db.dbo.t", ['sql.forbidden_function@1:15']],
    ['SELECT a FROM t (NOLOCK) JOIN u WITH (ROWLOCK, XLOCK) ON 1 = 1', ['sql.locking_clause@1:48']],
    ['SELECT @@VERSION', ['sql.variable@1:8']],
    ['DECLARE @x int; SELECT 1', ['sql.not_read_only@1:1', 'sql.multiple_statements@1:17']],
    ['SELECT a FROM t WHERE b = $1', ['sql.positional_parameter@1:27']],
    ['SELECT NEXT VALUE FOR seq', ['sql.parse_error@1:23']],
    // A four-part name reads another server over the network.
    ['SELECT x.a FROM srv.db.dbo.t x', ['sql.linked_server@1:17']],
  ]);
  accepts('transactsql', [
    ...COMMON_ACCEPTS,
    'SELECT TOP 10 s.a FROM sims.stud_student s WITH (NOLOCK) ORDER BY s.a',
    "SELECT CAST(m.session_start AS date) AS d, CONCAT(a, '-', b) AS c, DATEADD(day, 1, :d) AS n FROM sims.t m",
    'SELECT [s].[a] FROM [sims].[stud_student] AS [s]',
    "SELECT 'a\\' AS backslash_is_a_plain_character",
    'SELECT 1 /*! ; not special in SQL Server */',
  ]);
});

describe('validateSql: PostgreSQL', () => {
  rejects('postgresql', [
    ...COMMON_REJECTS,
    ['SELECT a FROM t FOR NO KEY UPDATE', ['sql.locking_clause@1:17']],
    ['SELECT a FROM t FOR KEY SHARE', ['sql.locking_clause@1:17']],
    ['SELECT "PG_READ_FILE"(\'/etc/passwd\')', ['sql.forbidden_function@1:8']],
    ["SELECT pg_read_binary_file('/etc/passwd')", ['sql.forbidden_function@1:8']],
    ["SELECT * FROM pg_ls_dir('.')", ['sql.forbidden_function@1:15']],
    ["SELECT lo_export(1, '/tmp/x')", ['sql.forbidden_function@1:8']],
    ["SELECT setval('seq', 1)", ['sql.forbidden_function@1:8']],
    ["SELECT dblink_exec('host=x', 'DROP TABLE y')", ['sql.forbidden_function@1:8']],
    ["SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", ['sql.forbidden_function@1:8']],
    ['SELECT pg_advisory_lock(1)', ['sql.forbidden_function@1:8']],
    ['SELECT a FROM t WHERE b = $1', ['sql.positional_parameter@1:27']],
    // With standard_conforming_strings off the backslash escapes the quote: ambiguous.
    ["SELECT '\\'; DROP TABLE x; --'", ['sql.ambiguous_syntax@1:8', 'sql.multiple_statements@1:13']],
    ["SELECT 'a\\' AS x FROM t", ['sql.ambiguous_syntax@1:8']],
    ['SELECT 1 # ; DROP TABLE x', ['sql.multiple_statements@1:14']],
  ]);
  accepts('postgresql', [
    ...COMMON_ACCEPTS,
    "SELECT $$; DROP TABLE x;$$ AS dollar_quoted, $q$it's$q$ AS tagged",
    // (node-sql-parser 5.4 cannot alias an E'' string: a parser limitation, so none here)
    "SELECT E'it\\'s; DROP TABLE x'",
    'SELECT 1 /* nested /* comment */ ; DROP TABLE x */',
    'SELECT "s"."A" AS "camelCase" FROM "sims"."stud_student" AS s',
    'SELECT a::date, date(b) FROM sims.t',
  ]);
});

for (const dialect of ['mysql', 'mariadb'] as const) {
  describe(`validateSql: ${dialect}`, () => {
    rejects(dialect, [
      ...COMMON_REJECTS,
      // MySQL runs the text of /*! … */ comments.
      ['SELECT 1 /*! ; DROP TABLE x */', ['sql.executable_comment@1:10']],
      ['SELECT 1 /*!50000 , (SELECT SLEEP(5)) */', ['sql.executable_comment@1:10']],
      // With NO_BACKSLASH_ESCAPES the string ends at the backslash: ambiguous.
      ["SELECT '\\'; DROP TABLE x; --'", ['sql.ambiguous_syntax@1:8']],
      // "--x" is two minus signs to MySQL, a comment to other tools.
      ['SELECT 1 --1', ['sql.ambiguous_syntax@1:10']],
      ['SELECT a FROM t WHERE b = $1', ['sql.positional_parameter@1:27']],
      ['SELECT `sleep`(1)', ['sql.forbidden_function@1:8']],
    ]);
    accepts(dialect, [
      ...COMMON_ACCEPTS,
      'SELECT 1 # ; a MySQL comment',
      'SELECT `s`.`a` FROM `sims`.`stud_student` s',
      "SELECT 'it''s' AS doubled_quote",
    ]);
  });
}

describe('validateSql: SQLite (demo MIS)', () => {
  rejects('sqlite', [
    ...COMMON_REJECTS,
    // SQLite reads '\' literally: the DROP is a second statement.
    ["SELECT '\\'; DROP TABLE x; --'", ['sql.multiple_statements@1:13']],
    // The grammar takes # as a comment, SQLite does not.
    ['SELECT 1 # ; DROP TABLE x', ['sql.ambiguous_syntax@1:10', 'sql.multiple_statements@1:14']],
    ['SELECT "PG_READ_FILE"(\'/etc/passwd\')', ['sql.forbidden_function@1:8']],
    ["SELECT readfile('/etc/passwd')", ['sql.forbidden_function@1:8']],
    ['SELECT a FROM t WHERE b = $p', ['sql.variable@1:27']],
    ['SELECT a FROM t WHERE b = ?1', ['sql.positional_parameter@1:27']],
  ]);
  accepts('sqlite', [
    ...COMMON_ACCEPTS,
    "SELECT date(m.session_start) AS d, s.a || '-' || s.b AS c FROM sims.t m JOIN sims.u s ON s.id = m.id LIMIT 1",
    "SELECT 'a\\' AS backslash_is_a_plain_character",
    'SELECT `a`, "b" FROM sims.t',
  ]);
});

describe('validateSql: what comes back', () => {
  it('lists bind variables in order of first use, with positions and list context', () => {
    const r = validateSql(
      'SELECT a\nFROM t\nWHERE d BETWEEN :from AND :to AND m IN (:marks) AND e >= :from',
      'sqlite',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.parameters).toEqual(['from', 'to', 'marks']);
    expect(r.parameterUses).toEqual([
      { name: 'from', line: 3, column: 17, inList: false },
      { name: 'to', line: 3, column: 27, inList: false },
      { name: 'marks', line: 3, column: 41, inList: true },
      { name: 'from', line: 3, column: 58, inList: false },
    ]);
    expect(r.ast).toMatchObject({ type: 'select' });
  });

  it('never takes a bind variable from a string or comment', () => {
    const r = validateSql("SELECT ':not_a_param' AS a -- :nor_this\nFROM t WHERE b = :real", 'postgresql');
    expect(r.ok && r.parameters).toEqual(['real']);
  });

  it('lists every problem of a statement at once, in text order', () => {
    const r = validateSql(
      "SELECT pg_sleep(1), a INTO x FROM t WHERE b = @v ORDER BY lo_import('/x')",
      'postgresql',
    );
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems.map((p) => p.code)).toEqual([
      'sql.forbidden_function',
      'sql.select_into',
      'sql.variable',
      'sql.forbidden_function',
    ]);
  });

  it('gives messages that name the reason', () => {
    const r = validateSql('SELECT a FROM t WITH (UPDLOCK)', 'transactsql');
    expect(r.ok ? '' : r.problems[0]?.message).toMatch(/UPDLOCK.*lock/i);
    const p = validateSql('SELECT 1 FROM t WHERE', 'sqlite');
    expect(p.ok ? '' : p.problems[0]?.message).toMatch(/SQLite parser cannot read.*rejected/);
  });

  it('allows an allow-listed procedure, and only that one', () => {
    expect(problemsOf('CALL sims.pupil_report(:from)', 'postgresql', ['sims.pupil_report'])).toEqual([]);
    const ok = validateSql('CALL sims.pupil_report(:from)', 'mysql', { allowProcedures: ['pupil_report'] });
    expect(ok.ok && ok.statementKind).toBe('procedure');
    expect(ok.ok && ok.parameters).toEqual(['from']);
    expect(problemsOf('CALL sims.other_report(:from)', 'postgresql', ['sims.pupil_report'])).toEqual([
      'sql.procedure_call@1:1',
    ]);
    expect(problemsOf('EXEC sims.pupil_report', 'transactsql', ['sims.pupil_report'])).toEqual([]);
  });

  it('knows every dialect it claims', () => {
    for (const d of SQL_DIALECTS) expect(validateSql('SELECT 1', d).ok).toBe(true);
  });
});
