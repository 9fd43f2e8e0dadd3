/**
 * syncFile: sends one image file, verifies by the preset rules, resends under a bounded
 * threshold, and compensates (non-cancellably) when the file cannot be delivered or the
 * operator cancels. Reports its outcome to the parent batch by signal.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  patched,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  cancelSignal,
  fileDoneSignal,
  fileRetrySignal,
  progressQuery,
  SA_RESENDS,
  SA_STATE,
  type FileOutcome,
  type FileResult,
  type FileState,
  type Progress,
  type SyncFileInput,
  transportFaultSignal,
} from '../shared';
import {
  ACTIVITY_OPTIONS,
  COMPENSATION_ATTEMPTS,
  LEDGER_ACTIVITY_OPTIONS,
  VERIFY_LOCAL_ACTIVITY_OPTIONS,
} from './options';

// Verification is one short GET and a ledger write: as a local activity it runs in the same
// workflow task that sees the send complete, saving a round trip and three events per file.
const { verifyFile: verifyFileLocally } = proxyLocalActivities<Activities>(VERIFY_LOCAL_ACTIVITY_OPTIONS);
/** Verification as it ran before FEWER_EVENTS_PATCH, kept for workflows started then. */
const { verifyFile: verifyFileRemotely } = proxyActivities<Activities>(ACTIVITY_OPTIONS.transfer);

/**
 * Version marker: local verification, and no search-attribute upserts that nothing can
 * observe. Workflows that started before it replay the earlier path.
 */
export const FEWER_EVENTS_PATCH = 'fewer-events-per-file';
const { sendFile } = proxyActivities<Activities>({
  ...ACTIVITY_OPTIONS.transfer,
  // Wait for the send to stop before compensating, so no upload lands after its rollback.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const { compensate: compensateWithRetries } = proxyActivities<Activities>(ACTIVITY_OPTIONS.compensation);
const { openInteraction, noteResend, recordRollbackFailed, markCancelled } =
  proxyLocalActivities<Activities>(LEDGER_ACTIVITY_OPTIONS);

/** Error types an activity raises for what no resend can fix. */
export const NON_RESENDABLE_TYPES = [
  'Rejected',
  'Conflict',
  'Unauthorized',
  'SourceMissing',
  'SourceChecksumMismatch',
  'UnknownTarget',
];

export async function syncFile(input: SyncFileInput): Promise<FileResult> {
  const { item, batchId, policy } = input;
  const interactionId = uuid4();
  let state: FileState = 'SENDING';
  let resends = 0;
  let sendStarted = false;
  let retryRequested = false;
  let cancelReason: string | undefined;
  let lastError: string | undefined;

  const transfer = new CancellationScope();

  setHandler(cancelSignal, (reason?: string) => {
    cancelReason = reason ?? 'cancelled by operator';
    transfer.cancel();
  });
  setHandler(fileRetrySignal, () => {
    retryRequested = true;
  });
  setHandler(progressQuery, (): Progress => ({
    total: 1,
    started: 1,
    inFlight: isFinal(state) ? 0 : 1,
    recorded: state === 'RECORDED' ? 1 : 0,
    rolledBack: state === 'ROLLED_BACK' ? 1 : 0,
    rollbackFailed: state === 'ROLLBACK_FAILED' ? 1 : 0,
    cancelled: state === 'CANCELLED' ? 1 : 0,
    resends,
    paused: false,
    state,
  }));

  /**
   * Moves to a state: search attributes (when they change) and the details a person reads.
   * A transient state, entered and left within one workflow task, updates the details only.
   */
  const fewerEvents = patched(FEWER_EVENTS_PATCH);
  const verifyFile = fewerEvents ? verifyFileLocally : verifyFileRemotely;
  const enter = (next: FileState, detail?: string, transient = false) => {
    state = next;
    const current = workflowInfo().typedSearchAttributes;
    const changed = current.get(SA_STATE) !== next || (current.get(SA_RESENDS) ?? 0) !== resends;
    if (!fewerEvents || (!transient && changed)) {
      upsertSearchAttributes([
        { key: SA_STATE, value: next },
        { key: SA_RESENDS, value: resends },
      ]);
    }
    const lines = [
      `**${next}** ${item.orderId}/${item.fileName}`,
      `resends: ${resends} of ${policy.maxResends}`,
      `interaction: ${interactionId}`,
    ];
    if (detail) lines.push(`last: ${detail}`);
    setCurrentDetails(lines.join('\n\n'));
  };

  const finish = async (outcome: FileOutcome, reason?: string): Promise<FileResult> => {
    const result: FileResult = {
      orderId: item.orderId,
      fileName: item.fileName,
      state: outcome,
      interactionId,
      resends,
      ...(reason ? { reason } : {}),
    };
    enter(outcome, reason);
    if (input.parentWorkflowId) {
      // Awaited: a signal still pending when the workflow completes is never delivered.
      await CancellationScope.nonCancellable(async () => {
        try {
          await getExternalWorkflowHandle(input.parentWorkflowId!).signal(fileDoneSignal, result);
        } catch (err) {
          // The batch has ended; it no longer waits for this report.
          log.warn('could not report to the batch', { error: String(err) });
        }
      });
    }
    return result;
  };

  const reportTransportFault = (error: string) => {
    if (!input.parentWorkflowId) return;
    getExternalWorkflowHandle(input.parentWorkflowId)
      .signal(transportFaultSignal, {
        orderId: item.orderId,
        fileName: item.fileName,
        target: item.target ?? 'default',
        error,
      })
      .catch((err: unknown) => log.warn('could not report a transport fault to the batch', { error: String(err) }));
  };

  enter('SENDING');
  await openInteraction({ interactionId, batchId, item, attempt: input.attempt });

  // --- send / verify / resend, cancellable -----------------------------------------------------
  let failure: { reason: string; cause: 'exhausted' | 'not-resendable' | 'cancelled' } | undefined;
  try {
    await transfer.run(async () => {
      for (;;) {
        if (cancelReason !== undefined) throw new CancelledFailure(cancelReason);
        sendStarted = true;
        let sent: { sha256: string; size: number } | undefined;
        try {
          sent = await sendFile({ interactionId, batchId, item, resend: resends });
        } catch (err) {
          if (isCancellation(err)) throw err;
          const reason = failureMessage(err);
          if (!isResendable(err)) {
            failure = { reason, cause: 'not-resendable' };
            return;
          }
          lastError = reason;
          if (isTransportFault(err)) reportTransportFault(reason);
        }
        if (sent) {
          enter('VERIFYING', undefined, true);
          try {
            const verdict = await verifyFile({
              interactionId,
              batchId,
              item,
              sha256: sent.sha256,
              size: sent.size,
              resend: resends,
            });
            if (verdict.ok) return;
            lastError = `verification failed (${verdict.rule}): ${verdict.detail}`;
          } catch (err) {
            // The receipt could not be read: the send is unproven, so it counts as failed.
            if (isCancellation(err)) throw err;
            const reason = failureMessage(err);
            if (!isResendable(err)) {
              failure = { reason: `verification could not run: ${reason}`, cause: 'not-resendable' };
              return;
            }
            lastError = `verification could not run: ${reason}`;
            if (isTransportFault(err)) reportTransportFault(reason);
          }
        }
        if (resends >= policy.maxResends) {
          failure = { reason: `gave up after ${resends} resends: ${lastError}`, cause: 'exhausted' };
          return;
        }
        resends += 1;
        enter('RESENDING', lastError);
        await noteResend({ interactionId, resends, reason: lastError ?? 'unknown' });
        const backoff = policy.resendBackoffMs * 2 ** (resends - 1);
        if (await condition(() => retryRequested, backoff)) {
          retryRequested = false;
          resends = 0;
        }
        enter('SENDING', lastError);
      }
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
    failure = { reason: cancelReason ?? 'cancelled', cause: 'cancelled' };
  }

  if (!failure) return finish('RECORDED');

  // --- compensation, never cancelled ------------------------------------------------------------
  return CancellationScope.nonCancellable(async () => {
    const cancelled = failure!.cause === 'cancelled';
    if (cancelled && !sendStarted) {
      await markCancelled({ interactionId, reason: failure!.reason });
      return finish('CANCELLED', failure!.reason);
    }
    enter('ROLLING_BACK', failure!.reason);
    const finalState: FileOutcome = cancelled ? 'CANCELLED' : 'ROLLED_BACK';
    try {
      const rollback = await compensateWithRetries({
        interactionId,
        batchId,
        item,
        reason: failure!.reason,
        finalState,
      });
      if (rollback.status === 'DONE') return finish(finalState, failure!.reason);
      return finish('ROLLBACK_FAILED', `${failure!.reason}; rollback failed: ${rollback.detail}`);
    } catch (err) {
      const detail = failureMessage(err);
      await recordRollbackFailed({
        interactionId,
        batchId,
        item,
        reason: failure!.reason,
        attempts: COMPENSATION_ATTEMPTS,
        error: detail,
      });
      return finish('ROLLBACK_FAILED', `${failure!.reason}; rollback failed: ${detail}`);
    }
  });
}

function isFinal(state: FileState): boolean {
  return state === 'RECORDED' || state === 'ROLLED_BACK' || state === 'ROLLBACK_FAILED' || state === 'CANCELLED';
}

function rootCause(err: unknown): unknown {
  let current = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current;
}

function isResendable(err: unknown): boolean {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure) {
    return !cause.nonRetryable && !NON_RESENDABLE_TYPES.includes(cause.type ?? '');
  }
  return true;
}

/** The recording system did not answer usefully: 5xx, no answer in time, no connection. */
export const TRANSPORT_FAULT_TYPES = ['Unavailable', 'Timeout', 'Network'];

function isTransportFault(err: unknown): boolean {
  const cause = rootCause(err);
  return cause instanceof ApplicationFailure && TRANSPORT_FAULT_TYPES.includes(cause.type ?? '');
}

function failureMessage(err: unknown): string {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type) return `${cause.type}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}
