#!/usr/bin/env node
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_VERSION, AgentConnection } from './connection.js';
import { CredentialStore, promptSecret } from './credentials.js';
import { DataDir } from './data-dir.js';
import { diagnostics } from './diagnostics.js';
import { enrol } from './enrol.js';
import { AgentError } from './errors.js';
import { JobRunner } from './jobs.js';
import { createLogger } from './log.js';
import { describeMis, MIS_KINDS, type MisKind, openMisSession } from './mis.js';
import { ReplayCache } from './replay-cache.js';
import { loadIdentity, loadState, saveState } from './state.js';
import { readStatus, recordStatus } from './status.js';

const program = new Command();

program
  .name('keystage-agent')
  .description('The Keystage agent: runs only signed, agreed, read-only queries against this school’s MIS.')
  .version(AGENT_VERSION)
  .option(
    '--data-dir <dir>',
    'where the agent keeps its identity, pinned keys and encrypted credentials (default ~/.keystage-agent)',
  )
  .showHelpAfterError();

const dataDir = () => DataDir.resolve(program.opts<{ dataDir?: string }>().dataDir);
const misKind = (v: string): MisKind => {
  if (!(MIS_KINDS as readonly string[]).includes(v))
    throw new InvalidArgumentError(`one of ${MIS_KINDS.join(', ')}`);
  return v as MisKind;
};

program
  .command('enrol')
  .description('Register this agent with the control plane using a one-time token from the school’s admin.')
  .requiredOption('--url <url>', 'the control plane, e.g. https://keystage.example.org')
  .requiredOption('--token <token>', 'the one-time enrolment token')
  .addOption(new Option('--mis-kind <kind>', 'the MIS this agent reads').argParser(misKind).default('SIMS'))
  .action(async (opts: { url: string; token: string; misKind: MisKind }) => {
    const state = await enrol(dataDir(), opts.url, opts.token, opts.misKind);
    out(
      `enrolled as agent ${state.agentId} for school ${state.schoolId}; next: keystage-agent credentials set, then keystage-agent run`,
    );
  });

const credentials = program
  .command('credentials')
  .description('The MIS connection and its password (kept encrypted, only on this machine).');

credentials
  .command('set')
  .description('Store how to reach the MIS; the password is prompted for without echo (or read from stdin).')
  .addOption(new Option('--kind <kind>', 'MIS database kind').argParser(misKind).makeOptionMandatory())
  .requiredOption(
    '--location <where>',
    'SQLite file path, or a postgres:// mysql:// mssql:// URL without the password',
  )
  .option('--no-password', 'the MIS needs no password (e.g. a SQLite file)')
  .action(async (opts: { kind: MisKind; location: string; password: boolean }) => {
    const dir = dataDir();
    const state = loadState(dir);
    if (/:\/\/[^/@:]+:[^/@]+@/.test(opts.location)) {
      throw new AgentError(
        'credentials.password_in_url',
        'put no password in --location: it is asked for separately and stored encrypted',
        2,
      );
    }
    state.mis = { kind: opts.kind, location: opts.location, ...(opts.password ? {} : { noPassword: true }) };
    state.misKind = opts.kind;
    saveState(dir, state);
    if (opts.password) {
      const password = await promptSecret('MIS password: ');
      if (!password) throw new AgentError('credentials.empty', 'no password given', 2);
      new CredentialStore(dir).save(password);
    } else {
      new CredentialStore(dir).clear();
    }
    out(
      'credentials saved (password encrypted in the data directory); check them with: keystage-agent credentials test',
    );
  });

credentials
  .command('clear')
  .description('Forget the MIS password.')
  .action(() => {
    const had = new CredentialStore(dataDir()).clear();
    out(had ? 'credentials cleared' : 'no credentials were stored');
  });

credentials
  .command('test')
  .description('Connect to the MIS and report the server version and what the account may read.')
  .action(async () => {
    const dir = dataDir();
    const state = loadState(dir);
    if (!state.mis)
      throw new AgentError('credentials.missing', 'no MIS configured: run keystage-agent credentials set');
    const report = await describeMis(state.mis, new CredentialStore(dir).load());
    out(report);
  });

program
  .command('run')
  .description('Connect to the control plane and run agreed jobs until stopped (Ctrl+C).')
  .option('--supervised', 'ask for the MIS password now and keep it only in memory (never on disk)')
  .action(async (opts: { supervised?: boolean }) => {
    const dir = dataDir();
    const state = loadState(dir);
    const identityKey = loadIdentity(dir);
    const log = createLogger();
    const store = new CredentialStore(dir);
    let password: string | undefined;
    if (opts.supervised) {
      password =
        process.env.KEYSTAGE_MIS_PASSWORD ?? (await promptSecret('MIS password (kept in memory only): '));
    }
    const currentPassword = () => (opts.supervised ? password : store.load());
    let misVersion: string | null = null;
    const jobs: JobRunner = new JobRunner({
      misKind: state.mis?.kind ?? state.misKind,
      pinnedKey: state.jobSigningKey.publicKey,
      replay: new ReplayCache(dir),
      statementLog: process.env.KEYSTAGE_AGENT_STATEMENT_LOG,
      link: {
        send: (type, body): boolean => connection.sendIfOpen(type, body),
        sendChunk: (body, payload): boolean => connection.sendChunk(body, payload),
      },
      spillDir: join(dir.path, 'spill'),
      spillMaxBytes: Number(process.env.KEYSTAGE_AGENT_SPILL_MAX_BYTES ?? 2 * 1024 ** 3),
      log: (message, fields) => log.info(message, fields),
      openMis: () => {
        if (!state.mis) return undefined;
        const pw = currentPassword();
        if (pw === undefined && state.mis.kind !== 'DEMO_SQLITE' && !state.mis.noPassword) return undefined;
        return openMisSession(state.mis, pw).then((s) => {
          misVersion = s.serverVersion ?? misVersion;
          return s;
        });
      },
      onError: (code, message) => connection.noteError(code, message),
    });
    const heartbeat = process.env.KEYSTAGE_AGENT_HEARTBEAT_MS
      ? Number(process.env.KEYSTAGE_AGENT_HEARTBEAT_MS)
      : undefined;
    const connection: AgentConnection = new AgentConnection({
      state,
      identityKey,
      dataDir: dir,
      jobs,
      log,
      misKind: state.mis?.kind ?? state.misKind,
      supervised: opts.supervised === true,
      credentialsReady: () =>
        state.mis !== undefined &&
        (currentPassword() !== undefined ||
          state.mis.kind === 'DEMO_SQLITE' ||
          state.mis.noPassword === true),
      misVersion: () => misVersion,
      heartbeatIntervalMs: heartbeat,
    });
    recordStatus(dir, { pid: process.pid, supervised: opts.supervised === true, connection: 'reconnecting' });
    const stop = () => {
      log.info('stopping');
      recordStatus(dir, { connection: 'stopped' });
      connection.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log.info('agent starting', {
      agentId: state.agentId,
      cloud: state.cloudUrl,
      supervised: opts.supervised === true,
    });
    await connection.run();
  });

program
  .command('status')
  .description('Enrolment, connection, last run and versions.')
  .action(() => {
    const dir = dataDir();
    const state = loadState(dir);
    const status = readStatus(dir);
    out(
      [
        `agent       ${state.agentId} (version ${AGENT_VERSION})`,
        `school      ${state.schoolId}`,
        `cloud       ${state.cloudUrl}`,
        `MIS         ${state.mis ? `${state.mis.kind} ${state.mis.location}` : 'not configured'}`,
        `credentials ${new CredentialStore(dir).has() ? 'stored (encrypted)' : 'none stored'}`,
        `connection  ${status?.connection ?? 'never started'}${status?.updatedAt ? ` (as of ${status.updatedAt})` : ''}`,
        ...(status?.refusal ? [`refused     ${status.refusal.code}: ${status.refusal.message}`] : []),
        ...(status?.lastRun
          ? [`last run    ${status.lastRun.runId} ${status.lastRun.outcome} at ${status.lastRun.at}`]
          : []),
      ].join('\n'),
    );
  });

program
  .command('diagnostics')
  .description('Print a redacted bundle for support (no passwords, keys or data).')
  .action(() => {
    out(JSON.stringify(diagnostics(dataDir()), null, 2));
  });

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof AgentError) {
    process.stderr.write(`keystage-agent: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(
    `keystage-agent: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
