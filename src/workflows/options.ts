/** Timeouts and bounded retry policies of every activity the workflows call. */
import {
  ActivityCancellationType,
  type ActivityOptions,
  type LocalActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import { FailureType, NOT_RETRYABLE } from '../failures';

/** Attempts of one rollback before it is recorded as FAILED. */
export const COMPENSATION_ATTEMPTS = 6;

/** Sending and verifying, local or regular: transport faults (5xx, timeouts) are retried a few times. */
const TRANSFER_RETRY: RetryPolicy = {
  initialInterval: '500 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  maximumAttempts: 4,
  nonRetryableErrorTypes: [...NOT_RETRYABLE],
};

export const ACTIVITY_OPTIONS = {
  /** Sending and verifying: transport faults (5xx, timeouts) are retried a few times here. */
  transfer: {
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '15 seconds',
    retry: TRANSFER_RETRY,
    // Wait for the send to stop before compensating, so no upload lands after its rollback.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  },
  /** Rollback: more patient, since a failed rollback needs a person. */
  compensation: {
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: COMPENSATION_ATTEMPTS,
      // A refused token does not become valid between attempts: the rollback needs a person.
      nonRetryableErrorTypes: [FailureType.BadInput, FailureType.Unauthorized],
    },
  },
  /** One look at a recording system while a batch is paused for an outage: no retries. */
  probe: {
    startToCloseTimeout: '30 seconds',
    retry: { maximumAttempts: 1 },
  },
  /**
   * A schedule's folder scan: as long as the folder takes to read (it heartbeats as it goes), so
   * a folder of millions of files is not cut short by the batch activities' five minutes.
   */
  scan: {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '60 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  },
  /** Reading the manifest and batch-wide ledger work. */
  batch: {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '60 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  },
} satisfies Record<string, ActivityOptions>;

/**
 * Ledger writes: short, local to the worker, retried a few times (each ledger operation
 * already retries a lost connection for up to 10 s). A ledger still away after that is waited
 * for by the workflow itself, with the reason in its details (ledger-patience.ts).
 */
export const LEDGER_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '5 seconds',
    maximumAttempts: 3,
  },
};

/**
 * The happy path of a file as a local activity (open, send, verify, ledger writes), and the
 * verification of a large file's send: transport faults are retried a few times, as for
 * regular transfers; a cancelled file waits for its send to stop before it is rolled back.
 */
export const TRANSFER_LOCAL_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: TRANSFER_RETRY,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
};

/** Asking how files started by an earlier run of a batch ended: one long look at a time. */
export const AWAIT_FILES_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
};
