/**
 * The consistency ledger: what happened to every file, in SQL. See design.md, "Ledger".
 *
 * Every write is idempotent, so an activity retried by Temporal writes the same row once.
 */
import type { BatchState, FileState } from '../shared';
import type { NotificationOutcome, Reservation, ScopeLimit } from './pacing';
import type { NotificationRecord } from './schema';

export interface BatchRow {
  batch_id: string;
  workflow_id: string;
  state: BatchState;
  total: number;
  recorded: number;
  rolled_back: number;
  failed: number;
  created_at: string;
  finished_at: string | null;
}

export interface InteractionRow {
  seq: number;
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

export interface InteractionEventRow {
  id: number;
  interaction_id: string;
  kind: string;
  detail: string | null;
  at: string;
}

export type RollbackStatus = 'DONE' | 'FAILED';

export interface RollbackRow {
  id: number;
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

/** One drift or warning a reconcile run found, as kept in `reconcile_findings`. */
export interface ReconcileFindingRow {
  id: number;
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

export interface ReconcileFinding {
  kind: string;
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string | null;
  detail: string;
}

export interface OpenInteraction {
  interactionId: string;
  batchId: string;
  orderId: string;
  fileName: string;
  target: string;
  sourcePath: string;
  sha256: string;
  sizeBytes: number;
  status: FileState;
}

export interface Ledger {
  /** Creates or updates the tables; safe to run on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Which backend this is. */
  readonly dialect: 'sqlite' | 'postgres';

  /** Creates the batch row, or leaves an existing one as it is. */
  ensureBatch(b: { batchId: string; workflowId: string; total: number; state: BatchState }): Promise<void>;
  updateBatch(
    batchId: string,
    patch: Partial<{
      state: BatchState;
      total: number;
      recorded: number;
      rolledBack: number;
      failed: number;
      finished: boolean;
    }>,
  ): Promise<void>;
  getBatch(batchId: string): Promise<BatchRow | undefined>;

  /** Records a new interaction; returns its sequence number. Idempotent on interactionId. */
  openInteraction(i: OpenInteraction): Promise<{ seq: number }>;
  updateInteraction(
    interactionId: string,
    patch: Partial<{ status: FileState; resends: number; lastError: string | null; sha256: string; sizeBytes: number }>,
  ): Promise<void>;
  getInteraction(interactionId: string): Promise<InteractionRow | undefined>;
  /** All interactions of a batch, oldest first. */
  listInteractions(batchId: string): Promise<InteractionRow[]>;
  /** The (order, file) pairs whose latest interaction is RECORDED in some batch whose id starts with prefix. */
  recordedFilesOfBatches(prefix: string): Promise<{ orderId: string; fileName: string }[]>;
  /** The latest interaction of every (order, file) of a batch. */
  latestInteractions(batchId: string): Promise<InteractionRow[]>;
  /**
   * The latest interaction of every (order, file) of a batch whose status is one of `status`
   * (every file when omitted), e.g. the files a report lists as needing attention.
   */
  listBatchFilesByStatus(batchId: string, status?: FileState | readonly FileState[]): Promise<InteractionRow[]>;

  /**
   * Appends one event to the process log. `eventKey` makes the write idempotent: the same
   * (interactionId, eventKey) is written once.
   */
  appendEvent(e: { interactionId: string; eventKey: string; kind: string; detail?: unknown }): Promise<void>;
  listEvents(interactionId: string): Promise<InteractionEventRow[]>;

  /** Records a rollback (one per interaction); a later call updates its status and attempts. */
  recordRollback(r: {
    interactionId: string;
    batchId: string;
    orderId: string;
    fileName: string;
    reason: string;
    status: RollbackStatus;
    attempts: number;
  }): Promise<void>;
  listRollbacks(batchId: string): Promise<RollbackRow[]>;

  /**
   * One page of the latest interaction of every (order, file) of a batch, ordered by order and
   * file name, starting after `after` (from the start when null). Reading a batch page by page
   * keeps memory bounded by the page size.
   */
  latestInteractionsPage(
    batchId: string,
    after: { orderId: string; fileName: string } | null,
    limit: number,
  ): Promise<InteractionRow[]>;
  /** The rollback rows of the given interactions (at most one each). */
  rollbacksOf(interactionIds: readonly string[]): Promise<RollbackRow[]>;
  /** Keeps what one reconcile run found; the same (run, kind, target, order, file) is written once. */
  recordReconcileFindings(run: {
    runId: string;
    batchId: string;
    findings: readonly ReconcileFinding[];
  }): Promise<void>;
  /** The findings of every reconcile run of a batch, oldest first. */
  listReconcileFindings(batchId: string): Promise<ReconcileFindingRow[]>;
  /** The batches with an interaction whose source lies under folder `dir`, by first interaction. */
  batchIdsWithSourcesUnder(dir: string): Promise<string[]>;

  /** Sets, changes or (with 0) lifts the rate limits of a batch's scopes (pacing.ts). */
  setRateLimits(batchId: string, limits: readonly ScopeLimit[]): Promise<void>;
  /** Reserves `amount` units in each limited scope; undefined when none of them is limited. */
  reserveRate(scopes: readonly string[], amount: number): Promise<Reservation | undefined>;
  /** Drops the rate limits of an ended batch. */
  clearRateLimits(batchId: string): Promise<void>;
  /** Records how one event's delivery to one URL went (each attempt replaces the last; `ifNew`: only a first record). */
  recordNotification(n: NotificationOutcome, ifNew?: boolean): Promise<void>;
  listNotifications(batchId: string): Promise<NotificationRecord[]>;
}
