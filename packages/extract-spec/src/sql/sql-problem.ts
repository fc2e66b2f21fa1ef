/** Stable codes of SQL validation problems (the API and the agent report them as they are). */
export const SQL_PROBLEM_CODES = [
  'sql.empty',
  'sql.parse_error',
  'sql.multiple_statements',
  'sql.not_read_only',
  'sql.select_into',
  'sql.locking_clause',
  'sql.forbidden_function',
  'sql.procedure_call',
  'sql.linked_server',
  'sql.variable',
  'sql.positional_parameter',
  'sql.executable_comment',
  'sql.ambiguous_syntax',
] as const;
export type SqlProblemCode = (typeof SQL_PROBLEM_CODES)[number];

/** One reason to reject a statement; line and column are 1-based, inside the SQL text. */
export interface SqlProblem {
  readonly code: SqlProblemCode;
  readonly message: string;
  readonly line: number;
  readonly column: number;
}

/** Converts offsets of one text to 1-based line/column (columns count UTF-16 code units, like the parser). */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
    }
  }

  position(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (this.starts[lo] ?? 0) + 1 };
  }
}
