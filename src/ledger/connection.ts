/**
 * Opening the ledger a URL names (see ./url.ts): the SQLite file or the PostgreSQL pool, with
 * the settings every process sharing a ledger needs, and the migrations run on start.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Pool, types as pgTypes } from 'pg';
import type { CustomTypesConfig } from 'pg';
import { envFrom } from '../config/env';
import type { LedgerRetryPolicy } from './availability';
import type { Ledger } from './port';
import { redactSecrets } from './safe-text';
import type { LedgerDatabase } from './schema';
import { sqlLedger } from './sql-ledger';
import { GroupCommitSqliteDialect, SharedFsync } from './group-commit';
import { cachingStatements } from './statement-cache';
import { describeLedgerLocation, parseLedgerUrl } from './url';

/** How long a SQLite connection waits for another connection's write lock, in milliseconds. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Connections in a PostgreSQL ledger's pool. */
export const PG_POOL_MAX = 10;

/** How long a PostgreSQL ledger waits for a new connection before counting the server unreachable. */
export const PG_CONNECT_TIMEOUT_MS = 5000;

/** Longest a PostgreSQL ledger query may wait for its answer before the connection counts as lost. */
export const PG_QUERY_TIMEOUT_MS = 30_000;

/** The ledger URL from the environment, or the default. */
export function ledgerUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return envFrom(env).IMAGE_SYNC_LEDGER_URL;
}

/**
 * PostgreSQL returns int8 (bigint, count(*)) as strings; the ledger's bigint values (sequence
 * numbers, ids, sizes, counts) fit in a JavaScript number, so they are read as numbers. Applies
 * only to the ledger's own pool.
 */
const ledgerPgTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === pgTypes.builtins.INT8 && (format === undefined || format === 'text')) return parseInt8;
    return pgTypes.getTypeParser(oid, format as 'text');
  }) as CustomTypesConfig['getTypeParser'],
};

function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`ledger: integer ${value} is beyond the safe range of a number`);
  return n;
}

/**
 * Creates a ledger for a URL (see parseLedgerUrl) without touching its tables. For a SQLite
 * file, the parent folder is created, and the file opened in WAL mode with a busy timeout, so
 * workers, the CLI and tests can use it at the same time.
 */
export function createSqlLedger(url: string, options: { retry?: LedgerRetryPolicy } = {}): Ledger {
  const location = parseLedgerUrl(url);
  const backend = describeLedgerLocation(location);
  if (location.dialect === 'sqlite') return sqliteLedger(openSqliteFile(location.filename), location, options);
  const pool = new Pool({
    connectionString: location.connectionString,
    max: PG_POOL_MAX,
    types: ledgerPgTypes,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    query_timeout: PG_QUERY_TIMEOUT_MS,
    keepAlive: true,
  });
  // A connection that breaks (server restart or failover, network) must not crash the process.
  // An idle connection reports on the pool; one in use reports on its client, and `pg` emits
  // that as an 'error' event nobody else listens to while a query holds the client. The query
  // itself fails, and the ledger retries it on a new connection.
  const warn = connectionWarnings(backend);
  pool.on('error', (error) => warn('an idle connection failed', error));
  pool.on('connect', (client) => {
    client.on('error', (error) => warn('a connection in use failed', error));
  });
  return sqlLedger(new Kysely<LedgerDatabase>({ dialect: new PostgresDialect({ pool }) }), 'postgres', {
    schema: location.schema,
    backend,
    retry: options.retry,
  });
}

/**
 * Logs connection failures as one line each, at most one line a second per kind, so a server
 * restart under a full pool gives a line, not a burst.
 */
function connectionWarnings(backend: string): (what: string, error: Error) => void {
  const lastAt = new Map<string, number>();
  return (what, error) => {
    const now = Date.now();
    if (now - (lastAt.get(what) ?? 0) < 1000) return;
    lastAt.set(what, now);
    const code = (error as { code?: unknown }).code;
    console.warn(
      `ledger: ${what} (${backend}): ${typeof code === 'string' ? `${code} ` : ''}${redactSecrets(error.message)}; it will be replaced`,
    );
  };
}

function sqliteLedger(
  database: Database.Database,
  location: { filename: string },
  options: { retry?: LedgerRetryPolicy } = {},
): Ledger {
  const config = { database: cachingStatements(database) };
  const wal = groupCommitWal(database);
  const fsync = wal ? new SharedFsync(wal) : undefined;
  const dialect = fsync ? new GroupCommitSqliteDialect(config, database, fsync) : new SqliteDialect(config);
  return sqlLedger(new Kysely<LedgerDatabase>({ dialect }), 'sqlite', {
    sqliteFile: location.filename === ':memory:' ? undefined : location.filename,
    backend: describeLedgerLocation({ dialect: 'sqlite', filename: location.filename }),
    retry: options.retry,
    lost: fsync?.lost,
  });
}

/**
 * The WAL file of a SQLite file this process writes, switched to group commit (group-commit.ts):
 * its commits no longer wait for the disk on the main thread (synchronous = NORMAL), the ledger's
 * operations wait for a shared fsync of this file instead. Undefined for a database in memory,
 * opened to read, or not in WAL mode: those keep SQLite's own syncing.
 */
function groupCommitWal(database: Database.Database): string | undefined {
  if (database.memory || database.readonly) return undefined;
  if (database.pragma('journal_mode', { simple: true }) !== 'wal') return undefined;
  // The path SQLite itself opened (symbolic links resolved as it resolves them): its WAL is beside it.
  const main = (database.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main');
  if (!main?.file) return undefined;
  database.pragma('synchronous = NORMAL');
  return `${main.file}-wal`;
}

function openSqliteFile(filename: string): Database.Database {
  const inMemory = filename === ':memory:';
  if (!inMemory) mkdirSync(path.dirname(filename), { recursive: true });
  const database = new Database(filename, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    if (!inMemory) database.pragma('journal_mode = WAL');
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
}

/**
 * Opens the ledger at `url` and brings its tables up to date. Accepted URLs: `sqlite:<path>`,
 * `sqlite::memory:`, `postgres://...` / `postgresql://...` (optionally `?schema=<name>`).
 */
export async function openLedger(url: string, options: { retry?: LedgerRetryPolicy } = {}): Promise<Ledger> {
  const ledger = createSqlLedger(url, options);
  try {
    await ledger.migrate();
  } catch (error) {
    await ledger.close().catch(() => undefined);
    throw error;
  }
  return ledger;
}

/**
 * Opens the ledger at `url` to read only: a SQLite file read-only (undefined when the file does
 * not exist: a ledger never written holds nothing), PostgreSQL as it is. No migration runs and
 * no file or table is created; a read of a ledger no batch has used fails as
 * {@link isMissingTable} tells.
 */
export function openLedgerToRead(url: string): Ledger | undefined {
  const location = parseLedgerUrl(url);
  if (location.dialect === 'postgres') return createSqlLedger(url);
  if (location.filename === ':memory:' || !existsSync(location.filename)) return undefined;
  const database = new Database(location.filename, { readonly: true, fileMustExist: true });
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  return sqliteLedger(database, location);
}

/** Whether an error says the ledger's tables do not exist yet (a ledger no batch has used). */
export function isMissingTable(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /no such table|relation "[^"]*" does not exist/i.test(message);
}
