import { describe, expect, it } from 'vitest';
import { bindParameters, canonicalValue, findPlaceholders } from './params.js';
import type { QueryParam } from './types.js';

const p = (name: string, type: QueryParam['type'], value: unknown): QueryParam => ({ name, type, value });

describe('named parameters → PostgreSQL', () => {
  it('numbers distinct names by first appearance, casts typed values and repeats no value', () => {
    const b = bindParameters('postgres', 'SELECT * FROM t WHERE a = :a AND b = :b AND c >= :d AND a2 = :a', [
      p('a', 'integer', 1),
      p('b', 'string', 'x'),
      p('d', 'date', '2024-02-29'),
    ]);
    expect(b.sql).toBe('SELECT * FROM t WHERE a = $1::int8 AND b = $2 AND c >= $3::date AND a2 = $1::int8');
    expect(b.values).toEqual([1, 'x', '2024-02-29']);
  });

  it('leaves literals, quoted identifiers, dollar quotes, comments, casts and slices alone', () => {
    const sql = [
      "SELECT ':a', E'it\\'s :a', $$ :a $$, $body$ :a $body$, \"col:a\", x::date, arr[lo:hi], :real",
      '-- :a',
      '/* outer /* :a */ still a comment :a */ FROM t',
    ].join('\n');
    const b = bindParameters('postgres', sql, [p('real', 'string', 'v')]);
    expect(b.sql).toBe(sql.replace(':real', '$1'));
    expect(findPlaceholders('postgres', sql).map((x) => x.name)).toEqual(['real']);
  });

  it('refuses PostgreSQL positional placeholders', () => {
    expect(() => bindParameters('postgres', 'SELECT $1', [])).toThrow(/:name/);
  });
});

describe('named parameters → MariaDB/MySQL', () => {
  it('writes ? once per occurrence with its value', () => {
    const b = bindParameters('mysql', 'SELECT :a, :b, :a', [p('a', 'integer', 1), p('b', 'boolean', false)]);
    expect(b.sql).toBe('SELECT ?, ?, ?');
    expect(b.values).toEqual([1, 0, 1]);
  });

  it('knows backslash escapes, double-quoted strings, backticks and # comments', () => {
    const sql = "SELECT 'it\\'s :a', \"dq :a\", `bt:a`, :x # :a\n-- :a\nFROM t";
    expect(findPlaceholders('mysql', sql).map((x) => x.name)).toEqual(['x']);
    // `--` without a space is not a comment in MySQL.
    expect(findPlaceholders('mysql', 'SELECT 1--:x').map((x) => x.name)).toEqual(['x']);
  });

  it('follows NO_BACKSLASH_ESCAPES', () => {
    const sql = "SELECT 'C:\\' AS path, :b AS b";
    expect(findPlaceholders('mysql', sql, { backslashEscapes: false }).map((x) => x.name)).toEqual(['b']);
    expect(findPlaceholders('mysql', sql, { backslashEscapes: true })).toEqual([]);
  });

  it('refuses ? in the code', () => {
    expect(() => bindParameters('mysql', 'SELECT ?', [])).toThrow(/positional placeholder/);
    expect(bindParameters('mysql', "SELECT '?'", []).sql).toBe("SELECT '?'");
  });
});

describe('named parameters → SQLite', () => {
  it('writes ?, binds big integers as BigInt, skips [identifiers]', () => {
    const b = bindParameters('sqlite', 'SELECT [a:b], :i, :big', [
      p('i', 'integer', 5),
      p('big', 'integer', '9007199254740993'),
    ]);
    expect(b.sql).toBe('SELECT [a:b], ?, ?');
    expect(b.values).toEqual([5, 9007199254740993n]);
  });

  it("refuses SQLite's own placeholders", () => {
    expect(() => bindParameters('sqlite', 'SELECT @x', [])).toThrow(/SQLite/);
    expect(() => bindParameters('sqlite', 'SELECT $x', [])).toThrow(/SQLite/);
    expect(() => bindParameters('sqlite', 'SELECT ?1', [])).toThrow(/positional/);
  });
});

describe('parameter checks', () => {
  it('needs a value for every placeholder and ignores unused parameters', () => {
    expect(() => bindParameters('postgres', 'SELECT :missing', [])).toThrow(
      /no value for parameter :missing/,
    );
    expect(bindParameters('postgres', 'SELECT 1', [p('unused', 'string', 'x')]).values).toEqual([]);
  });

  it('refuses duplicate names, bad names and unknown types', () => {
    expect(() =>
      bindParameters('postgres', 'SELECT :a', [p('a', 'string', 'x'), p('a', 'string', 'y')]),
    ).toThrow(/twice/);
    expect(() => bindParameters('postgres', 'SELECT 1', [p('a-b', 'string', 'x')])).toThrow(/letters/);
    expect(() =>
      bindParameters('postgres', 'SELECT :a', [{ name: 'a', type: 'money' as never, value: 1 }]),
    ).toThrow(/unknown type/);
  });

  it('checks each type and gives canonical values', () => {
    expect(canonicalValue(p('s', 'string', 'Nguyễn'))).toBe('Nguyễn');
    expect(canonicalValue(p('i', 'integer', '-42'))).toBe(-42);
    expect(canonicalValue(p('i', 'integer', 9007199254740993n))).toBe('9007199254740993');
    expect(canonicalValue(p('n', 'number', 0.25))).toBe(0.25);
    expect(canonicalValue(p('b', 'boolean', true))).toBe(1);
    expect(canonicalValue(p('d', 'date', '2024-02-29'))).toBe('2024-02-29');
    expect(canonicalValue(p('t', 'datetime', '2025-07-09T08:30'))).toBe('2025-07-09 08:30:00');
    expect(canonicalValue(p('t', 'datetime', '2025-07-09 08:30:05.250'))).toBe('2025-07-09 08:30:05.250');
    expect(canonicalValue(p('x', 'date', null))).toBeNull();
  });

  it.each([
    ['string', 5],
    ['integer', 1.5],
    ['integer', '12345678901234567890'],
    ['integer', 'twelve'],
    ['number', Number.NaN],
    ['number', '1.5'],
    ['boolean', 'yes'],
    ['date', '2024-02-30'],
    ['date', '29/02/2024'],
    ['datetime', '2025-07-09T08:30:00Z'],
    ['datetime', '2025-07-09 24:00:00'],
  ] as const)('refuses a %s given %s, without repeating the value', (type, value) => {
    let message = '';
    try {
      canonicalValue(p('x', type, value));
    } catch (err) {
      expect(err).toMatchObject({ code: 'mis.bad_parameter' });
      message = (err as Error).message;
    }
    expect(message).toMatch(/^parameter :x must be/);
    expect(message).not.toContain(String(value));
  });
});
