/**
 * The ledger on SQL: one Kysely query layer over two backends, a SQLite file (the embedded
 * default) and PostgreSQL (production). See docs/concepts.md, "The ledger".
 *
 * The queries live by table in ./queries/; this module puts them together behind the Ledger
 * port, each run through the ledger's bounded retry of transient database failures.
 *
 * Every write is idempotent, so an activity retried by Temporal leaves the same rows:
 * - a batch or an interaction is inserted once (keyed by batch id / interaction id);
 * - an event is inserted once per (interaction id, event key);
 * - a rollback is one row per interaction id, updated in place by later calls;
 * - a reconcile finding is inserted once per (run, kind, target, order, file);
 * - a notification is one row per (event, URL), updated in place by later attempts;
 * - a file claim is one row per (target, order, file), taken over by compare-and-set;
 * - a redrive is queued once per failed interaction;
 * - an intake submission is one row per idempotency key, taken by insert or by compare-and-set;
 * - updates set absolute values, never increments.
 */
import { DEFAULT_LEDGER_RETRY, LedgerUnavailableError, withLedgerRetry, type LedgerRetryPolicy } from './availability';
import { migrateLedger } from './migrations';
import type { Ledger, LedgerQueries } from './port';
import { batchQueries } from './queries/batches';
import { claimQueries } from './queries/claims';
import { eventQueries } from './queries/events';
import { intakeQueries } from './queries/intake';
import { interactionQueries } from './queries/interactions';
import { notificationQueries } from './queries/notifications';
import { rateLimitQueries } from './queries/rate-limits';
import { reconcileFindingQueries } from './queries/reconcile-findings';
import { redriveQueueQueries } from './queries/redrive-queue';
import { rollbackQueries } from './queries/rollbacks';
import type { LedgerDb, LedgerDialect } from './schema';

export interface SqlLedgerOptions {
  /** PostgreSQL schema holding the ledger; the connection's current schema when absent. */
  schema?: string;
  /** Absolute path of the SQLite file, used to serialise migrations of one file in one process. */
  sqliteFile?: string;
  /** The database named in errors, without credentials (see describeLedgerLocation). */
  backend?: string;
  /** How long transient database failures are retried before LedgerUnavailableError. */
  retry?: LedgerRetryPolicy;
  /** Settles when the database can no longer vouch for the ledger's writes (see Ledger.lost). */
  lost?: Promise<Error>;
}

/** Every query of the ledger, by table. A new table's queries are added here and to the port. */
function allQueries(db: LedgerDb, dialect: LedgerDialect): LedgerQueries {
  return {
    ...batchQueries(db),
    ...interactionQueries(db),
    ...eventQueries(db, dialect),
    ...rollbackQueries(db),
    ...reconcileFindingQueries(db),
    ...rateLimitQueries(db),
    ...notificationQueries(db),
    ...claimQueries(db),
    ...redriveQueueQueries(db),
    ...intakeQueries(db),
  };
}

/** Each ledger's query layer, for the ledger's test helper (./testing.ts) only. */
const queryLayers = new WeakMap<Ledger, LedgerDb>();

/**
 * The ledger over a Kysely instance, which it owns from then on (closing the ledger destroys it).
 *
 * Each operation runs through {@link withLedgerRetry}: transient failures of the database (a
 * PostgreSQL restart or failover, a locked SQLite file) are retried for a short bounded time,
 * then reported as LedgerUnavailableError. Every operation is made of idempotent statements (or
 * reads), so a retry after a lost answer writes nothing twice.
 */
export function sqlLedger(db: LedgerDb, dialect: LedgerDialect, options: SqlLedgerOptions = {}): Ledger {
  const context = {
    dialect,
    backend: options.backend ?? (dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'),
    policy: options.retry ?? DEFAULT_LEDGER_RETRY,
  };
  const retried = (operation: string, run: () => Promise<unknown>) => withLedgerRetry(run, { ...context, operation });

  const queries = allQueries(db, dialect) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const operations = Object.fromEntries(
    Object.entries(queries).map(([name, query]) => [name, (...args: unknown[]) => retried(name, () => query(...args))]),
  ) as unknown as LedgerQueries;

  let closing: Promise<void> | undefined;
  const lost = options.lost?.then(
    (failure) =>
      new LedgerUnavailableError(`ledger lost (${context.backend}): ${failure.message}`, {
        backend: context.backend,
        code: (failure as { code?: string }).code,
        cause: failure,
      }),
  );
  const ledger: Ledger = {
    dialect,
    ...(lost ? { lost } : {}),
    ...operations,
    async migrate() {
      await retried('migrate', () =>
        migrateLedger(db, { dialect, schema: options.schema, sqliteFile: options.sqliteFile }),
      );
    },
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
  queryLayers.set(ledger, db);
  return ledger;
}

/** The query layer of a ledger made by {@link sqlLedger}; for ./testing.ts. */
export function queryLayerOf(ledger: Ledger): LedgerDb {
  const db = queryLayers.get(ledger);
  if (!db) throw new Error('ledger: not a SQL ledger opened by openLedger (a wrapped ledger has no query layer)');
  return db;
}
