/**
 * The batch's signals, updates and queries: what operators (and Temporal's own tools) can ask of
 * a running batch. Each changes the carry through batch-state.ts and tells the batch to show it;
 * the updates' validators refuse, before anything enters history, what cannot apply.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import { FailureType } from '../failures';
import { countOutagePause } from '../observability/workflow-metrics';
import {
  batchRetrySignal,
  cancelSignal,
  cancelUpdate,
  failuresQuery,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  resumeSignal,
  resumeUpdate,
  retryUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setLimitsUpdate,
  transportFaultSignal,
  type BatchCarry,
  type BatchState,
  type LimitsChange,
  type RetryResult,
} from '../shared';
import { changeLimits, whyNotSetLimits } from './batch-limits';
import * as batch from './batch-state';
import { ledgerPatiently } from './ledger-patience';
import { applyLimits, queueBatchRedrives } from './batch-activities';

/** What the handlers need of the running batch. */
export interface BatchHandlerContext {
  c: BatchCarry;
  frame: batch.BatchFrame;
  stateNow(): BatchState;
  /** Shows a state change in the search attributes and the details. */
  show(): void;
  /** Refreshes the details only. */
  describe(): void;
  /** Shows a passing condition (waiting for the ledger) above the details. */
  tell(detail: string): void;
  /** Shows a pause or a resume and sends its event, saying who or what caused it. */
  announce(event: 'batch.paused' | 'batch.resumed', by: string, more?: Record<string, unknown>): void;
}

export function setBatchHandlers(ctx: BatchHandlerContext): void {
  const { c, frame, stateNow, show, describe, tell, announce } = ctx;
  const { batchId, policy } = frame;

  /**
   * Queues failed files for a redrive in the ledger (the named ones, or every failed one) and
   * takes them into the batch. Retries run one at a time: each queues from where the last ended.
   */
  let retries: Promise<unknown> = Promise.resolve();
  const requeue = (files?: string[]): Promise<RetryResult> => {
    const run = retries.then(async () => {
      if (c.cancelRequested) throw ApplicationFailure.nonRetryable('the batch is cancelled', FailureType.Refused);
      const queued = await queueBatchRedrives({ batchId, from: c.redrive.queued, ...(files?.length ? { files } : {}) });
      if ('refused' in queued) {
        throw ApplicationFailure.nonRetryable(
          `not failed files of this batch: ${queued.refused.join(', ')}`,
          FailureType.Refused,
        );
      }
      batch.noteRedrivesQueued(c, frame, queued, files);
      show();
      return { batchId, requeued: queued.keys, requeuedCount: queued.count };
    });
    retries = run.catch(() => undefined);
    return run;
  };

  setHandler(cancelSignal, (reason?: string) => {
    batch.requestCancel(c, reason);
  });
  setHandler(pauseSignal, () => {
    if (batch.pause(c)) announce('batch.paused', 'operator');
  });
  setHandler(resumeSignal, () => {
    if (batch.resume(c)) announce('batch.resumed', 'operator');
  });
  setHandler(transportFaultSignal, (fault) => {
    if (batch.noteTransportFault(c, policy, fault, new Date().toISOString())) {
      countOutagePause(fault.target);
      log.warn('recording system looks down: batch paused', { target: fault.target, error: fault.error });
      announce('batch.paused', 'outage', { target: fault.target, error: fault.error });
    }
  });
  setHandler(setConcurrencySignal, (n: number) => {
    batch.setMaxConcurrency(c, n);
  });
  setHandler(batchRetrySignal, async (args?: { files?: string[] }) => {
    if (batch.whyNotRetry(c)) return;
    await requeue(args?.files).catch((err: unknown) => log.warn('retry not applied', { error: String(err) }));
  });
  // The same actions as updates: refused before they enter history when they cannot apply.
  const refuse = (why: string | undefined) => {
    if (why) throw ApplicationFailure.nonRetryable(why, FailureType.Refused);
  };
  setHandler(
    cancelUpdate,
    (reason?: string) => {
      batch.requestCancel(c, reason);
      return { batchId, state: batch.endState(c) };
    },
    { validator: (_reason?: string) => refuse(batch.whyNotCancel(c)) },
  );
  setHandler(
    pauseUpdate,
    () => {
      batch.pause(c);
      announce('batch.paused', 'operator');
      return { batchId, state: stateNow() };
    },
    { validator: () => refuse(batch.whyNotPause(c)) },
  );
  setHandler(
    resumeUpdate,
    () => {
      batch.resume(c);
      announce('batch.resumed', 'operator');
      return { batchId, state: stateNow() };
    },
    { validator: () => refuse(batch.whyNotResume(c)) },
  );
  setHandler(retryUpdate, (args?: { files?: string[] }) => requeue(args?.files), {
    validator: (_args?: { files?: string[] }) => refuse(batch.whyNotRetry(c)),
  });
  setHandler(
    setConcurrencyUpdate,
    (n: number) => {
      batch.setMaxConcurrency(c, n);
      describe();
      return { batchId, maxConcurrency: c.maxConcurrency };
    },
    { validator: (n: number) => refuse(batch.whyNotSetConcurrency(c, n)) },
  );
  setHandler(
    setLimitsUpdate,
    async (change: LimitsChange) => {
      const limits = changeLimits(c, change);
      // Confirmed once every worker's next reservation sees the new limits.
      await ledgerPatiently(() => applyLimits({ batchId, limits }), tell);
      describe();
      return { batchId, limits };
    },
    { validator: (change: LimitsChange) => refuse(whyNotSetLimits(c, change)) },
  );
  setHandler(progressQuery, () => batch.progressOf(c, frame, stateNow()));
  setHandler(failuresQuery, () => batch.failuresOf(c));
}
