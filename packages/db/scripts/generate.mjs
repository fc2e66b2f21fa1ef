#!/usr/bin/env node
// Generates the Prisma client for prisma/schema.prisma into packages/db/src/generated/prisma.
//
// The Prisma 7 CLI wants to download a native schema-engine binary at start-up, which this network
// cannot reach. `prisma generate` never calls that engine, so we point PRISMA_SCHEMA_ENGINE_BINARY
// at a stub that exits 1: the CLI finds "an engine" and skips the download. Works from any cwd.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(packageDir, '../..');
const configPath = join(repoRoot, 'prisma.config.ts');
const schemaPath = join(repoRoot, 'prisma', 'schema.prisma');

const require = createRequire(join(packageDir, 'package.json'));
const prismaCli = require.resolve('prisma/build/index.js');

const stubDir = mkdtempSync(join(tmpdir(), 'keystage-prisma-'));
const stubEngine = join(stubDir, 'schema-engine-stub');
writeFileSync(
  stubEngine,
  '#!/bin/sh\necho "schema engine not available: use @keystage/db migrator" >&2\nexit 1\n',
);
chmodSync(stubEngine, 0o755);

let status = 1;
try {
  const result = spawnSync(
    process.execPath,
    [prismaCli, 'generate', '--config', configPath, '--schema', schemaPath],
    {
      cwd: repoRoot,
      stdio: 'inherit',
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: stubEngine,
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
        PRISMA_GENERATE_SKIP_AUTOINSTALL: '1',
        CHECKPOINT_DISABLE: '1',
      },
    },
  );
  if (result.error) {
    console.error(`prisma generate could not start: ${result.error.message}`);
  } else {
    status = result.status ?? 1;
  }
} finally {
  rmSync(stubDir, { recursive: true, force: true });
}
process.exit(status);
