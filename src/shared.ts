/**
 * Names and types shared by the client side (CLI, worker) and the workflows.
 *
 * Everything here is a contract listed in the design: workflow types, ids, signals, queries and
 * search attributes are relied upon by operators, scripts and the Web UI. This module must stay
 * free of Node imports: the workflow bundle includes it.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  BatchLimits,
  LimitsChange,
  LimitsResult,
  NotifyEventName,
  NotifyOptions,
  RateLimit,
} from './limits/types';

export const DEFAULT_TASK_QUEUE = 'image-sync';
export const BATCH_WORKFLOW_TYPE = 'syncBatch';
export const FILE_WORKFLOW_TYPE = 'syncFile';
export const SCHEDULED_WORKFLOW_TYPE = 'scheduledSync';

export function batchWorkflowId(batchId: string): string {
  return `sync-batch/${batchId}`;
}

export function fileWorkflowId(batchId: string, orderId: string, fileName: string): string {
  return `sync-batch/${batchId}/${orderId}/${fileName}`;
}

/** The key of one file within a batch, as operators write it: `ORDER/FILE`. */
export function fileKey(orderId: string, fileName: string): string {
  return `${orderId}/${fileName}`;
}

// ---------------------------------------------------------------------------------------------
// States

export const BATCH_STATES = [
  'RUNNING',
  'PAUSED',
  'COMPLETED',
  'COMPLETED_WITH_FAILURES',
  'FAILED',
  'CANCELLED',
] as const;
export type BatchState = (typeof BATCH_STATES)[number];

export const FILE_STATES = [
  'SENDING',
  'VERIFYING',
  'RESENDING',
  'RECORDED',
  'ROLLING_BACK',
  'ROLLED_BACK',
  'ROLLBACK_FAILED',
  'CANCELLED',
] as const;
export type FileState = (typeof FILE_STATES)[number];

/** The states a file workflow can end in. */
export type FileOutcome = Extract<FileState, 'RECORDED' | 'ROLLED_BACK' | 'ROLLBACK_FAILED' | 'CANCELLED'>;

// ---------------------------------------------------------------------------------------------
// Search attributes (also listed in temporal-config/search-attributes.json)

export const SA_BATCH_ID = defineSearchAttributeKey('SyncBatchId', SearchAttributeType.KEYWORD);
export const SA_ORDER_ID = defineSearchAttributeKey('SyncOrderId', SearchAttributeType.KEYWORD);
export const SA_TARGET = defineSearchAttributeKey('SyncTarget', SearchAttributeType.KEYWORD);
export const SA_STATE = defineSearchAttributeKey('SyncState', SearchAttributeType.KEYWORD);
export const SA_RESENDS = defineSearchAttributeKey('SyncResends', SearchAttributeType.INT);
export const SA_FILES_TOTAL = defineSearchAttributeKey('SyncFilesTotal', SearchAttributeType.INT);
export const SA_FILES_FAILED = defineSearchAttributeKey('SyncFilesFailed', SearchAttributeType.INT);

// ---------------------------------------------------------------------------------------------
// Inputs

/** One image file to send, as read from a manifest. Paths are absolute once resolved. */
export interface SyncItem {
  orderId: string;
  fileName: string;
  /** Absolute path of the source file on the worker's file system. */
  sourcePath: string;
  /** Expected sha256 (hex) from the manifest, when given. */
  sha256?: string;
  /** Name of the recording-system target; the default target when absent. */
  target?: string;
  contentType?: string;
}

export interface BatchPolicy {
  /** Files in flight at once. */
  maxConcurrency: number;
  /** Resends of one file before it is rolled back. */
  maxResends: number;
  /** First wait before a resend, in milliseconds; doubles with each resend. */
  resendBackoffMs: number;
  /** Percentage of failed files past which the batch stops starting files and ends FAILED. */
  toleratedFailurePercent: number;
  /** On failure or cancellation, roll back the files already recorded in the batch too. */
  atomic: boolean;
  /**
   * Consecutive transport failures (5xx, timeouts, refused connections) across files after
   * which the batch pauses by itself; 0 never pauses.
   */
  outagePauseAfter: number;
  /** While paused for an outage, how often the recording system is probed, in milliseconds. */
  probeIntervalMs: number;
  /**
   * Files up to this size are sent inside the file workflow's task, by a local activity; larger
   * ones by a regular activity that heartbeats (long transfers).
   */
  localSendMaxBytes: number;
  /**
   * Send a file even when the ledger shows its bytes already recorded at the target by an
   * earlier interaction (`start --resend-recorded`); by default such a file is RECORDED without
   * a second upload.
   */
  resendRecorded?: boolean;
  /**
   * How long a file waits in all, in milliseconds, while another live interaction (another
   * batch, a schedule's run, a redrive) holds its claim; then it fails without having sent
   * anything, and is rolled back. DEFAULT_POLICY's when absent.
   */
  claimPatienceMs?: number;
}

export const DEFAULT_POLICY: BatchPolicy = {
  maxConcurrency: 20,
  maxResends: 3,
  resendBackoffMs: 1_000,
  toleratedFailurePercent: 100,
  atomic: false,
  outagePauseAfter: 5,
  probeIntervalMs: 15_000,
  localSendMaxBytes: 8 * 1024 * 1024,
  claimPatienceMs: 30 * 60_000,
};

export interface SyncBatchInput {
  batchId: string;
  /** Absolute path of the normalised manifest (NDJSON of SyncItem) the worker reads in pages. */
  manifestPath: string;
  total: number;
  policy: BatchPolicy;
  /** Set by the batch itself when it continues as new. */
  carry?: BatchCarry;
  /**
   * A run that redrives the failed files of an ended batch: the positions [from, to) of the
   * batch's redrive queue in the ledger; it starts no file of the manifest.
   */
  redrive?: { from: number; to: number };
  /** Continue as new once a run's history holds this many events (default 4,000). */
  continueAsNewAfterEvents?: number;
  /**
   * Items read from the manifest or the redrive queue per activity call (default 200): with
   * `failuresKept`, what bounds the batch's largest payloads (a server with a low payload limit,
   * or items with long names, takes smaller pages).
   */
  pageSize?: number;
  /** Latest failures the batch keeps for its query, details and result (default and most MAX_FAILURES_KEPT). */
  failuresKept?: number;
  /** Limits of the whole batch (`start --max-bytes-per-second`); the targets' own come from the targets file. */
  limits?: RateLimit;
  /** Where the batch's events are POSTed (`start --notify`, IMAGE_SYNC_NOTIFY_URLS). */
  notify?: NotifyOptions;
}

export interface SyncFileInput {
  batchId: string;
  item: SyncItem;
  policy: Pick<
    BatchPolicy,
    'maxResends' | 'resendBackoffMs' | 'localSendMaxBytes' | 'resendRecorded' | 'claimPatienceMs'
  >;
  /** Workflow id of the parent batch, told of transport faults by signal. Absent when run on its own. */
  parentWorkflowId?: string;
  /** Redrive count: 0 for the first run of this file in the batch. */
  attempt: number;
  /** The batch has rate limits: the file is sent by the regular activity, paced by them. */
  paced?: boolean;
}

/** What each run of a schedule (`image-sync schedule create`) is started with. */
export interface ScheduledSyncInput {
  scheduleId: string;
  /** Absolute path of the folder of `<orderId>/<file>` to pick new files up from. */
  dir: string;
  /** Absolute path of the folder where the runs' normalised manifests are written. */
  stateDir: string;
  policy: BatchPolicy;
  /** Files modified more recently than this are left for the next run: they may still be written. */
  settleMs: number;
  /** Limits of each run's batch. */
  limits?: RateLimit;
  /** Where each run's batch POSTs its events. */
  notify?: NotifyOptions;
}

export interface ScheduledSyncResult {
  batchId: string | null;
  files: number;
  skippedInvalid: number;
  result?: BatchResult;
}

export function scheduleBatchPrefix(scheduleId: string): string {
  return `${scheduleId}-run-`;
}

export interface FileResult {
  orderId: string;
  fileName: string;
  state: FileOutcome;
  interactionId: string | null;
  resends: number;
  reason?: string;
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface Progress {
  total: number;
  started: number;
  inFlight: number;
  recorded: number;
  rolledBack: number;
  rollbackFailed: number;
  cancelled: number;
  resends: number;
  paused: boolean;
  /** Why a paused batch is paused: by an operator, or by itself for an outage of one target. */
  pause?: { by: 'operator' } | { by: 'outage'; target: string; since: string; lastError: string };
  state: BatchState | FileState;
  /** A batch's: files it has in flight at most, now (set-concurrency changes it). */
  maxConcurrency?: number;
  /** A batch's: the rate limits in force, its own and each target's (set-limits changes them). */
  limits?: BatchLimits;
}

export interface FailureInfo {
  orderId: string;
  fileName: string;
  state: FileOutcome;
  reason: string;
  resends: number;
}

/** Failures a batch keeps for the `failures` query, its details and its result; the ledger has all. */
export const MAX_FAILURES_KEPT = 100;

/** What a batch carries into its next run when it continues as new. */
export interface BatchCarry {
  /** Index in the manifest of the next file to start. */
  nextIndex: number;
  /**
   * Files started and not yet ended, by file key, with the run id once the start is confirmed.
   * A run that continues as new carries them; the next run learns how they ended by activity.
   * Never more than the batch's max concurrency.
   */
  inFlight: Record<string, { workflowId: string; runId?: string }>;
  counts: Omit<Progress, 'paused' | 'state' | 'total'>;
  /**
   * The latest failures, newest first, at most MAX_FAILURES_KEPT, for the `failures` query and
   * the details. Every failed file, its interactions and its redrives are in the ledger.
   */
  recentFailures: FailureInfo[];
  /**
   * How far the batch has read its redrive queue (the ledger's `redrive_queue`): positions
   * below `taken` have started, those from `taken` to `queued` wait for a free slot.
   */
  redrive: { queued: number; taken: number };
  paused: boolean;
  /** Paused by the batch itself for an outage (not by an operator): resumes when a probe succeeds. */
  outage?: { target: string; since: string; lastError: string };
  /** Transport failures in a row, reset by any recorded file. */
  consecutiveFaults: number;
  cancelRequested: boolean;
  cancelReason?: string;
  maxConcurrency: number;
  /** The limits in force: the batch's own and each target's (set by openBatch, changed by setLimits). */
  limits?: BatchLimits;
  /** Notifications that could not be delivered. */
  notifyFailures?: { count: number; last: string };
  /** No new file starts: the tolerated failure percentage was passed. */
  stopStarting: boolean;
  failedBatch: boolean;
}

export interface LedgerTotals {
  recorded: number;
  rolledBack: number;
  failed: number;
}

/** Where a batch stands: its state and how its files ended so far. */
export interface BatchTally {
  batchId: string;
  state: BatchState;
  total: number;
  recorded: number;
  rolledBack: number;
  rollbackFailed: number;
  cancelled: number;
}

/** The JSON document POSTed for one event. */
export interface NotifyBody extends BatchTally {
  /** Unique per event: a receiver that sees it twice (a retry after a lost answer) can drop the copy. */
  id: string;
  event: NotifyEventName;
  at: string;
  /** Why, for paused, resumed and threshold_exceeded; the drift counts for reconcile.drift. */
  detail?: Record<string, unknown>;
}

export interface BatchResult extends BatchTally {
  resends: number;
  failures: FailureInfo[];
  /** What the ledger holds for the batch once it ended. */
  ledger: LedgerTotals;
}

// ---------------------------------------------------------------------------------------------
// Signals and queries

export const cancelSignal = defineSignal<[reason?: string]>('cancel');
export const batchRetrySignal = defineSignal<[args?: { files?: string[] }]>('retry');
export const fileRetrySignal = defineSignal<[]>('retry');
export const pauseSignal = defineSignal<[]>('pause');
export const resumeSignal = defineSignal<[]>('resume');
/** Sent by a file workflow to its batch when a send failed for transport reasons. */
export const transportFaultSignal =
  defineSignal<[fault: { orderId: string; fileName: string; target: string; error: string }]>('transportFault');
/** Changes the batch's max concurrency while it runs. */
export const setConcurrencySignal = defineSignal<[maxConcurrency: number]>('setMaxConcurrency');

export const progressQuery = defineQuery<Progress>('progress');
export const failuresQuery = defineQuery<FailureInfo[]>('failures');

// ---------------------------------------------------------------------------------------------
// Updates: the operator actions, confirmed. A validator refuses a request that cannot apply
// before it enters history; the caller gets the result. Same names as the signals.

/** The state a paused, resumed or cancelled batch is in (cancelled: the state it ends in). */
export interface BatchStateResult {
  batchId: string;
  state: BatchState;
}
export interface RetryResult {
  batchId: string;
  /** The files queued for a redrive, as ORDER/FILE: the first MAX_FAILURES_KEPT of them. */
  requeued: string[];
  /** How many files were queued (the ledger's redrive queue holds every one). */
  requeuedCount: number;
}
export interface ConcurrencyResult {
  batchId: string;
  maxConcurrency: number;
}

export const cancelUpdate = defineUpdate<BatchStateResult, [reason?: string]>('cancel');
export const pauseUpdate = defineUpdate<BatchStateResult, []>('pause');
export const resumeUpdate = defineUpdate<BatchStateResult, []>('resume');
export const retryUpdate = defineUpdate<RetryResult, [args?: { files?: string[] }]>('retry');
export const setConcurrencyUpdate = defineUpdate<ConcurrencyResult, [maxConcurrency: number]>('setMaxConcurrency');
/** Changes the batch's limits, or a target's limits within the batch, while it runs. */
export const setLimitsUpdate = defineUpdate<LimitsResult, [change: LimitsChange]>('setLimits');

// ---------------------------------------------------------------------------------------------
// Limits and notifications (their types live in limits/types.ts)

export * from './limits/types';
