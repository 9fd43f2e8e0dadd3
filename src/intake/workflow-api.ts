/**
 * The intake workflow's names and types, shared by the backend (the client side) and the
 * workflow. No Node imports: the workflow bundle includes this module.
 *
 * One intake workflow runs per target. Its workflow id is the batch workflow id of the ledger
 * batch `intake-<target>`, so every batch tool works on it unchanged: `status`, `pause`,
 * `resume`, `cancel`, `retry`, `set-concurrency`, `set-limits`, `report` and `reconcile` take
 * `intake-<target>` as the batch id.
 */
import { defineUpdate } from '@temporalio/workflow';
import { batchWorkflowId, type BatchCarry, type BatchPolicy, type NotifyOptions, type SyncItem } from '../shared';

export const INTAKE_WORKFLOW_TYPE = 'intake';
/** Ledger batch ids of the intake start with this; a manual batch should not use it. */
export const INTAKE_BATCH_PREFIX = 'intake-';

export function intakeBatchId(target: string): string {
  return `${INTAKE_BATCH_PREFIX}${target}`;
}

/** The intake's workflow id: that of its ledger batch, so the batch commands find it. */
export function intakeWorkflowIdOf(batchId: string): string {
  return batchWorkflowId(batchId);
}

/**
 * Task-queue priority of the intake and its files (1 is the highest; batches have the default,
 * 3): on a server whose matcher honours priorities, an order someone waits on goes ahead of bulk.
 */
export const INTAKE_PRIORITY_KEY = 1;
/** Files waiting in one intake workflow (accepted, not yet started) at most, by default. */
export const DEFAULT_MAX_WAITING = 1_000;
/**
 * The files waiting in one intake at most, by default, counted as the intake carries them (their
 * JSON, in UTF-8 bytes). They travel in the input of each continue-as-new, which the Temporal
 * server refuses past 2 MiB, ending the intake; this leaves room for the rest of what it carries
 * (at most about 100 KiB). It is above what one submission of the default body limit (1 MiB)
 * carries, and at the usual 200 to 400 bytes a file the count bound (DEFAULT_MAX_WAITING) is met
 * first.
 */
export const DEFAULT_MAX_WAITING_BYTES = 1.5 * 1024 * 1024;
/** Keys of the latest submissions an intake remembers, across runs, to take each once. */
export const RECENT_KEYS_KEPT = 256;

export interface IntakeInput {
  target: string;
  /** The ledger batch of the intake's files: intakeBatchId(target) unless the backend was told otherwise. */
  batchId: string;
  policy: BatchPolicy;
  /** Files waiting at most; a submission that would pass it is refused as saturated. */
  maxWaiting: number;
  /** The same, in bytes as the files are carried (DEFAULT_MAX_WAITING_BYTES when absent). */
  maxWaitingBytes?: number;
  notify?: NotifyOptions;
  /** Continue as new once a run's history holds this many events (default 4,000). */
  continueAsNewAfterEvents?: number;
  /** Set by the intake itself when it continues as new. */
  carry?: IntakeCarry;
}

/** What an intake carries into its next run: the batch's carry, the files waiting, the latest keys. */
export interface IntakeCarry {
  batch: BatchCarry;
  /** Files accepted, not yet started (at most maxWaiting), oldest first. */
  waiting: SyncItem[];
  /** Files accepted since the intake began (the batch's "total"). */
  accepted: number;
  /** The latest submissions' keys (at most RECENT_KEYS_KEPT), newest last. */
  recentKeys: string[];
}

/** One submission's files for this intake's target. */
export interface IntakeParcel {
  idempotencyKey: string;
  orderId: string;
  files: SyncItem[];
  /**
   * The waiting bounds of the intake server handing the submission over, checked at this
   * submission, so that a server's settings apply to an intake that is already running. The
   * intake's own input's bounds when absent.
   */
  bounds?: { maxWaiting: number; maxWaitingBytes: number };
}

export interface IntakeReceipt {
  /** Files taken into the intake by this update (0 when its key had been taken before). */
  accepted: number;
  /** Files waiting after it. */
  waiting: number;
  replayed: boolean;
}

/** The failure type an intake's update validator refuses with when too many files wait. */
export const SATURATED_FAILURE = 'IntakeSaturated';
/** The failure type for an intake that is cancelled (the next submission starts a new one). */
export const INTAKE_CLOSED_FAILURE = 'IntakeClosed';

export const submitUpdate = defineUpdate<IntakeReceipt, [parcel: IntakeParcel]>('submit');
