/**
 * The ledger's tables as Kysely sees them. Table and column names are a contract (docs/concepts.md,
 * "The ledger"); the columns not listed there exist only to make writes idempotent or to track
 * updates:
 * - `sync_batches.updated_at`: when the row last changed.
 * - `interaction_events.event_key`: with `interaction_id`, unique, so a retried append is a no-op.
 *
 * Timestamps are ISO-8601 text (UTC, millisecond precision) in both backends, so rows read the
 * same whichever backend holds them.
 */
import type { Generated, Kysely } from 'kysely';
import type { BatchState, FileState } from '../shared';

/** Which SQL backend holds a ledger. */
export type LedgerDialect = 'sqlite' | 'postgres';

/** How a rollback ended: the copy is gone (DONE) or could not be removed (FAILED). */
export type RollbackStatus = 'DONE' | 'FAILED';

export interface SyncBatchesTable {
  batch_id: string;
  workflow_id: string;
  state: BatchState;
  total: number;
  recorded: number;
  rolled_back: number;
  failed: number;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface InteractionsTable {
  /** Increasing sequence number, assigned by the database. */
  seq: Generated<number>;
  interaction_id: string;
  batch_id: string;
  order_id: string;
  file_name: string;
  target: string;
  source_path: string;
  sha256: string;
  size_bytes: number;
  status: FileState;
  resends: number;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface InteractionEventsTable {
  id: Generated<number>;
  interaction_id: string;
  /** Names the event within its interaction; the same key is written once. */
  event_key: string;
  kind: string;
  detail: string | null;
  at: string;
}

export interface RollbacksTable {
  id: Generated<number>;
  interaction_id: string;
  batch_id: string;
  order_id: string;
  file_name: string;
  reason: string;
  status: RollbackStatus;
  attempts: number;
  created_at: string;
  finished_at: string | null;
}

/** What scheduled (and recorded) reconcile runs found; not one of the four tables of the origin documents. */
export interface ReconcileFindingsTable {
  id: Generated<number>;
  run_id: string;
  batch_id: string;
  kind: string;
  order_id: string;
  file_name: string;
  target: string;
  interaction_id: string | null;
  detail: string;
  found_at: string;
}

/**
 * The rate limits of running batches, shared by every worker: one row per scope (the batch's
 * bytes or requests, or a target's within the batch). `next_at_ms` is when the scope's next unit
 * of work may start (a cell-rate schedule: each reservation moves it on by amount / rate).
 */
export interface RateLimitsTable {
  scope: string;
  batch_id: string;
  per_second: number;
  next_at_ms: number;
  updated_at: string;
}

/** Each batch event sent to each notification URL: delivered, or why not. */
export interface NotificationsTable {
  id: Generated<number>;
  event_id: string;
  batch_id: string;
  event: string;
  /** The URL without its query string or credentials. */
  url: string;
  outcome: 'DELIVERED' | 'FAILED';
  attempts: number;
  error: string | null;
  created_at: string;
}

/**
 * Failed files queued for a redrive, one row per failed interaction redriven: a batch's running
 * workflow (or a redrive run of an ended batch) starts them in `position` order. The row of an
 * interaction is written once, so a file waiting for its redrive is not queued twice.
 */
export interface RedriveQueueTable {
  id: Generated<number>;
  batch_id: string;
  /** Place in the batch's queue, from 0, without gaps: the batch reads its queue by position. */
  position: number;
  order_id: string;
  file_name: string;
  target: string;
  source_path: string;
  /** The interaction that failed (ROLLED_BACK or ROLLBACK_FAILED) and that this redrive follows. */
  failed_interaction_id: string;
  failed_status: 'ROLLED_BACK' | 'ROLLBACK_FAILED';
  /** The file's redrive count in the batch: 1 for its first redrive. */
  attempt: number;
  queued_at: string;
}

/**
 * Who is delivering each file of each target now: one row per (target, order, file), naming the
 * interaction that claimed it last, its batch and its workflow. A claim whose interaction has
 * ended (its status is final) is free; see queries/claims.ts.
 */
export interface FileClaimsTable {
  target: string;
  order_id: string;
  file_name: string;
  interaction_id: string;
  batch_id: string;
  workflow_id: string;
  run_id: string | null;
  claimed_at: string;
}

/**
 * The intake's submissions, one row per idempotency key (queries/intake.ts): TAKING while a
 * request takes the key (named by `taker`, a lease from `taken_at`), ACCEPTED once the intake
 * workflow has the files.
 */
export interface IntakeSubmissionsTable {
  idempotency_key: string;
  order_id: string;
  body_sha256: string;
  state: 'TAKING' | 'ACCEPTED';
  taker: string;
  files: number;
  taken_at: string;
  accepted_at: string | null;
}

/** The files of each intake submission, for the order's status before a file has an interaction. */
export interface IntakeFilesTable {
  idempotency_key: string;
  order_id: string;
  file_name: string;
  target: string;
  source_path: string;
  submitted_at: string;
  /** Set when a cancelled intake dropped the file before it started. */
  dropped_at: string | null;
}

export interface LedgerDatabase {
  sync_batches: SyncBatchesTable;
  interactions: InteractionsTable;
  interaction_events: InteractionEventsTable;
  rollbacks: RollbacksTable;
  reconcile_findings: ReconcileFindingsTable;
  rate_limits: RateLimitsTable;
  notifications: NotificationsTable;
  redrive_queue: RedriveQueueTable;
  file_claims: FileClaimsTable;
  intake_submissions: IntakeSubmissionsTable;
  intake_files: IntakeFilesTable;
}

/** The ledger's tables, in the order they are created. */
export const LEDGER_TABLES = [
  'sync_batches',
  'interactions',
  'interaction_events',
  'rollbacks',
  'reconcile_findings',
  'rate_limits',
  'notifications',
  'redrive_queue',
  'file_claims',
  'intake_submissions',
  'intake_files',
] as const;

/** The query layer over the ledger's tables; only the ledger's own modules hold one. */
export type LedgerDb = Kysely<LedgerDatabase>;
