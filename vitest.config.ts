import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One vitest run for the whole repo. SWC compiles TypeScript so that NestJS gets the
// decorator metadata its dependency injection needs (esbuild/tsx do not emit it).
export default defineConfig({
  plugins: [
    swc.vite({
      jsc: {
        target: 'es2023',
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      },
    }),
  ],
  test: {
    include: ['apps/*/src/**/*.spec.ts', 'packages/*/src/**/*.spec.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
