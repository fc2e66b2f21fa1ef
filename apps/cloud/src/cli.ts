/**
 * Operator commands: `pnpm keystage <command>`.
 *   audit verify                         check the audit log's hash chain; exit 1 naming the first bad entry
 *   users create-support --email E [--name N]
 *                                        create (or grant) a support user; the password is read from stdin
 *                                        or KEYSTAGE_NEW_PASSWORD
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_DATABASE_URL } from '@keystage/db/migrator';
import { aggregateReportRows, formatTable, whatBreaksRows } from '@keystage/extract-spec';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuditRepository } from './audit/audit.repository.js';
import { AuditService } from './audit/audit.service.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { exitWithError } from './bootstrap.js';
import { Email, Password, Text } from './common/zod-pipe.js';
import { CLOUD_CONFIG, loadConfig } from './config/config.js';
import type { CloudConfig } from './config/config.schema.js';
import { DatabaseModule } from './database/database.module.js';
import { SchoolPermissionsService } from './permissions/school-permissions.service.js';
import { TenancyRepository } from './tenancy/tenancy.repository.js';

const USAGE = `usage: keystage <command>
  audit verify                               check the audit log's hash chain
  users create-support --email <e> [--name <n>]
                                             create a support user (password from stdin or KEYSTAGE_NEW_PASSWORD)
  permissions --school <urn> [--what-breaks <group>]
                                             MIS permission groups the school's approved extracts need
environment: DATABASE_URL (default ${DEFAULT_DATABASE_URL})`;

@Module({})
class CliModule {
  static forRoot(config: CloudConfig): DynamicModule {
    return {
      module: CliModule,
      imports: [
        {
          module: class ConfigHolder {},
          global: true,
          providers: [{ provide: CLOUD_CONFIG, useValue: config }],
          exports: [CLOUD_CONFIG],
        },
        DatabaseModule,
      ],
      providers: [AuditRepository, AuditService, PasswordHasher, TenancyRepository, SchoolPermissionsService],
    };
  }
}

function fail(message: string): never {
  process.stderr.write(`keystage: ${message}\n`);
  process.exit(1);
}

async function readPassword(): Promise<string> {
  if (process.env.KEYSTAGE_NEW_PASSWORD) return process.env.KEYSTAGE_NEW_PASSWORD;
  if (process.stdin.isTTY)
    fail('give the password on stdin (echo … | keystage users create-support …) or in KEYSTAGE_NEW_PASSWORD');
  return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      school: { type: 'string' },
      'what-breaks': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals.join(' ');
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  // These commands touch only the database; the master secret is not used by any of them.
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
    KEYSTAGE_SECRET: process.env.KEYSTAGE_SECRET || 'unused-by-cli-commands-'.padEnd(40, '-'),
    LOG_LEVEL: 'silent',
  });
  const ctx = await NestFactory.createApplicationContext(CliModule.forRoot(config), {
    logger: false,
    abortOnError: false,
  });
  try {
    switch (command) {
      case 'audit verify': {
        const result = await ctx.get(AuditService).verify();
        if (result.ok) {
          process.stdout.write(`audit chain intact: ${result.entries} entries\n`);
        } else {
          const what =
            result.reason === 'hash_mismatch'
              ? 'its content does not match its hash (altered)'
              : 'it does not follow the entry before it (an entry was removed or inserted)';
          fail(`audit chain broken at entry seq=${result.seq}: ${what}`);
        }
        break;
      }
      case 'users create-support': {
        const email = Email.safeParse(values.email);
        if (!email.success) fail('--email must be an e-mail address');
        const name = Text(200).safeParse(values.name ?? email.data);
        if (!name.success) fail('--name must be 1–200 characters');
        const password = Password.safeParse(await readPassword());
        if (!password.success) fail(`password ${password.error.issues[0]?.message ?? 'is not valid'}`);
        const hash = await ctx.get(PasswordHasher).hash(password.data);
        const { userId, created } = await ctx
          .get(TenancyRepository)
          .upsertUserWithRole(
            { email: email.data, displayName: name.data, passwordHash: hash },
            { role: 'support' },
          );
        await ctx.get(AuditService).record(
          { type: 'SYSTEM', id: null, requestId: null },
          {
            action: created ? 'user.created' : 'membership.granted',
            targetType: 'user',
            targetId: userId,
            details: { role: 'support', via: 'cli' },
          },
        );
        process.stdout.write(
          `${created ? 'created' : 'granted support to existing'} user ${email.data} (${userId})\n`,
        );
        break;
      }
      case 'permissions': {
        if (!values.school) fail('permissions needs --school <urn>');
        const service = ctx.get(SchoolPermissionsService);
        const schoolId = await service.schoolIdByUrn(values.school);
        if (!schoolId) fail(`no school with URN ${values.school}`);
        if (values['what-breaks']) {
          const report = await service
            .whatBreaks(schoolId, values['what-breaks'])
            .catch((err: unknown) => fail((err as Error).message));
          process.stdout.write(`Removing "${report.group}" from the school's MIS account would break:\n`);
          process.stdout.write(`${formatTable(whatBreaksRows(report))}\n`);
          break;
        }
        const report = await service.forSchool(schoolId);
        if (report.extracts.length === 0) {
          process.stdout.write(
            `school ${values.school} has approved no extracts: its Keystage account needs no MIS permissions\n`,
          );
          break;
        }
        process.stdout.write(
          `MIS permission groups for school ${values.school} (${report.extracts.length} approved extract versions):\n`,
        );
        process.stdout.write(`${formatTable(aggregateReportRows(report))}\n`);
        if (!report.complete)
          process.stdout.write(
            `warning: ${report.unmapped.length} table(s)/column(s) are not in the permission mapping\n`,
          );
        break;
      }
      default:
        fail(`unknown command "${command}"\n${USAGE}`);
    }
  } finally {
    await ctx.close();
  }
}

main().catch(exitWithError);
