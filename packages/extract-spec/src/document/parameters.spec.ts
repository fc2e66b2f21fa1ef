import { describe, expect, it } from 'vitest';
import type { ExtractParameter } from './extract-document.schema.js';
import {
  bindParameters,
  ParameterBindingError,
  parameterBindNames,
  resolveParameters,
} from './parameters.js';

const PARAMS: ExtractParameter[] = [
  { name: 'as_of', type: 'date', description: 'd', required: true, default: 'today' },
  {
    name: 'window',
    type: 'date_window',
    description: 'w',
    required: true,
    default: { from: 'today-7', to: 'today' },
  },
  { name: 'year', type: 'academic_year', description: 'y', required: true, default: 'current' },
  {
    name: 'marks',
    type: 'string_list',
    description: 'm',
    required: true,
    default: ['N', 'O'],
    allowed: ['N', 'O', 'U'],
  },
  { name: 'limit', type: 'integer', description: 'l', required: false, min: 1, max: 100 },
  { name: 'leavers', type: 'boolean', description: 'b', required: true, default: false },
];

describe('parameters', () => {
  it('names the bind variables of each type', () => {
    expect(parameterBindNames({ name: 'w', type: 'date_window' })).toEqual(['w_from', 'w_to']);
    expect(parameterBindNames({ name: 'y', type: 'academic_year' })).toEqual(['y', 'y_start', 'y_end']);
    expect(parameterBindNames({ name: 'l', type: 'string_list' })).toEqual(['l']);
  });

  it('resolves defaults relative to the run date (Europe/London), school years from 1 September', () => {
    const r = resolveParameters(PARAMS, {}, { today: '2025-03-03' });
    expect(r).toEqual({
      ok: true,
      bindings: {
        as_of: '2025-03-03',
        window_from: '2025-02-24',
        window_to: '2025-03-03',
        year: '2024/25',
        year_start: '2024-09-01',
        year_end: '2025-08-31',
        marks: ['N', 'O'],
        leavers: 0,
      },
    });
    const autumn = resolveParameters(PARAMS, { year: 'current' }, { today: '2025-09-01' });
    expect(autumn.ok && autumn.bindings.year).toBe('2025/26');
  });

  it('takes given values and refuses wrong ones, naming each parameter', () => {
    const ok = resolveParameters(
      PARAMS,
      { as_of: '2024-02-29', marks: ['U'], limit: 5, leavers: true },
      { today: '2025-03-03' },
    );
    expect(ok.ok && ok.bindings).toMatchObject({ as_of: '2024-02-29', marks: ['U'], limit: 5, leavers: 1 });
    const bad = resolveParameters(
      PARAMS,
      {
        as_of: '2025-02-30',
        window: { from: '2025-03-10', to: '2025-03-01' },
        year: '2024/26',
        marks: ['X'],
        limit: 0,
        leavers: 'yes',
        nope: 1,
      },
      { today: '2025-03-03' },
    );
    expect(bad.ok ? [] : bad.problems.map((p) => p.parameter)).toEqual([
      'nope',
      'as_of',
      'window',
      'year',
      'marks',
      'limit',
      'leavers',
    ]);
    const missing = resolveParameters(
      [{ name: 'd', type: 'date', description: 'd', required: true }],
      {},
      { today: '2025-03-03' },
    );
    expect(missing).toEqual({ ok: false, problems: [{ parameter: 'd', message: 'a value is required' }] });
  });

  it('rewrites :name placeholders for each driver, expanding lists, never inside strings or comments', () => {
    const sql = "SELECT ':as_of' AS s -- :as_of\nFROM t WHERE d = :as_of AND m IN (:marks) AND e <= :as_of";
    const bindings = { as_of: '2025-03-03', marks: ['N', 'O'] };
    expect(bindParameters(sql, 'sqlite', bindings, 'colon')).toEqual({
      sql: "SELECT ':as_of' AS s -- :as_of\nFROM t WHERE d = :as_of AND m IN (:marks__1, :marks__2) AND e <= :as_of",
      named: { as_of: '2025-03-03', marks__1: 'N', marks__2: 'O' },
      positional: [],
    });
    expect(bindParameters(sql, 'postgresql', bindings, 'dollar')).toEqual({
      sql: "SELECT ':as_of' AS s -- :as_of\nFROM t WHERE d = $1 AND m IN ($2, $3) AND e <= $1",
      named: {},
      positional: ['2025-03-03', 'N', 'O'],
    });
    expect(bindParameters(sql, 'mysql', bindings, 'question').positional).toEqual([
      '2025-03-03',
      'N',
      'O',
      '2025-03-03',
    ]);
    expect(bindParameters(sql, 'transactsql', bindings, 'at').sql).toContain('m IN (@marks__1, @marks__2)');
    expect(() => bindParameters('SELECT :missing', 'sqlite', {}, 'colon')).toThrow(ParameterBindingError);
  });
});
