/**
 * The consistency ledger: what happened to every file, in SQL. See docs/concepts.md, "The ledger".
 *
 * Every write is idempotent, so an activity retried by Temporal writes the same row once.
 * The rows it returns are the tables' own rows (schema.ts), as Kysely selects them.
 */
import type { Selectable } from 'kysely';
import type { BatchState, FileState } from '../shared';
import type {
  InteractionEventsTable,
  InteractionsTable,
  LedgerDialect,
  NotificationsTable,
  ReconcileFindingsTable,
  RedriveQueueTable,
  RollbacksTable,
  RollbackStatus,
  SyncBatchesTable,
} from './schema';

/** A batch row; `updated_at` is the ledger's own bookkeeping and is not returned. */
export type BatchRow = Omit<Selectable<SyncBatchesTable>, 'updated_at'>;

export type InteractionRow = Selectable<InteractionsTable>;

/** An event of the process log; `event_key` only makes appends idempotent and is not returned. */
export type InteractionEventRow = Omit<Selectable<InteractionEventsTable>, 'event_key'>;

export type RollbackRow = Selectable<RollbacksTable>;

/** How one batch event's delivery to one URL went, as kept in `notifications`. */
export type NotificationRow = Selectable<NotificationsTable>;

/** The limit of one scope: units (bytes or requests) per second; 0 lifts it. */
export interface ScopeLimit {
  scope: string;
  perSecond: number;
}

/** When a reservation may start, and the slowest rate among its scopes. */
export interface Reservation {
  startAtMs: number;
  slowestPerSecond: number;
}

export interface NotificationOutcome {
  eventId: string;
  batchId: string;
  event: string;
  url: string;
  outcome: 'DELIVERED' | 'FAILED';
  attempts: number;
  error?: string;
}

/** A failed file queued for a redrive, as kept in `redrive_queue`. */
export type RedriveRow = Selectable<RedriveQueueTable>;

/** What a batch's redrive queue holds from one position on: how many, of which failed status. */
export interface RedriveTally {
  /** One past the batch's highest position: where the next file queued goes. */
  end: number;
  rolledBack: number;
  rollbackFailed: number;
}

/** One drift or warning a reconcile run found, as kept in `reconcile_findings`. */
export type ReconcileFindingRow = Selectable<ReconcileFindingsTable>;

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

export interface NewBatch {
  batchId: string;
  workflowId: string;
  total: number;
  state: BatchState;
}

export type BatchPatch = Partial<{
  state: BatchState;
  total: number;
  recorded: number;
  rolledBack: number;
  failed: number;
  /** true stamps `finished_at` unless it is already set; false clears it (the batch runs again). */
  finished: boolean;
}>;

export type InteractionPatch = Partial<{
  status: FileState;
  resends: number;
  lastError: string | null;
  sha256: string;
  sizeBytes: number;
}>;

export interface NewEvent {
  interactionId: string;
  /** Names the event within its interaction: the same (interactionId, eventKey) is written once. */
  eventKey: string;
  kind: string;
  detail?: unknown;
  /** When it happened (ISO-8601, UTC); the time of writing when absent. */
  at?: string;
}

/** An event of a {@link Ledger.recordStep}: its interaction is the step's. */
export type StepEvent = Omit<NewEvent, 'interactionId'>;

export interface RollbackRecord {
  interactionId: string;
  batchId: string;
  orderId: string;
  fileName: string;
  reason: string;
  status: RollbackStatus;
  attempts: number;
}

/** A file of a batch: where a page of files starts after. */
export interface FileRef {
  orderId: string;
  fileName: string;
}

/** Which of a batch's latest interactions to read. */
export interface LatestFilter {
  /** Only files whose latest interaction has one of these statuses (every file when omitted). */
  status?: FileState | readonly FileState[];
  /**
   * One page of at most `limit` files in (order_id, file_name) order, after `after` (from the
   * start when null). Reading a batch page by page keeps memory bounded by the page size.
   */
  page?: { after: FileRef | null; limit: number };
}

/** A batch's numbers, counted by the database. */
export interface BatchCounts {
  /** Every interaction of the batch, redrives included. */
  interactions: number;
  /** Files by the status of their latest interaction; a status no file has is absent. */
  files: Partial<Record<FileState, number>>;
}

/** A file at a target with the checksum of its bytes. */
export interface FileWithChecksum {
  target: string;
  orderId: string;
  fileName: string;
  sha256: string;
}

/** A file some batch holds RECORDED: one row of {@link Ledger.recordedFilesAfter}. */
export interface RecordedFile extends FileWithChecksum {
  /** The interaction's sequence number: the next page starts after the last one. */
  seq: number;
}

/** The key a file has in the set {@link Ledger.recordedWithSameChecksum} returns. */
export function fileWithChecksumKey(f: FileWithChecksum): string {
  return `${f.target}\u0000${f.orderId}\u0000${f.fileName}\u0000${f.sha256}`;
}

/** A destination file: what a claim is about. */
export interface ClaimedFile {
  target: string;
  orderId: string;
  fileName: string;
}

/** A claim on a destination file by one interaction, named with its batch and its workflow. */
export interface FileClaim extends ClaimedFile {
  interactionId: string;
  batchId: string;
  workflowId: string;
  /** The workflow run, when known. */
  runId?: string;
}

/** Who holds a claim, and how far its interaction is (null when the ledger has no such interaction). */
export interface ClaimHolder {
  interactionId: string;
  batchId: string;
  workflowId: string;
  runId: string | null;
  claimedAt: string;
  status: FileState | null;
}

/**
 * How a claim went: taken (`from`: the holder it was taken from, whose interaction had ended or
 * was named to be taken over), or held by a live interaction of another.
 */
export type ClaimOutcome = { taken: true; from?: ClaimHolder } | { taken: false; holder: ClaimHolder };

/** A file's bytes at a target, as the ledger records them. */
export interface FileBytes extends ClaimedFile {
  sha256: string;
  size: number;
}

/** What the event log says of one interaction, for a per-file report. */
export interface InteractionTrail {
  /**
   * What failed last: the rule of a VERIFY_FAILED event (`missing`, `size`, `checksum`,
   * `idempotency-key`), or `send` for a SEND_FAILED one (rejected, unavailable, ...: the
   * interaction's last_error says which); null when nothing failed.
   */
  failedRule: string | null;
  /** When the first send of the interaction was recorded (its first SENT or SEND_FAILED event). */
  firstSentAt: string | null;
  /** When the latest event of the interaction was written. */
  lastEventAt: string | null;
}

/** One intake submission as the ledger keeps it (queries/intake.ts). */
export interface IntakeSubmissionRecord {
  idempotencyKey: string;
  orderId: string;
  bodySha256: string;
  /** Names the request taking the key (a lease holder). */
  taker: string;
  files: readonly { fileName: string; target: string; sourcePath: string }[];
}

/**
 * What taking a submission's key found: `taken` (the caller hands the files over; `takeover`
 * when an earlier request's lease had run out), `accepted` (done before with the same body),
 * `in_progress` (another request holds the key), `key_reused` (the key came with another body).
 */
export type IntakeTakeOutcome =
  { kind: 'taken'; takeover: boolean } | { kind: 'accepted' } | { kind: 'in_progress' } | { kind: 'key_reused' };

/** A file of an order accepted by the intake, at its latest submission. */
export interface SubmittedFile {
  fileName: string;
  target: string;
  submittedAt: string;
  /** When a cancelled intake dropped it before it started; null otherwise. */
  droppedAt: string | null;
}

export interface Ledger {
  /** Creates or updates the tables; safe to run on every start. */
  migrate(): Promise<void>;
  /** Closes the connection(s). Safe to call more than once. */
  close(): Promise<void>;
  /** Which backend this is. */
  readonly dialect: LedgerDialect;
  /**
   * Settles, with why, when this ledger can no longer vouch for its writes: a SQLite ledger whose
   * WAL could not be fsynced (see group-commit.ts). From then on every operation fails with
   * LedgerUnavailableError, and the process should stop, so that it starts again on what the
   * disk holds. Absent where it cannot happen (PostgreSQL stops its own server on such a failure).
   */
  readonly lost?: Promise<Error>;

  // Batches (queries/batches.ts)

  /** Creates the batch row, or leaves an existing one as it is. */
  ensureBatch(b: NewBatch): Promise<void>;
  updateBatch(batchId: string, patch: BatchPatch): Promise<void>;
  getBatch(batchId: string): Promise<BatchRow | undefined>;
  /** The batches, newest first (by creation time, then id), only those in `state` when given. */
  listBatches(opts?: { state?: BatchState; limit?: number }): Promise<BatchRow[]>;

  // Interactions (queries/interactions.ts)

  /** Records a new interaction; returns its sequence number. Idempotent on interactionId. */
  openInteraction(i: OpenInteraction): Promise<{ seq: number }>;
  updateInteraction(interactionId: string, patch: InteractionPatch): Promise<void>;
  getInteraction(interactionId: string): Promise<InteractionRow | undefined>;
  /** All interactions of a batch, oldest first. */
  listInteractions(batchId: string): Promise<InteractionRow[]>;
  /**
   * The latest interaction of every (order, file) of a batch, in seq order; see
   * {@link LatestFilter} for a status filter and for reading page by page.
   */
  latestInteractions(batchId: string, filter?: LatestFilter): Promise<InteractionRow[]>;
  /** How many interactions a batch has, and how many of its files are in each status. */
  batchCounts(batchId: string): Promise<BatchCounts>;
  /** Interactions of the batch that reached an end state at or after `since` (ISO-8601): the recent rate. */
  filesEndedSince(batchId: string, since: string): Promise<number>;
  /** The (order, file) pairs whose latest interaction is RECORDED in some batch whose id starts with prefix. */
  recordedFilesOfBatches(prefix: string): Promise<FileRef[]>;
  /**
   * Which of `files` (at most a few thousand: they are looked up in slices) are RECORDED by the
   * latest interaction of some batch whose id starts with prefix; each found file once.
   */
  recordedOfBatchesAmong(prefix: string, files: readonly FileRef[]): Promise<FileRef[]>;
  /**
   * Which of `files` some batch's latest interaction holds RECORDED with the same sha256 at the
   * same target; returns their {@link fileWithChecksumKey}s. Up to `scanAbove` files are looked
   * up by checksum; more are matched in one paged pass over the RECORDED interactions.
   */
  recordedWithSameChecksum(
    files: readonly FileWithChecksum[],
    opts?: { scanAbove?: number; pageSize?: number },
  ): Promise<Set<string>>;
  /**
   * A page of the files some batch's latest interaction holds RECORDED, with their target and
   * sha256, in seq order after `afterSeq` (0 for the first page), at most `limit`: one paged pass
   * over the ledger, in the same memory whatever its size.
   */
  recordedFilesAfter(afterSeq: number, limit: number): Promise<RecordedFile[]>;
  /** The batches with an interaction whose source lies under folder `dir`, by first interaction. */
  batchIdsWithSourcesUnder(dir: string): Promise<string[]>;

  // Claims (queries/claims.ts)

  /**
   * Claims a destination file for an interaction before it sends. Taken when no one holds it,
   * the caller already does, the holder's interaction has ended or is not in the ledger, or the
   * holder is `over` (a holder whose workflow the caller has seen closed). Idempotent.
   */
  claimFile(claim: FileClaim, opts?: { over?: string }): Promise<ClaimOutcome>;
  /**
   * Opens an interaction (as openInteraction), writes its OPENED event (`opened` and the seq as
   * detail) and claims its file, in one transaction. `firstClaim`: the file had no claim row, so
   * this interaction holds it and no interaction of the file ever claimed it, hence none
   * recorded it (every delivery claims first; migration 0006 gave older recorded files a row).
   * False when a row exists (this interaction's own, on a retry, included): claimFile decides.
   */
  openClaimed(
    i: OpenInteraction,
    claim: FileClaim,
    opened: Record<string, unknown>,
  ): Promise<{ seq: number; firstClaim: boolean }>;
  /**
   * The interactions of a batch that found their file already held and were RECORDED without
   * a second upload, with the interaction whose copy is held (their ALREADY_HELD events).
   */
  alreadyHeldIn(batchId: string): Promise<Map<string, string>>;
  /** Who holds the claim of a file, if anyone ever claimed it. */
  claimOf(file: ClaimedFile): Promise<ClaimHolder | undefined>;
  /**
   * The newest interaction, of any batch, that recorded this file at this target with these
   * bytes and is still its batch's latest for the file (RECORDED): the target holds the bytes.
   */
  recordedWithBytes(
    file: FileBytes,
    opts?: { excludingInteraction?: string; excludingBatch?: string },
  ): Promise<InteractionRow | undefined>;

  // Events (queries/events.ts)

  /** Appends one event to the process log, once per (interactionId, eventKey). */
  appendEvent(e: NewEvent): Promise<void>;
  /**
   * One step of an interaction in one transaction: appends its events (each once per eventKey,
   * in the order given) and applies `patch` to its row. A send and its verdict cost one commit,
   * and a reader never sees the verdict's event without the status it sets.
   */
  recordStep(interactionId: string, events: readonly StepEvent[], patch?: InteractionPatch): Promise<void>;
  listEvents(interactionId: string): Promise<InteractionEventRow[]>;
  /** The trail of every interaction of a batch that has events, by interaction id. */
  interactionTrails(batchId: string): Promise<Map<string, InteractionTrail>>;

  // Rollbacks (queries/rollbacks.ts)

  /** Records a rollback (one per interaction); a later call updates its status and attempts. */
  recordRollback(r: RollbackRecord): Promise<void>;
  listRollbacks(batchId: string): Promise<RollbackRow[]>;
  /** The rollback rows of the given interactions (at most one each). */
  rollbacksOf(interactionIds: readonly string[]): Promise<RollbackRow[]>;

  // The redrive queue (queries/redrive-queue.ts)

  /**
   * Queues up to `limit` (default 500) of a batch's redrive candidates, at the end of its queue:
   * files whose latest interaction is ROLLED_BACK or ROLLBACK_FAILED and is not queued yet, only
   * the named ones when `files` is given. Returns how many it queued; fewer than `limit` means
   * none is left.
   */
  queueRedrive(batchId: string, opts?: { files?: readonly FileRef[]; limit?: number }): Promise<number>;
  /** A page of a batch's queue: up to `limit` rows from position `from` on, in position order. */
  queuedRedrives(batchId: string, page: { from: number; limit: number }): Promise<RedriveRow[]>;
  /** What the batch's queue holds from position `from` on. */
  redriveTally(batchId: string, from: number): Promise<RedriveTally>;
  /**
   * Which of `files` cannot be queued: their latest interaction in the batch is not ROLLED_BACK
   * or ROLLBACK_FAILED, or it is queued already (at a position below `queuedFrom` when given:
   * those from it on count as queued by the caller's own request).
   */
  notRedrivable(batchId: string, files: readonly FileRef[], opts?: { queuedFrom?: number }): Promise<FileRef[]>;
  /**
   * Drops the rows of a batch that never ran (their failed interaction is still the file's
   * latest), so those files can be queued again; for a batch that has ended. Returns how many.
   */
  clearRedriveQueue(batchId: string): Promise<number>;

  // Intake submissions (queries/intake.ts)

  /** Takes a submission's idempotency key, or says why not; a TAKING row older than leaseMs is taken over. */
  takeSubmission(s: IntakeSubmissionRecord, leaseMs: number): Promise<IntakeTakeOutcome>;
  /** The intake workflow has the submission's files: they are written, and the key is ACCEPTED. */
  acceptSubmission(s: Pick<IntakeSubmissionRecord, 'idempotencyKey' | 'orderId' | 'files'>): Promise<void>;
  /** Drops a submission still being taken by `taker` (nothing was handed over). */
  releaseSubmission(idempotencyKey: string, taker: string): Promise<void>;
  /** Notes that a cancelled intake dropped these files before they started (their latest submissions). */
  dropSubmittedFiles(files: readonly { orderId: string; fileName: string; target: string }[]): Promise<void>;
  /** The files of an order the intake accepted, each at its latest submission. */
  submittedFiles(orderId: string): Promise<SubmittedFile[]>;
  /** The latest interaction of each file of an order in the given batches. */
  latestInteractionsOfOrder(batchIds: readonly string[], orderId: string): Promise<InteractionRow[]>;

  // Reconcile findings (queries/reconcile-findings.ts)

  /** Keeps what one reconcile run found; the same (run, kind, target, order, file) is written once. */
  recordReconcileFindings(run: {
    runId: string;
    batchId: string;
    findings: readonly ReconcileFinding[];
  }): Promise<void>;
  /** The findings of every reconcile run of a batch, oldest first. */
  listReconcileFindings(batchId: string): Promise<ReconcileFindingRow[]>;

  // Rate limits (queries/rate-limits.ts)

  /** Sets, changes or (with 0) lifts the rate limits of a batch's scopes. */
  setRateLimits(batchId: string, limits: readonly ScopeLimit[]): Promise<void>;
  /** Reserves `amount` units in each limited scope; undefined when none of them is limited. */
  reserveRate(scopes: readonly string[], amount: number): Promise<Reservation | undefined>;
  /** Drops the rate limits of an ended batch. */
  clearRateLimits(batchId: string): Promise<void>;

  // Notifications (queries/notifications.ts)

  /** Records how one event's delivery to one URL went (each attempt replaces the last; `ifNew`: only a first record). */
  recordNotification(n: NotificationOutcome, ifNew?: boolean): Promise<void>;
  /** What was sent for a batch, oldest first. */
  listNotifications(batchId: string): Promise<NotificationRow[]>;
}

/** The ledger's queries: everything but opening, migrating and closing. */
export type LedgerQueries = Omit<Ledger, 'migrate' | 'close' | 'dialect'>;
