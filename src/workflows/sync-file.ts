/**
 * syncFile: sends one image file, verifies it by the preset rules, resends under a bounded
 * threshold, and compensates (non-cancellably) when the file cannot be delivered or the
 * operator cancels. The batch learns how it ended from its completion.
 *
 * The happy path of a file up to the batch's local-send limit is one local activity
 * (deliverFile: open the interaction, send, verify, write the ledger), so the whole workflow is
 * one workflow task: seven history events. A larger file is sent by a regular activity that
 * heartbeats, and verified by a local one.
 */
import {
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
  sleep,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { failedVerifying, failureMessage, isResendable, isTransportFault } from '../failures';
import {
  cancelSignal,
  DEFAULT_POLICY,
  fileRetrySignal,
  progressQuery,
  SA_RESENDS,
  SA_STATE,
  transportFaultSignal,
  type FileOutcome,
  type FileResult,
  type FileState,
  type Progress,
  type SyncFileInput,
} from '../shared';
import { ledgerPatiently } from './ledger-patience';
import {
  ACTIVITY_OPTIONS,
  COMPENSATION_ATTEMPTS,
  LEDGER_ACTIVITY_OPTIONS,
  TRANSFER_LOCAL_ACTIVITY_OPTIONS,
} from './options';

const { deliverFile, verifyFile } = proxyLocalActivities<Activities>(TRANSFER_LOCAL_ACTIVITY_OPTIONS);
const { sendFile } = proxyActivities<Activities>(ACTIVITY_OPTIONS.transfer);
const { compensate } = proxyActivities<Activities>(ACTIVITY_OPTIONS.compensation);
const { noteResend, recordRollbackFailed, markCancelled } = proxyLocalActivities<Activities>(LEDGER_ACTIVITY_OPTIONS);

/**
 * Waiting for a file another live interaction has claimed (another batch, a schedule's run, a
 * redrive): looks spaced from CLAIM_FIRST_WAIT_MS, doubling up to CLAIM_LONGEST_WAIT_MS, for the
 * policy's claimPatienceMs in all (30 minutes by default); then the file fails, without having
 * sent anything, and is rolled back.
 */
export const CLAIM_FIRST_WAIT_MS = 250;
export const CLAIM_LONGEST_WAIT_MS = 10_000;

/** The receipt could not be read: the send is unproven, so it counts as failed. */
const UNPROVEN = 'verification could not run: ';

/** How one send-and-verify attempt ended when it did not deliver the file. */
interface Miss {
  reason: string;
  resendable: boolean;
  transport: boolean;
}

export async function syncFile(input: SyncFileInput): Promise<FileResult> {
  const { item, batchId, policy } = input;
  const claimPatienceMs = policy.claimPatienceMs ?? DEFAULT_POLICY.claimPatienceMs!;
  const interactionId = uuid4();
  const ref = { interactionId, batchId, item };
  /** --resend-recorded: send a copy of its own even when the target holds these bytes already. */
  const resendRecorded = policy.resendRecorded ? { resendRecorded: true } : {};
  let state: FileState = 'SENDING';
  let resends = 0;
  let opened = false;
  let large = false;
  let retryRequested = false;
  let cancelReason: string | undefined;

  const transfer = new CancellationScope();
  setHandler(cancelSignal, (reason?: string) => {
    cancelReason ??= reason ?? 'cancelled by operator';
    transfer.cancel();
  });
  setHandler(fileRetrySignal, () => {
    retryRequested = true;
  });
  setHandler(progressQuery, (): Progress => {
    const done = (s: FileState) => (state === s ? 1 : 0);
    return {
      total: 1,
      started: 1,
      inFlight: isFinal(state) ? 0 : 1,
      recorded: done('RECORDED'),
      rolledBack: done('ROLLED_BACK'),
      rollbackFailed: done('ROLLBACK_FAILED'),
      cancelled: done('CANCELLED'),
      resends,
      paused: false,
      state,
    };
  });

  /** The details a person reads in the Web UI. */
  const tell = (detail?: string) => {
    const lines = [
      `**${state}** ${item.orderId}/${item.fileName}`,
      `resends: ${resends} of ${policy.maxResends}`,
      `interaction: ${interactionId}`,
    ];
    if (detail) lines.push(`last: ${detail}`);
    setCurrentDetails(lines.join('\n\n'));
  };
  /** Moves to a state; the search attributes change only when what they show changes. */
  const enter = (next: FileState, detail?: string) => {
    state = next;
    const current = workflowInfo().typedSearchAttributes;
    if (current.get(SA_STATE) !== next || (current.get(SA_RESENDS) ?? 0) !== resends) {
      upsertSearchAttributes([
        { key: SA_STATE, value: next },
        { key: SA_RESENDS, value: resends },
      ]);
    }
    tell(detail);
  };

  const finish = (outcome: FileOutcome, reason?: string): FileResult => {
    enter(outcome, reason);
    return {
      orderId: item.orderId,
      fileName: item.fileName,
      state: outcome,
      interactionId,
      resends,
      ...(reason ? { reason } : {}),
    };
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

  const miss = (err: unknown, prefix = failedVerifying(err) ? UNPROVEN : ''): Miss => {
    if (isCancellation(err)) throw err;
    return { reason: prefix + failureMessage(err), resendable: isResendable(err), transport: isTransportFault(err) };
  };

  /** One send and verification of the file; undefined when it is delivered. */
  async function attempt(): Promise<Miss | undefined> {
    if (!large) {
      let delivery;
      let waited = 0;
      let wait = CLAIM_FIRST_WAIT_MS;
      for (;;) {
        try {
          delivery = await ledgerPatiently(
            () =>
              deliverFile({
                ...ref,
                attempt: input.attempt,
                resend: resends,
                open: !opened,
                // A paced file waits for its share of the limits: only a heartbeating activity may wait long.
                localSendMaxBytes: input.paced ? 0 : policy.localSendMaxBytes,
                ...resendRecorded,
              }),
            tell,
          );
        } catch (err) {
          return miss(err);
        } finally {
          opened = true;
        }
        if (delivery.kind !== 'busy') break;
        const { holder } = delivery;
        const busy = `interaction ${holder.interactionId} of batch ${holder.batchId} is delivering this file`;
        if (waited >= claimPatienceMs) {
          return {
            reason: `${busy}; gave up waiting after ${waited} ms`,
            resendable: false,
            transport: false,
          };
        }
        tell(`**waiting**: ${busy}`);
        // The last look comes when the patience runs out, not after.
        const pause = Math.min(wait, claimPatienceMs - waited);
        await sleep(pause);
        waited += pause;
        wait = Math.min(wait * 2, CLAIM_LONGEST_WAIT_MS);
      }
      if (delivery.kind === 'held') return undefined;
      if (delivery.kind === 'sent') {
        const { verdict } = delivery;
        return verdict.ok
          ? undefined
          : { reason: `verification failed (${verdict.rule}): ${verdict.detail}`, resendable: true, transport: false };
      }
      large = true;
    }
    let sent;
    try {
      sent = await sendFile({ ...ref, resend: resends, paced: input.paced, ...resendRecorded });
    } catch (err) {
      return miss(err);
    }
    try {
      const verdict = await ledgerPatiently(
        () => verifyFile({ ...ref, ...sent, resend: resends, paced: input.paced, ...resendRecorded }),
        tell,
      );
      if (verdict.ok) return undefined;
      return { reason: `verification failed (${verdict.rule}): ${verdict.detail}`, resendable: true, transport: false };
    } catch (err) {
      return miss(err, UNPROVEN);
    }
  }

  tell();
  // --- send / verify / resend, cancellable -----------------------------------------------------
  let failure: { reason: string; cause: 'exhausted' | 'not-resendable' | 'cancelled' } | undefined;
  try {
    await transfer.run(async () => {
      for (;;) {
        if (cancelReason !== undefined) throw new CancelledFailure(cancelReason);
        const missed = await attempt();
        if (!missed) return;
        if (!missed.resendable) {
          failure = { reason: missed.reason, cause: 'not-resendable' };
          return;
        }
        if (missed.transport) reportTransportFault(missed.reason);
        if (resends >= policy.maxResends) {
          failure = { reason: `gave up after ${resends} resends: ${missed.reason}`, cause: 'exhausted' };
          return;
        }
        resends += 1;
        enter('RESENDING', missed.reason);
        await ledgerPatiently(() => noteResend({ interactionId, resends, reason: missed.reason }), tell);
        if (await condition(() => retryRequested, policy.resendBackoffMs * 2 ** (resends - 1))) {
          retryRequested = false;
          resends = 0;
        }
        enter('SENDING', missed.reason);
      }
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
    failure = { reason: cancelReason ?? 'cancelled', cause: 'cancelled' };
  }

  if (!failure) return finish('RECORDED');

  // --- compensation, never cancelled ------------------------------------------------------------
  const { reason, cause } = failure;
  return CancellationScope.nonCancellable(async () => {
    const cancelled = cause === 'cancelled';
    if (cancelled && !opened) {
      // Cancelled before this workflow saw a send: nothing to roll back, unless a send ran whose
      // result was never recorded (markCancelled looks), or the look failed: then compensate.
      const unsent = await ledgerPatiently(() => markCancelled({ ...ref, attempt: input.attempt, reason }), tell).then(
        (outcome) => outcome === 'cancelled',
        () => false,
      );
      if (unsent) return finish('CANCELLED', reason);
    }
    enter('ROLLING_BACK', reason);
    const finalState: FileOutcome = cancelled ? 'CANCELLED' : 'ROLLED_BACK';
    try {
      const rollback = await compensate({ ...ref, reason, finalState });
      if (rollback.status === 'DONE') return finish(finalState, reason);
      return finish('ROLLBACK_FAILED', `${reason}; rollback failed: ${rollback.detail}`);
    } catch (err) {
      const detail = failureMessage(err);
      await ledgerPatiently(
        () => recordRollbackFailed({ ...ref, reason, attempts: COMPENSATION_ATTEMPTS, error: detail }),
        tell,
      );
      return finish('ROLLBACK_FAILED', `${reason}; rollback failed: ${detail}`);
    }
  });
}

function isFinal(state: FileState): boolean {
  return state === 'RECORDED' || state === 'ROLLED_BACK' || state === 'ROLLBACK_FAILED' || state === 'CANCELLED';
}
