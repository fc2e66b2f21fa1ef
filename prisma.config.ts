// Prisma 7 configuration for the whole repo (schema, migrations, datasource URL).
//
// It is a plain object on purpose: the `prisma` package is a dependency of packages/db only, so
// `import { defineConfig } from 'prisma/config'` would not resolve from the repo root. Prisma
// accepts a plain object with the same shape as `defineConfig`'s argument.
//
// Migrations are NOT run through `prisma migrate` on machines without internet access (the CLI
// downloads a native schema engine); see packages/db/README.md. The folder layout stays the
// standard one, so `prisma migrate deploy --config prisma.config.ts` works wherever it can run.
export default {
  schema: 'prisma/schema.prisma',
  migrations: {
    path: 'prisma/migrations',
  },
  datasource: {
    url: process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/keystage',
  },
};
