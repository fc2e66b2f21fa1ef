import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './test-support/databases.js';

// The real CLI: built with tsc, run with node, as `pnpm demo-mis` does.
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const cli = join(packageDir, 'dist', 'cli.js');
const dir = tempDir();

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A failure: non-zero exit, exactly one line on stderr, no stack trace. */
function expectOneLineError(r: ReturnType<typeof run>, pattern: RegExp): void {
  expect(r.status).not.toBe(0);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^demo-mis: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', join(packageDir, 'tsconfig.build.json')], {
    encoding: 'utf8',
  });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  expect(existsSync(cli)).toBe(true);
}, 120_000);
afterAll(() => dir.remove());

describe('demo-mis CLI', () => {
  it('has --help for the program and each command', () => {
    const top = run('--help');
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/generate/);
    expect(top.stdout).toMatch(/mutate/);
    const gen = run('generate', '--help');
    expect(gen.status).toBe(0);
    for (const word of [
      '--preset',
      '--out',
      '--pg',
      '--mysql',
      '--seed',
      'tiny',
      'primary',
      'secondary',
      'large',
    ]) {
      expect(gen.stdout).toContain(word);
    }
    const mut = run('mutate', '--help');
    expect(mut.status).toBe(0);
    expect(mut.stdout).toContain('--db');
    expect(mut.stdout).toContain('--day');
  });

  it('rejects bad input with one clear line and a non-zero exit', () => {
    const out = join(dir.path, 'x.sqlite');
    expectOneLineError(
      run('generate', '--preset', 'huge', '--out', out),
      /huge.*tiny, primary, secondary, large/,
    );
    expectOneLineError(
      run('generate', '--preset', 'tiny', '--out', '/dev/null/school.sqlite'),
      /cannot write .*not a directory/,
    );
    expectOneLineError(
      run('generate', '--preset', 'tiny', '--out', dir.path),
      /cannot write .*it is a directory/,
    );
    expectOneLineError(
      run('generate', '--preset', 'tiny', '--pg', 'postgres://postgres@127.0.0.1:1/demo'),
      /cannot reach PostgreSQL at 127\.0\.0\.1:1/,
    );
    const mysql = run('generate', '--preset', 'tiny', '--mysql', 'mysql://root:secret@127.0.0.1:1/demo');
    expectOneLineError(mysql, /cannot reach MariaDB at 127\.0\.0\.1:1/);
    expect(mysql.stderr).not.toContain('secret');
    expectOneLineError(
      run('generate', '--preset', 'tiny', '--seed', 'abc', '--out', out),
      /--seed must be a whole number/,
    );
    expectOneLineError(run('generate', '--preset', 'tiny'), /nothing to write/);
    expectOneLineError(run('mutate', '--db', join(dir.path, 'missing.sqlite')), /database file not found/);
    expectOneLineError(run('mutate'), /--db/);
    expect(existsSync(out)).toBe(false);
  });

  it('generates with a summary table, then mutates and reports the day', () => {
    const out = join(dir.path, 'data', 'school.sqlite'); // a missing parent directory is created
    const gen = run('generate', '--preset', 'tiny', '--seed', '4', '--out', out);
    expect(gen.status, gen.stderr).toBe(0);
    expect(gen.stderr).toBe(''); // no TTY: no progress bar
    expect(gen.stdout).toMatch(/^att_mark_normalised\s+[\d,]+$/m);
    expect(gen.stdout).toMatch(/^total\s+[\d,]+$/m);
    expect(gen.stdout).toContain('preset tiny, seed 4');
    expect(existsSync(out)).toBe(true);

    const mut = run('mutate', '--db', out);
    expect(mut.status, mut.stderr).toBe(0);
    expect(mut.stdout).toMatch(/^leaver: /m);
    expect(mut.stdout).toMatch(/^joiner: /m);
    expect(mut.stdout).toMatch(/^att_mark_normalised\s+\+\d+ ~\d+ -0$/m);

    expectOneLineError(run('mutate', '--db', out, '--day', '1'), /day 1 .* already applied/);
    const json = run('mutate', '--db', out, '--json');
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { day: number; changes: Record<string, unknown> };
    expect(report.day).toBe(2);
    expect(Object.keys(report.changes)).toContain('sys_deletion');
  });

  it('stays quiet with --quiet', () => {
    const r = run('generate', '--preset', 'tiny', '--quiet', '--out', join(dir.path, 'quiet.sqlite'));
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });
});
