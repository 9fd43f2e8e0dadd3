/**
 * Schema migrations of the ledger, kept in code so nothing has to be read from disk at run time.
 *
 * `migrateLedger` runs on every start. Kysely's migrator records applied migrations in
 * `ledger_migration` and serialises concurrent runs: on PostgreSQL with an advisory lock, on
 * SQLite with the database's write lock (a run that loses the race is retried, and then finds
 * nothing left to do; so is one that lost a race with another process applying the same migration).
 */
import { Migrator, sql } from 'kysely';
import type { ColumnDataType, Migration, MigrationProvider } from 'kysely';
import { sqliteUnavailability } from './availability';
import type { LedgerDb, LedgerDialect } from './schema';

type MigrationDb = Parameters<Migration['up']>[0];

export const LEDGER_MIGRATION_TABLE = 'ledger_migration';
export const LEDGER_MIGRATION_LOCK_TABLE = 'ledger_migration_lock';

/** How often a SQLite migration run that found the database busy is retried. */
const SQLITE_BUSY_RETRIES = 20;

/** Column types that differ between the backends. */
function columnTypes(dialect: LedgerDialect): { bigInt: ColumnDataType } {
  return { bigInt: dialect === 'postgres' ? 'bigint' : 'integer' };
}

/** The ledger's migrations, by name; names sort in the order they apply. */
export function ledgerMigrations(dialect: LedgerDialect): Record<string, Migration> {
  const types = columnTypes(dialect);

  /** Starts a table whose first column is an increasing integer key assigned by the database. */
  const withSerialKey = (db: MigrationDb, table: string, column: string) =>
    dialect === 'postgres'
      ? db.schema.createTable(table).addColumn(column, 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : db.schema.createTable(table).addColumn(column, 'integer', (c) => c.primaryKey().autoIncrement());

  const initial: Migration = {
    async up(db) {
      await db.schema
        .createTable('sync_batches')
        .addColumn('batch_id', 'text', (c) => c.primaryKey())
        .addColumn('workflow_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('recorded', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rolled_back', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();

      await withSerialKey(db, 'interactions', 'seq')
        .addColumn('interaction_id', 'text', (c) => c.notNull())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('source_path', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('size_bytes', types.bigInt, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('resends', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('interactions_interaction_id_key', ['interaction_id'])
        .execute();
      await db.schema
        .createIndex('interactions_batch_order_file_seq_idx')
        .on('interactions')
        .columns(['batch_id', 'order_id', 'file_name', 'seq'])
        .execute();

      await withSerialKey(db, 'interaction_events', 'id')
        .addColumn('interaction_id', 'text', (c) => c.notNull())
        .addColumn('event_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('at', 'text', (c) => c.notNull())
        .addUniqueConstraint('interaction_events_interaction_id_event_key_key', ['interaction_id', 'event_key'])
        .execute();

      await withSerialKey(db, 'rollbacks', 'id')
        .addColumn('interaction_id', 'text', (c) => c.notNull())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .addUniqueConstraint('rollbacks_interaction_id_key', ['interaction_id'])
        .addCheckConstraint('rollbacks_status_check', sql`status in ('DONE', 'FAILED')`)
        .execute();
      await db.schema.createIndex('rollbacks_batch_id_idx').on('rollbacks').column('batch_id').execute();
    },

    async down(db) {
      for (const table of ['rollbacks', 'interaction_events', 'interactions', 'sync_batches']) {
        await db.schema.dropTable(table).ifExists().execute();
      }
    },
  };

  const reconcileFindings: Migration = {
    async up(db) {
      await withSerialKey(db, 'reconcile_findings', 'id')
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('interaction_id', 'text')
        .addColumn('detail', 'text', (c) => c.notNull())
        .addColumn('found_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('reconcile_findings_run_kind_file_key', [
          'run_id',
          'kind',
          'target',
          'order_id',
          'file_name',
        ])
        .execute();
      await db.schema
        .createIndex('reconcile_findings_batch_id_idx')
        .on('reconcile_findings')
        .column('batch_id')
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('reconcile_findings').ifExists().execute();
    },
  };

  const limitsAndNotifications: Migration = {
    async up(db) {
      await db.schema
        .createTable('rate_limits')
        .addColumn('scope', 'text', (c) => c.primaryKey())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('per_second', 'double precision', (c) => c.notNull())
        .addColumn('next_at_ms', 'double precision', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('rate_limits_batch_id_idx').on('rate_limits').column('batch_id').execute();
      await withSerialKey(db, 'notifications', 'id')
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('notifications_event_url_key', ['event_id', 'url'])
        .execute();
      await db.schema.createIndex('notifications_batch_id_idx').on('notifications').column('batch_id').execute();
    },
    async down(db) {
      await db.schema.dropTable('notifications').ifExists().execute();
      await db.schema.dropTable('rate_limits').ifExists().execute();
    },
  };

  const redriveQueue: Migration = {
    async up(db) {
      await withSerialKey(db, 'redrive_queue', 'id')
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('source_path', 'text', (c) => c.notNull())
        .addColumn('failed_interaction_id', 'text', (c) => c.notNull())
        .addColumn('failed_status', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('queued_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('redrive_queue_failed_interaction_id_key', ['failed_interaction_id'])
        .addUniqueConstraint('redrive_queue_batch_id_position_key', ['batch_id', 'position'])
        .addCheckConstraint(
          'redrive_queue_failed_status_check',
          sql`failed_status in ('ROLLED_BACK', 'ROLLBACK_FAILED')`,
        )
        .execute();
      await db.schema
        .createIndex('redrive_queue_batch_order_file_idx')
        .on('redrive_queue')
        .columns(['batch_id', 'order_id', 'file_name'])
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('redrive_queue').ifExists().execute();
    },
  };

  const fileClaims: Migration = {
    async up(db) {
      await db.schema
        .createTable('file_claims')
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('interaction_id', 'text', (c) => c.notNull())
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('workflow_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text')
        .addColumn('claimed_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('file_claims_pkey', ['target', 'order_id', 'file_name'])
        .execute();
      // A file's interactions across batches: the claim's "already held" look and the rollback's.
      await db.schema
        .createIndex('interactions_order_file_target_idx')
        .on('interactions')
        .columns(['order_id', 'file_name', 'target'])
        .execute();
    },
    async down(db) {
      await db.schema.dropIndex('interactions_order_file_target_idx').ifExists().execute();
      await db.schema.dropTable('file_claims').ifExists().execute();
    },
  };

  const claimsOfRecorded: Migration = {
    async up(db) {
      // Every file an interaction recorded gets a claim row, free (its holder has ended): a file
      // without one is then a file no interaction recorded, and a first claim needs no
      // already-held look (openClaimed).
      await sql`
        insert into file_claims (target, order_id, file_name, interaction_id, batch_id, workflow_id, run_id, claimed_at)
        select i.target, i.order_id, i.file_name, i.interaction_id, i.batch_id, 'ledger-migration', null, i.updated_at
        from interactions i
        where i.status = 'RECORDED'
          and not exists (
            select 1 from interactions j
            where j.target = i.target and j.order_id = i.order_id and j.file_name = i.file_name
              and j.status = 'RECORDED' and j.seq > i.seq
          )
        on conflict (target, order_id, file_name) do nothing
      `.execute(db);
    },
    async down() {
      // Rows only: 0005's down drops the table.
    },
  };

  const intakeSubmissions: Migration = {
    async up(db) {
      // The intake's submissions by idempotency key (queries/intake.ts): the body's hash, and
      // whether the key is still being taken or was accepted into the intake workflow.
      await db.schema
        .createTable('intake_submissions')
        .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('body_sha256', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('taker', 'text', (c) => c.notNull())
        .addColumn('files', 'integer', (c) => c.notNull())
        .addColumn('taken_at', 'text', (c) => c.notNull())
        .addColumn('accepted_at', 'text')
        .execute();
      await db.schema
        .createTable('intake_files')
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('source_path', 'text', (c) => c.notNull())
        .addColumn('submitted_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('intake_files_pkey', ['idempotency_key', 'order_id', 'file_name', 'target'])
        .execute();
      await db.schema.createIndex('intake_files_order_idx').on('intake_files').columns(['order_id']).execute();
    },
    async down(db) {
      await db.schema.dropTable('intake_files').ifExists().execute();
      await db.schema.dropTable('intake_submissions').ifExists().execute();
    },
  };

  const intakeNotStarted: Migration = {
    async up(db) {
      // When a cancelled intake dropped a file it had not started: its status then says so.
      await db.schema.alterTable('intake_files').addColumn('dropped_at', 'text').execute();
    },
    async down(db) {
      await db.schema.alterTable('intake_files').dropColumn('dropped_at').execute();
    },
  };

  return {
    '0001_initial': initial,
    '0002_reconcile_findings': reconcileFindings,
    '0003_limits_and_notifications': limitsAndNotifications,
    '0004_redrive_queue': redriveQueue,
    '0005_file_claims': fileClaims,
    '0006_claims_of_recorded': claimsOfRecorded,
    '0007_intake_submissions': intakeSubmissions,
    '0008_intake_not_started': intakeNotStarted,
  };
}

export interface MigrateLedgerOptions {
  dialect: LedgerDialect;
  /**
   * PostgreSQL schema that holds the ledger; the connection's current schema when absent. Kysely
   * looks for its migration tables across all schemas unless told which one, so on PostgreSQL
   * the run always names one.
   */
  schema?: string;
  /** Absolute path of the SQLite file, so that runs of this process on one file take turns. */
  sqliteFile?: string;
}

/**
 * Brings the ledger's tables up to date. Returns the names of the migrations this call applied
 * (empty when there was nothing to do). Throws when a migration fails.
 */
export async function migrateLedger(db: LedgerDb, options: MigrateLedgerOptions): Promise<string[]> {
  if (options.dialect === 'postgres') {
    return runMigrations(db, 'postgres', options.schema ?? (await currentPgSchema(db)));
  }
  const run = () => runMigrations(db, 'sqlite', undefined);
  return options.sqliteFile ? oneAtATimePerFile(options.sqliteFile, run) : run();
}

async function runMigrations(db: LedgerDb, dialect: LedgerDialect, pgSchema: string | undefined): Promise<string[]> {
  const migrations = ledgerMigrations(dialect);
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: LEDGER_MIGRATION_TABLE,
    migrationLockTableName: LEDGER_MIGRATION_LOCK_TABLE,
    ...(pgSchema ? { migrationTableSchema: pgSchema } : {}),
    // 0004_redrive_queue and 0005_file_claims were written side by side: a ledger that has 0005
    // takes 0004 after it (the two touch different tables).
    allowUnorderedMigrations: true,
  });

  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (error === undefined) {
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    }
    const busy = sqliteUnavailability(error)?.kind === 'locked';
    if (dialect === 'sqlite' && (busy || isRaceLost(error)) && attempt < SQLITE_BUSY_RETRIES) {
      await sleep(25 * attempt + Math.floor(Math.random() * 25));
      continue;
    }
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`ledger migration${failed ? ` ${failed}` : ''} failed: ${message}`, { cause: error });
  }
}

async function currentPgSchema(db: LedgerDb): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) {
    throw new Error(
      'ledger: the PostgreSQL connection has no current schema (no schema of its search_path exists); ' +
        'add ?schema=<name> to the ledger URL',
    );
  }
  return schema;
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

/**
 * Another process applied the same migration between this run's check and its own DDL (SQLite
 * has no migration lock across processes): the failed run rolled back, and the next one finds
 * the migration applied.
 */
function isRaceLost(error: unknown): boolean {
  return error instanceof Error && /\balready exists\b/.test(error.message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
