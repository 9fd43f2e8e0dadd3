/**
 * The ledger on SQL: one Kysely query layer over two backends, a SQLite file (the embedded
 * default) and PostgreSQL (production). See design.md, "Ledger".
 *
 * Every write is idempotent, so an activity retried by Temporal leaves the same rows:
 * - a batch or an interaction is inserted once (keyed by batch id / interaction id);
 * - an event is inserted once per (interaction id, event key);
 * - a rollback is one row per interaction id, updated in place by later calls;
 * - updates set absolute values, never increments.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, SqliteDialect } from 'kysely';
import type { ExpressionBuilder, Updateable } from 'kysely';
import { Pool, types as pgTypes } from 'pg';
import type { CustomTypesConfig } from 'pg';
import type { BatchState, FileState } from '../shared';
import { envFrom } from '../config/env';
import { DEFAULT_LEDGER_RETRY, withLedgerRetry, type LedgerRetryPolicy } from './availability';
import { migrateLedger } from './migrations';
import * as pacing from './pacing';
import type { NotificationOutcome, Reservation, ScopeLimit } from './pacing';
import type {
  BatchRow,
  InteractionEventRow,
  InteractionRow,
  Ledger,
  OpenInteraction,
  ReconcileFinding,
  ReconcileFindingRow,
  RollbackRow,
  RollbackStatus,
} from './port';
import { redactSecrets, safeLedgerText, serializeDetail } from './safe-text';
import type { InteractionsTable, LedgerDatabase, LedgerDialect, NotificationRecord, SyncBatchesTable } from './schema';

/** The ledger used when `IMAGE_SYNC_LEDGER_URL` is not set. */
export const DEFAULT_LEDGER_URL = 'sqlite:./.image-sync/ledger.db';

/** The environment variable that selects the ledger. */
export const LEDGER_URL_ENV = 'IMAGE_SYNC_LEDGER_URL';

/** How long a SQLite connection waits for another connection's write lock, in milliseconds. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Connections in a PostgreSQL ledger's pool. */
export const PG_POOL_MAX = 10;

/** How long a PostgreSQL ledger waits for a new connection before counting the server unreachable. */
export const PG_CONNECT_TIMEOUT_MS = 5000;

/** Longest a PostgreSQL ledger query may wait for its answer before the connection counts as lost. */
export const PG_QUERY_TIMEOUT_MS = 30_000;

const ACCEPTED_FORMS =
  'sqlite:<path> (relative to the working directory), sqlite::memory:, ' +
  'or postgres://user[:password]@host[:port]/database[?schema=name] (postgresql:// also accepted)';

/** A PostgreSQL schema name the ledger accepts: lower case, unquoted identifier. */
const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The ledger URL from the environment, or the default. */
export function ledgerUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return envFrom(env).IMAGE_SYNC_LEDGER_URL;
}

/** Where a ledger lives, as read from its URL. */
export type LedgerLocation =
  | {
      dialect: 'sqlite';
      /** Absolute path of the database file, or `:memory:`. */
      filename: string;
    }
  | {
      dialect: 'postgres';
      /** The URL handed to `pg`, with the `schema` parameter turned into a search_path option. */
      connectionString: string;
      /** The schema named by `?schema=`, when given. */
      schema?: string;
    };

/**
 * Reads a ledger URL:
 * - `sqlite:<path>`: a SQLite file, relative to `cwd` unless absolute;
 * - `sqlite::memory:`: a private in-memory SQLite database;
 * - `postgres://...` or `postgresql://...`: PostgreSQL. An optional `schema=<name>` parameter
 *   keeps the ledger in that schema (created when missing); otherwise the connection's current
 *   schema (normally `public`) is used.
 *
 * Throws an Error naming the accepted forms for anything else.
 */
export function parseLedgerUrl(url: string, cwd: string = process.cwd()): LedgerLocation {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();

  if (scheme === 'sqlite') {
    const rest = trimmed.slice('sqlite:'.length);
    if (rest === ':memory:') return { dialect: 'sqlite', filename: ':memory:' };
    if (rest.trim() === '') throw invalidUrl(url, 'the SQLite path is empty');
    return { dialect: 'sqlite', filename: path.resolve(cwd, rest) };
  }

  if (scheme === 'postgres' || scheme === 'postgresql') {
    return parsePostgresUrl(trimmed);
  }

  throw invalidUrl(url, scheme ? `unsupported scheme "${scheme}:"` : 'no scheme');
}

function parsePostgresUrl(url: string): LedgerLocation {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return { dialect: 'postgres', connectionString: url };

  const base = url.slice(0, queryStart);
  const params = new URLSearchParams(url.slice(queryStart + 1));
  const schema = params.get('schema');
  if (schema === null) return { dialect: 'postgres', connectionString: url };

  if (!PG_SCHEMA_NAME.test(schema)) {
    throw invalidUrl(
      url,
      `schema "${schema}" is not a valid schema name (lower-case letters, digits and _, not starting with a digit, at most 63)`,
    );
  }
  params.delete('schema');
  const searchPath = `-c search_path=${schema}`;
  const options = params.get('options');
  params.set('options', options ? `${options} ${searchPath}` : searchPath);
  return { dialect: 'postgres', connectionString: `${base}?${params.toString()}`, schema };
}

function invalidUrl(url: string, problem: string): Error {
  return new Error(`invalid ledger URL "${redactSecrets(url)}": ${problem}; expected ${ACCEPTED_FORMS}`);
}

/**
 * PostgreSQL returns int8 (bigint, count(*)) as strings; the ledger's bigint values (sequence
 * numbers, ids, sizes) fit in a JavaScript number, so they are read as numbers. Applies only to
 * the ledger's own pool.
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

function nowIso(): string {
  return new Date().toISOString();
}

/** Columns of `sync_batches` that form a {@link BatchRow}. */
const BATCH_COLUMNS = [
  'batch_id',
  'workflow_id',
  'state',
  'total',
  'recorded',
  'rolled_back',
  'failed',
  'created_at',
  'finished_at',
] as const;

export interface SqlLedgerOptions {
  /** PostgreSQL schema holding the ledger; the connection's current schema when absent. */
  schema?: string;
  /** Absolute path of the SQLite file, used to serialise migrations of one file in one process. */
  sqliteFile?: string;
  /** The database named in errors, without credentials (see {@link describeLedgerLocation}). */
  backend?: string;
  /** How long transient database failures are retried before LedgerUnavailableError. */
  retry?: LedgerRetryPolicy;
}

/**
 * Migrations of a SQLite file run by this process, by file. A migration holds a transaction
 * open across awaits; a second connection of the same process waiting on that file's write lock
 * would block the event loop that the first needs to finish, so runs on one file take turns.
 */
const sqliteMigrationsInProcess = new Map<string, Promise<unknown>>();

async function oneAtATimePerFile<T>(file: string, run: () => Promise<T>): Promise<T> {
  const previous = sqliteMigrationsInProcess.get(file) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(run);
  const settled = current.catch(() => undefined);
  sqliteMigrationsInProcess.set(file, settled);
  try {
    return await current;
  } finally {
    if (sqliteMigrationsInProcess.get(file) === settled) sqliteMigrationsInProcess.delete(file);
  }
}

/** Filters `interactions as i` to the latest interaction (highest seq) of each file of its batch. */
function isLatestOfItsFile({
  not,
  exists,
  selectFrom,
}: ExpressionBuilder<LedgerDatabase & { i: LedgerDatabase['interactions'] }, 'i'>) {
  return not(
    exists(
      selectFrom('interactions as newer')
        .select('newer.seq')
        .whereRef('newer.batch_id', '=', 'i.batch_id')
        .whereRef('newer.order_id', '=', 'i.order_id')
        .whereRef('newer.file_name', '=', 'i.file_name')
        .whereRef('newer.seq', '>', 'i.seq'),
    ),
  );
}

export class SqlLedger implements Ledger {
  readonly dialect: LedgerDialect;
  /** The query layer, for callers that need a query the Ledger interface does not offer. */
  readonly db: Kysely<LedgerDatabase>;
  readonly #schema: string | undefined;
  readonly #sqliteFile: string | undefined;
  readonly #backend: string;
  readonly #retry: LedgerRetryPolicy;
  #closing: Promise<void> | undefined;

  constructor(db: Kysely<LedgerDatabase>, dialect: LedgerDialect, options: SqlLedgerOptions = {}) {
    this.db = db;
    this.dialect = dialect;
    this.#schema = options.schema;
    this.#sqliteFile = options.sqliteFile;
    this.#backend = options.backend ?? (dialect === 'postgres' ? 'PostgreSQL' : 'SQLite');
    this.#retry = options.retry ?? DEFAULT_LEDGER_RETRY;
  }

  /**
   * Runs one ledger operation: transient failures of the database (a PostgreSQL restart or
   * failover, a locked SQLite file) are retried for a short bounded time, then reported as
   * LedgerUnavailableError. Each operation is one idempotent statement (or a read), so a retry
   * after a lost answer writes nothing twice.
   */
  #op<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return withLedgerRetry(run, {
      dialect: this.dialect,
      backend: this.#backend,
      operation,
      policy: this.#retry,
    });
  }

  async migrate(): Promise<void> {
    return this.#op('migrate', async () => {
      if (this.dialect === 'postgres') {
        const schema = this.#schema ?? (await this.#currentPgSchema());
        await migrateLedger(this.db, { dialect: 'postgres', schema });
        return;
      }
      const run = () => migrateLedger(this.db, { dialect: 'sqlite' });
      await (this.#sqliteFile ? oneAtATimePerFile(this.#sqliteFile, run) : run());
    });
  }

  /** Closes the connection(s). Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= this.db.destroy();
    return this.#closing;
  }

  async #currentPgSchema(): Promise<string> {
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(this.db);
    const schema = rows[0]?.schema;
    if (!schema) {
      throw new Error(
        'ledger: the PostgreSQL connection has no current schema (no schema of its search_path exists); ' +
          'add ?schema=<name> to the ledger URL',
      );
    }
    return schema;
  }

  // -------------------------------------------------------------------------------------------
  // Batches

  async ensureBatch(b: { batchId: string; workflowId: string; total: number; state: BatchState }): Promise<void> {
    return this.#op('ensureBatch', async () => {
      const now = nowIso();
      await this.db
        .insertInto('sync_batches')
        .values({
          batch_id: b.batchId,
          workflow_id: b.workflowId,
          state: b.state,
          total: b.total,
          recorded: 0,
          rolled_back: 0,
          failed: 0,
          created_at: now,
          updated_at: now,
          finished_at: null,
        })
        .onConflict((oc) => oc.column('batch_id').doNothing())
        .execute();
    });
  }

  /**
   * Sets the given fields. `finished: true` stamps `finished_at` unless it is already set;
   * `finished: false` clears it (the batch runs again, e.g. after a redrive).
   */
  async updateBatch(
    batchId: string,
    patch: Partial<{
      state: BatchState;
      total: number;
      recorded: number;
      rolledBack: number;
      failed: number;
      finished: boolean;
    }>,
  ): Promise<void> {
    return this.#op('updateBatch', async () => {
      const now = nowIso();
      const set: Updateable<SyncBatchesTable> = { updated_at: now };
      if (patch.state !== undefined) set.state = patch.state;
      if (patch.total !== undefined) set.total = patch.total;
      if (patch.recorded !== undefined) set.recorded = patch.recorded;
      if (patch.rolledBack !== undefined) set.rolled_back = patch.rolledBack;
      if (patch.failed !== undefined) set.failed = patch.failed;
      let query = this.db.updateTable('sync_batches').set(set);
      if (patch.finished === true) {
        query = query.set((eb) => ({ finished_at: eb.fn.coalesce('finished_at', eb.val(now)) }));
      } else if (patch.finished === false) {
        query = query.set({ finished_at: null });
      }
      await query.where('batch_id', '=', batchId).execute();
    });
  }

  async getBatch(batchId: string): Promise<BatchRow | undefined> {
    return this.#op('getBatch', async () => {
      return this.db
        .selectFrom('sync_batches')
        .select(BATCH_COLUMNS)
        .where('batch_id', '=', batchId)
        .executeTakeFirst();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Interactions

  async openInteraction(i: OpenInteraction): Promise<{ seq: number }> {
    return this.#op('openInteraction', async () => {
      const now = nowIso();
      await this.db
        .insertInto('interactions')
        .values({
          interaction_id: i.interactionId,
          batch_id: i.batchId,
          order_id: i.orderId,
          file_name: i.fileName,
          target: i.target,
          source_path: i.sourcePath,
          sha256: i.sha256,
          size_bytes: i.sizeBytes,
          status: i.status,
          resends: 0,
          last_error: null,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('interaction_id').doNothing())
        .execute();
      const row = await this.db
        .selectFrom('interactions')
        .select('seq')
        .where('interaction_id', '=', i.interactionId)
        .executeTakeFirstOrThrow(() => new Error(`ledger: interaction ${i.interactionId} vanished after insert`));
      return { seq: row.seq };
    });
  }

  async updateInteraction(
    interactionId: string,
    patch: Partial<{ status: FileState; resends: number; lastError: string | null; sha256: string; sizeBytes: number }>,
  ): Promise<void> {
    return this.#op('updateInteraction', async () => {
      const set: Updateable<InteractionsTable> = { updated_at: nowIso() };
      if (patch.status !== undefined) set.status = patch.status;
      if (patch.resends !== undefined) set.resends = patch.resends;
      if (patch.lastError !== undefined) set.last_error = safeLedgerText(patch.lastError);
      if (patch.sha256 !== undefined) set.sha256 = patch.sha256;
      if (patch.sizeBytes !== undefined) set.size_bytes = patch.sizeBytes;
      await this.db.updateTable('interactions').set(set).where('interaction_id', '=', interactionId).execute();
    });
  }

  async getInteraction(interactionId: string): Promise<InteractionRow | undefined> {
    return this.#op('getInteraction', async () => {
      return this.db
        .selectFrom('interactions')
        .selectAll()
        .where('interaction_id', '=', interactionId)
        .executeTakeFirst();
    });
  }

  async listInteractions(batchId: string): Promise<InteractionRow[]> {
    return this.#op('listInteractions', async () => {
      return this.db.selectFrom('interactions').selectAll().where('batch_id', '=', batchId).orderBy('seq').execute();
    });
  }

  /** The latest interaction (highest seq) of every (order, file) of a batch, in seq order. */
  async latestInteractions(batchId: string): Promise<InteractionRow[]> {
    return this.#op('latestInteractions', async () => {
      return this.listBatchFilesByStatus(batchId);
    });
  }

  /**
   * The latest interaction of every (order, file) of a batch whose status is one of `status`
   * (every file when omitted), in seq order.
   */
  async listBatchFilesByStatus(batchId: string, status?: FileState | readonly FileState[]): Promise<InteractionRow[]> {
    return this.#op('listBatchFilesByStatus', async () => {
      let query = this.db
        .selectFrom('interactions as i')
        .selectAll('i')
        .where('i.batch_id', '=', batchId)
        .where(isLatestOfItsFile);
      if (status !== undefined) {
        const statuses: readonly FileState[] = typeof status === 'string' ? [status] : status;
        if (statuses.length === 0) return [];
        query = query.where('i.status', 'in', statuses);
      }
      return query.orderBy('i.seq').execute();
    });
  }

  /**
   * The (order, file) pairs recorded by any batch whose id starts with `prefix`: their latest
   * interaction in that batch is RECORDED. A scheduled sync uses it to skip what earlier runs
   * delivered.
   */
  async recordedFilesOfBatches(prefix: string): Promise<{ orderId: string; fileName: string }[]> {
    return this.#op('recordedFilesOfBatches', async () => {
      const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await this.db
        .selectFrom('interactions as i')
        .select(['i.order_id', 'i.file_name'])
        .distinct()
        .where(sql<boolean>`i.batch_id like ${pattern} escape '\\'`)
        .where('i.status', '=', 'RECORDED')
        .where(isLatestOfItsFile)
        .execute();
      return rows.map((r) => ({ orderId: r.order_id, fileName: r.file_name }));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Events

  async appendEvent(e: { interactionId: string; eventKey: string; kind: string; detail?: unknown }): Promise<void> {
    return this.#op('appendEvent', async () => {
      await this.db
        .insertInto('interaction_events')
        .values({
          interaction_id: e.interactionId,
          event_key: e.eventKey,
          kind: e.kind,
          detail: serializeDetail(e.detail),
          at: nowIso(),
        })
        .onConflict((oc) => oc.columns(['interaction_id', 'event_key']).doNothing())
        .execute();
    });
  }

  async listEvents(interactionId: string): Promise<InteractionEventRow[]> {
    return this.#op('listEvents', async () => {
      return this.db
        .selectFrom('interaction_events')
        .select(['id', 'interaction_id', 'kind', 'detail', 'at'])
        .where('interaction_id', '=', interactionId)
        .orderBy('id')
        .execute();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Rollbacks

  /**
   * Inserts the interaction's rollback row, or updates its status, attempts, reason and
   * finished_at when it exists. `created_at` keeps the first call's time.
   */
  async recordRollback(r: {
    interactionId: string;
    batchId: string;
    orderId: string;
    fileName: string;
    reason: string;
    status: RollbackStatus;
    attempts: number;
  }): Promise<void> {
    return this.#op('recordRollback', async () => {
      const now = nowIso();
      await this.db
        .insertInto('rollbacks')
        .values({
          interaction_id: r.interactionId,
          batch_id: r.batchId,
          order_id: r.orderId,
          file_name: r.fileName,
          reason: safeLedgerText(r.reason),
          status: r.status,
          attempts: r.attempts,
          created_at: now,
          finished_at: now,
        })
        .onConflict((oc) =>
          oc.column('interaction_id').doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            attempts: eb.ref('excluded.attempts'),
            reason: eb.ref('excluded.reason'),
            finished_at: eb.ref('excluded.finished_at'),
          })),
        )
        .execute();
    });
  }

  async listRollbacks(batchId: string): Promise<RollbackRow[]> {
    return this.#op('listRollbacks', async () => {
      return this.db.selectFrom('rollbacks').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Paged reads and reconcile findings

  /**
   * One page of the latest interaction of every file of a batch, in (order_id, file_name) order,
   * after `after`. Walks the (batch_id, order_id, file_name, seq) index, so each page costs its
   * own size whatever the batch's.
   */
  async latestInteractionsPage(
    batchId: string,
    after: { orderId: string; fileName: string } | null,
    limit: number,
  ): Promise<InteractionRow[]> {
    let query = this.db
      .selectFrom('interactions as i')
      .selectAll('i')
      .where('i.batch_id', '=', batchId)
      .where(isLatestOfItsFile);
    if (after) {
      query = query.where((eb) =>
        eb.or([
          eb('i.order_id', '>', after.orderId),
          eb.and([eb('i.order_id', '=', after.orderId), eb('i.file_name', '>', after.fileName)]),
        ]),
      );
    }
    return query.orderBy('i.order_id').orderBy('i.file_name').limit(limit).execute();
  }

  async rollbacksOf(interactionIds: readonly string[]): Promise<RollbackRow[]> {
    if (interactionIds.length === 0) return [];
    return this.db.selectFrom('rollbacks').selectAll().where('interaction_id', 'in', interactionIds).execute();
  }

  async recordReconcileFindings(run: {
    runId: string;
    batchId: string;
    findings: readonly ReconcileFinding[];
  }): Promise<void> {
    const now = nowIso();
    // In slices, so a run with many findings stays under the backends' bound-parameter limits.
    for (let i = 0; i < run.findings.length; i += 200) {
      await this.db
        .insertInto('reconcile_findings')
        .values(
          run.findings.slice(i, i + 200).map((f) => ({
            run_id: run.runId,
            batch_id: run.batchId,
            kind: f.kind,
            order_id: f.orderId,
            file_name: f.fileName,
            target: f.target,
            interaction_id: f.interactionId,
            detail: safeLedgerText(f.detail),
            found_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['run_id', 'kind', 'target', 'order_id', 'file_name']).doNothing())
        .execute();
    }
  }

  async batchIdsWithSourcesUnder(dir: string): Promise<string[]> {
    const folder = dir.endsWith('/') ? dir : `${dir}/`;
    // An exact, case-sensitive prefix on both backends (SQLite's LIKE ignores ASCII case);
    // substr counts characters, so the length is counted in code points.
    const length = [...folder].length;
    const rows = await this.db
      .selectFrom('interactions')
      .select('batch_id')
      .select((eb) => eb.fn.min('seq').as('first'))
      .where(sql<boolean>`substr(source_path, 1, ${length}) = ${folder}`)
      .groupBy('batch_id')
      .orderBy('first')
      .execute();
    return rows.map((r) => r.batch_id);
  }

  async listReconcileFindings(batchId: string): Promise<ReconcileFindingRow[]> {
    return this.db.selectFrom('reconcile_findings').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
  }

  async setRateLimits(batchId: string, limits: readonly ScopeLimit[]): Promise<void> {
    return this.#op('setRateLimits', () => pacing.setRateLimits(this.db, this.dialect, batchId, limits, Date.now()));
  }

  async reserveRate(scopes: readonly string[], amount: number): Promise<Reservation | undefined> {
    // Not retried as one: a reservation whose answer was lost has taken its slot, and the retry
    // takes the next one; the limit still holds.
    return this.#op('reserveRate', () => pacing.reserveRate(this.db, this.dialect, scopes, amount, Date.now()));
  }

  async clearRateLimits(batchId: string): Promise<void> {
    return this.#op('clearRateLimits', () => pacing.clearRateLimits(this.db, batchId));
  }

  async recordNotification(n: NotificationOutcome, ifNew = false): Promise<void> {
    return this.#op('recordNotification', () => pacing.recordNotification(this.db, n, ifNew));
  }

  async listNotifications(batchId: string): Promise<NotificationRecord[]> {
    return this.#op('listNotifications', () => pacing.listNotifications(this.db, batchId));
  }
}

/**
 * Creates a ledger for a URL (see {@link parseLedgerUrl}) without touching its tables. For a
 * SQLite file, the parent folder is created, and the file opened in WAL mode with a busy
 * timeout, so workers, the CLI and tests can use it at the same time.
 */
export function createSqlLedger(url: string, options: { retry?: LedgerRetryPolicy } = {}): SqlLedger {
  const location = parseLedgerUrl(url);
  const backend = describeLedgerLocation(location);
  if (location.dialect === 'sqlite') {
    const database = openSqliteFile(location.filename);
    return new SqlLedger(new Kysely<LedgerDatabase>({ dialect: new SqliteDialect({ database }) }), 'sqlite', {
      sqliteFile: location.filename === ':memory:' ? undefined : location.filename,
      backend,
      retry: options.retry,
    });
  }
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
  return new SqlLedger(new Kysely<LedgerDatabase>({ dialect: new PostgresDialect({ pool }) }), 'postgres', {
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

/** Names a ledger's database for messages, without credentials. */
export function describeLedgerLocation(location: LedgerLocation): string {
  if (location.dialect === 'sqlite') {
    return location.filename === ':memory:' ? 'SQLite in memory' : `SQLite file ${location.filename}`;
  }
  try {
    const u = new URL(location.connectionString);
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `PostgreSQL at ${u.hostname || '(socket)'}${u.port ? `:${u.port}` : ''}/${database}${location.schema ? ` schema ${location.schema}` : ''}`;
  } catch {
    return 'PostgreSQL';
  }
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
export async function openLedger(url: string, options: { retry?: LedgerRetryPolicy } = {}): Promise<SqlLedger> {
  const ledger = createSqlLedger(url, options);
  try {
    await ledger.migrate();
  } catch (error) {
    await ledger.close().catch(() => undefined);
    throw error;
  }
  return ledger;
}
