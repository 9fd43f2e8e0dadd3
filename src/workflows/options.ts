/** Timeouts and bounded retry policies of every activity the workflows call. */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/** Attempts of one rollback before it is recorded as FAILED. */
export const COMPENSATION_ATTEMPTS = 6;

export const ACTIVITY_OPTIONS = {
  /** Sending and verifying: transport faults (5xx, timeouts) are retried a few times here. */
  transfer: {
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '15 seconds',
    retry: {
      initialInterval: '500 milliseconds',
      backoffCoefficient: 2,
      maximumInterval: '10 seconds',
      maximumAttempts: 4,
      nonRetryableErrorTypes: [
        'Rejected',
        'Conflict',
        'Unauthorized',
        'SourceMissing',
        'SourceChecksumMismatch',
        'BadInput',
      ],
    },
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
      nonRetryableErrorTypes: ['BadInput', 'Unauthorized'],
    },
  },
  /** One look at a recording system while a batch is paused for an outage: no retries. */
  probe: {
    startToCloseTimeout: '30 seconds',
    retry: { maximumAttempts: 1 },
  },
  /** Reading the manifest and batch-wide ledger work. */
  batch: {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '60 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  },
} satisfies Record<string, ActivityOptions>;

/** Ledger writes: short, local to the worker, retried a bounded number of times. */
export const LEDGER_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '5 seconds',
    maximumAttempts: 10,
  },
};

/** Verifying a send: a GET of the receipt and a ledger write, retried for transport faults. */
export const VERIFY_LOCAL_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
    nonRetryableErrorTypes: ['Unauthorized', 'BadInput', 'UnknownTarget'],
  },
};
