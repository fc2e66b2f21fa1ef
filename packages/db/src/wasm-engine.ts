/**
 * Prisma's WebAssembly schema engine (`@prisma/schema-engine-wasm`), driven through the
 * `@prisma/adapter-pg` driver adapter. Internal to this package: use ./migrator.ts.
 *
 * Why: the Prisma 7 CLI's `migrate` commands spawn a native schema-engine binary that it downloads
 * from Prisma's servers at start-up; machines without that access cannot run them. The wasm build
 * of the same engine runs in-process and talks to PostgreSQL through a JS driver adapter.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { ConstructorOptions, SchemaEngine } from '@prisma/schema-engine-wasm';
import pg from 'pg';
import { type ParsedDatabaseUrl, quoteIdentifier, withDatabase } from './database-url.js';
import { DatabaseConnectionError, MigrationFailedError, MigratorError, SchemaEngineError } from './errors.js';

export type { SchemaEngine } from '@prisma/schema-engine-wasm';

interface SchemaEngineModule {
  version(): string;
  SchemaEngine: {
    new: (
      options: ConstructorOptions,
      callback: (log: string) => void,
      adapter: object,
    ) => Promise<SchemaEngine>;
  };
}

interface WasmApi {
  instantiate(
    bytes: Uint8Array,
    imports: Record<string, unknown>,
  ): Promise<{ instance: { exports: Record<string, unknown> & { __wbindgen_start(): void } } }>;
}

let enginePromise: Promise<SchemaEngineModule> | undefined;

/**
 * Loads the wasm engine once per process. A plain `import '@prisma/schema-engine-wasm'` fails in
 * Node (it imports the .wasm file as an ES module), so we wire the wasm-bindgen glue by hand.
 */
export function loadSchemaEngine(): Promise<SchemaEngineModule> {
  enginePromise ??= (async () => {
    installPanicRegistry();
    const require = createRequire(import.meta.url);
    const packageDir = dirname(require.resolve('@prisma/schema-engine-wasm'));
    const bg = (await import(
      pathToFileURL(join(packageDir, 'schema_engine_bg.js')).href
    )) as SchemaEngineModule & {
      __wbg_set_wasm(exports: unknown): void;
    };
    const bytes = await readFile(join(packageDir, 'schema_engine_bg.wasm'));
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const { instance } = await wasm.instantiate(bytes, { './schema_engine_bg.js': bg });
    bg.__wbg_set_wasm(instance.exports);
    instance.exports.__wbindgen_start();
    return bg;
  })();
  enginePromise.catch(() => {
    enginePromise = undefined;
  });
  return enginePromise;
}

let lastPanic: string | undefined;

/** The engine reports Rust panics through this global (see schema_engine_bg.js). */
function installPanicRegistry(): void {
  const g = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: { set_message(message: string): void } };
  g.PRISMA_WASM_PANIC_REGISTRY ??= {
    set_message(message: string) {
      lastPanic = message;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// pg: PostgreSQL's internal `"char"` type (OID 18, used all over pg_catalog) is not known to
// adapter-pg 7.10.1, whose queryRaw then fails with "Unsupported column type" during
// introspection. Its values are one-character strings, so report such columns as text (OID 25).

const CHAR_OID = 18;
const TEXT_OID = 25;

class CharAsTextQuery extends pg.Query {
  handleRowDescription(message: { fields: Array<{ dataTypeID: number }> }): void {
    for (const field of message.fields) {
      if (field.dataTypeID === CHAR_OID) field.dataTypeID = TEXT_OID;
    }
    (pg.Query.prototype as unknown as { handleRowDescription(m: unknown): void }).handleRowDescription.call(
      this,
      message,
    );
  }
}

type QueryCallback = (error: Error | undefined, result: unknown) => void;

class CharAsTextClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query() has many overloads; we forward them all.
  override query(config: any, values?: any, callback?: any): any {
    if (config == null || typeof config.submit === 'function') {
      return super.query(config, values, callback);
    }
    const query = new CharAsTextQuery(config, values, callback) as CharAsTextQuery & {
      callback?: QueryCallback;
    };
    if (query.callback) {
      super.query(query);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      query.callback = (error, result) => (error ? reject(error) : resolve(result));
      super.query(query);
    });
  }
}

function createPool(url: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    Client: CharAsTextClient as unknown as new () => pg.ClientBase,
    max: 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 1_000,
  });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => {});
  return pool;
}

// ---------------------------------------------------------------------------------------------
// Connections and databases.

const CONNECTION_TIMEOUT_MS = 8_000;

/** Connects one plain pg client to `url`, translating failures into {@link DatabaseConnectionError}. */
export async function connectClient(
  target: ParsedDatabaseUrl,
  database = target.database,
): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: withDatabase(target.url, database),
    connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    throw toConnectionError(error, target, database);
  }
}

const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

export function toConnectionError(
  error: unknown,
  target: ParsedDatabaseUrl,
  database: string,
): MigratorError {
  if (error instanceof MigratorError) return error;
  const err = error as { code?: string; message?: string; errors?: unknown[] };
  // Node reports "localhost" failures as an AggregateError over IPv4 and IPv6.
  const code = err.code ?? (err.errors?.[0] as { code?: string } | undefined)?.code;
  const message = oneLine(err.message ?? String(error));
  if (code && SOCKET_REASONS[code]) {
    return new DatabaseConnectionError('UNREACHABLE', target.server, database, SOCKET_REASONS[code], {
      cause: error,
    });
  }
  if (/timeout/i.test(message)) {
    return new DatabaseConnectionError('UNREACHABLE', target.server, database, 'connection timed out', {
      cause: error,
    });
  }
  if (code === '3D000') {
    return new DatabaseConnectionError('DATABASE_MISSING', target.server, database, message, {
      cause: error,
    });
  }
  if (code === '28P01' || code === '28000') {
    return new DatabaseConnectionError('AUTH_FAILED', target.server, database, message, { cause: error });
  }
  return new DatabaseConnectionError('CONNECTION_FAILED', target.server, database, message, { cause: error });
}

/**
 * Runs `fn` with a client connected to a maintenance database of the same server (`postgres`,
 * else `template1`, else the target database itself): CREATE/DROP DATABASE cannot run inside the
 * database they affect.
 */
export async function withAdminClient<T>(
  target: ParsedDatabaseUrl,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  let client: pg.Client | undefined;
  let lastError: unknown;
  for (const database of ['postgres', 'template1', target.database]) {
    try {
      client = await connectClient(target, database);
      break;
    } catch (error) {
      lastError = error;
      if (!(error instanceof DatabaseConnectionError) || error.code !== 'DATABASE_MISSING') throw error;
    }
  }
  if (!client) throw lastError;
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Driver adapter factory for the engine.

/**
 * The migration-aware adapter factory handed to the engine. It replaces PrismaPg's own
 * `connectToShadowDb()`, which (adapter-pg 7.10.1) connects to the MAIN database when the config is a
 * connection string, and drops the shadow database while its own pool still holds it: here each
 * shadow database is a fresh, uniquely named database on the same server, dropped WITH (FORCE) after
 * its pool is closed.
 */
class MigrationAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres' as const;
  readonly adapterName = '@prisma/adapter-pg';
  private readonly adapters = new Set<SqlDriverAdapter>();
  private readonly shadowDatabases = new Set<string>();

  constructor(private readonly target: ParsedDatabaseUrl) {}

  async connect(): Promise<SqlDriverAdapter> {
    return this.open(this.target.url, this.target.schema);
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = shadowDatabaseName(this.target.database);
    await withAdminClient(this.target, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
    });
    this.shadowDatabases.add(name);
    const adapter = await this.open(withDatabase(this.target.url, name), undefined);
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await this.dropShadowDatabase(name);
    };
    return adapter;
  }

  /** Closes every pool the engine left open and drops any shadow database still there. */
  async close(): Promise<void> {
    for (const adapter of [...this.adapters]) {
      await adapter.dispose().catch(() => {});
    }
    for (const name of [...this.shadowDatabases]) {
      await this.dropShadowDatabase(name).catch(() => {});
    }
  }

  private async open(url: string, schema: string | undefined): Promise<SqlDriverAdapter> {
    const factory = new PrismaPg(createPool(url), {
      disposeExternalPool: true,
      ...(schema ? { schema } : {}),
    });
    const adapter = await factory.connect();
    // adapter-pg 7.10.1 runs a migration script by splitting it on every ";", which breaks any
    // statement holding one (a PL/pgSQL function body, a string literal). PostgreSQL's simple-query
    // protocol takes the whole script at once, and runs it as one implicit transaction, as the
    // native engine does.
    const driver = adapter.underlyingDriver() as pg.Pool;
    const onError = (adapter as unknown as { onError(e: unknown): never }).onError.bind(adapter);
    adapter.executeScript = async (script: string) => {
      try {
        await driver.query(script);
      } catch (error) {
        onError(error);
      }
    };
    const dispose = adapter.dispose.bind(adapter);
    let disposed = false;
    adapter.dispose = async () => {
      if (disposed) return;
      disposed = true;
      this.adapters.delete(adapter);
      await dispose();
    };
    this.adapters.add(adapter);
    return adapter;
  }

  private async dropShadowDatabase(name: string): Promise<void> {
    if (!this.shadowDatabases.delete(name)) return;
    await withAdminClient(this.target, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
    );
  }
}

function shadowDatabaseName(database: string): string {
  const base = database
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 32);
  return `${base}_shadow_${randomBytes(5).toString('hex')}`;
}

export interface EngineOptions {
  /** Schema files given to the engine at start-up (`[path, content]`), if any. */
  datamodels?: Array<[string, string]>;
  /** Receives the engine's log lines (JSON strings). */
  onLog?: (line: string) => void;
}

/** Starts an engine against `target`, runs `fn`, then frees the engine and closes every connection. */
export async function withSchemaEngine<T>(
  target: ParsedDatabaseUrl,
  options: EngineOptions,
  fn: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const module = await loadSchemaEngine();
  const factory = new MigrationAdapterFactory(target);
  let engine: SchemaEngine | undefined;
  try {
    lastPanic = undefined;
    engine = await module.SchemaEngine.new(
      { datamodels: options.datamodels },
      options.onLog ?? (() => {}),
      bindMigrationAwareSqlAdapterFactory(factory),
    );
    return await fn(engine);
  } catch (error) {
    throw toEngineError(error, target);
  } finally {
    try {
      engine?.free();
    } catch {
      // already freed by a panic
    }
    await factory.close();
  }
}

/** Turns what the wasm engine throws into a one-line {@link MigratorError}. */
export function toEngineError(error: unknown, target: ParsedDatabaseUrl): MigratorError {
  if (error instanceof MigratorError) return error;
  const err = (error ?? {}) as { message?: unknown; code?: unknown; meta?: unknown };
  const engineCode = typeof err.code === 'string' ? err.code : undefined;
  // Drop the engine's span trace ("   0: schema_engine_wasm::... at engine.rs:242").
  let message = (typeof err.message === 'string' ? err.message : String(error)).split(/\n\s*0: /)[0]!;
  if (/unreachable|RuntimeError/i.test(message) && lastPanic) message = `schema engine panic: ${lastPanic}`;
  const cause = findConnectionCause(error);
  if (cause) return toConnectionError(cause, target, target.database);
  if (engineCode === 'P3018' || engineCode === 'P3006' || /Migration name:|failed to apply/i.test(message)) {
    return new MigrationFailedError(oneLine(message), { cause: error });
  }
  return new SchemaEngineError(oneLine(message), engineCode, { cause: error });
}

function findConnectionCause(error: unknown): unknown {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (SOCKET_REASONS[code] || code === '3D000' || code === '28P01'))
      return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Error messages end up on one terminal line. */
export function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ')
    .replace(/\s+/g, ' ');
}
