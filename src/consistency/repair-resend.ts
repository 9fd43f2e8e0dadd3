/**
 * The repair of a RECORDED file whose copy is missing, altered or stale: its source is sent
 * again as a new interaction of the batch, after the copy held in its place is removed, and
 * verified with the preset rules; a send or verification that fails is rolled back.
 *
 * The repair sends under the file's claim (repair-claim.ts): it waits for a live interaction
 * delivering the file, skips the file when that one has delivered the same bytes meanwhile, and
 * otherwise opens its interaction and claims the file before it removes or sends anything.
 */
import { stat } from 'node:fs/promises';
import { judge } from '../activities';
import { errorText } from '../errors';
import type { InteractionRow, Ledger } from '../ledger/port';
import type { RecordingSystem } from '../recording-system/port';
import { contentTypeFor, sha256File } from '../source/files';
import { takeRepairClaim, waitForFreeClaim } from './repair-claim';
import { finishRollback, openRepairInteraction, removeCopy, startRollback } from './repair-ledger';
import { heldText, outcome, type Finding, type RepairOutcome } from './repair-outcome';
import { withRetries } from './retries';

/** Sends the file's source again as a new interaction, and verifies it with the preset rules. */
export async function resendAsNewInteraction(
  ledger: Ledger,
  system: RecordingSystem,
  f: Finding,
  previous: InteractionRow,
  claimPatienceMs: number,
): Promise<RepairOutcome> {
  const source = await stat(previous.source_path).catch(() => undefined);
  if (!source?.isFile()) {
    return outcome(f, 'skipped', false, null, `the source ${previous.source_path} is gone: nothing to send`);
  }
  const digest = await sha256File(previous.source_path);
  const file = { target: f.target, orderId: f.orderId, fileName: f.fileName };
  const busy = await waitForFreeClaim(ledger, file, claimPatienceMs);
  if (busy) {
    return outcome(f, 'skipped', false, null, `${claimedText(busy)}; nothing sent, run reconcile again later`);
  }
  const meanwhile = await recordedMeanwhile(ledger, system, f, previous, digest);
  if (meanwhile) return outcome(f, 'skipped', true, null, meanwhile);
  const interactionId = await openRepairInteraction(
    ledger,
    f,
    {
      batchId: previous.batch_id,
      sourcePath: previous.source_path,
      sha256: digest.sha256,
      sizeBytes: digest.size,
      status: 'SENDING',
    },
    previous,
  );
  const rollBack = (reason: string) => rollBackOwnCopy(ledger, system, f, interactionId, previous.batch_id, reason);
  const holder = await takeRepairClaim(ledger, { ...file, interactionId, batchId: previous.batch_id }, claimPatienceMs);
  if (holder) {
    await ledger.appendEvent({
      interactionId,
      eventKey: `CLAIM_WAIT:${holder.interactionId}`,
      kind: 'CLAIM_WAIT',
      detail: { holder: holder.interactionId, batchId: holder.batchId, workflowId: holder.workflowId },
    });
    await rollBack(`${claimedText(holder)}; nothing sent`);
    return outcome(f, 'resent', false, interactionId, `${claimedText(holder)}; nothing sent, rolled back`);
  }
  if (f.held) {
    // The copy in the way (altered, stale, or another sender's with --remove-foreign) goes
    // first, and only that copy: one written under another key since the check stays.
    const held = f.held;
    await withRetries(() => system.removeIfOwn(f.orderId, f.fileName, held.idempotencyKey));
    await ledger.appendEvent({
      interactionId,
      eventKey: 'REPLACED_COPY_REMOVED',
      kind: 'REPLACED_COPY_REMOVED',
      detail: { held: heldText(f.held) },
    });
  }
  try {
    const put = await withRetries(() =>
      system.put({
        orderId: f.orderId,
        fileName: f.fileName,
        sourcePath: previous.source_path,
        sha256: digest.sha256,
        size: digest.size,
        contentType: contentTypeFor(f.fileName),
        idempotencyKey: interactionId,
      }),
    );
    await ledger.appendEvent({
      interactionId,
      eventKey: 'SENT:0',
      kind: 'SENT',
      detail: { resend: 0, attempt: 1, httpStatus: put.httpStatus, outcome: put.outcome, size: digest.size },
    });
  } catch (err) {
    const error = errorText(err);
    await ledger.appendEvent({ interactionId, eventKey: 'SEND_FAILED:0:1', kind: 'SEND_FAILED', detail: { error } });
    await rollBack(`reconcile resend failed: ${error}`);
    return outcome(f, 'resent', false, interactionId, `the send failed (${error}); rolled back`);
  }
  await ledger.updateInteraction(interactionId, { status: 'VERIFYING' });
  const receipt = await withRetries(() => system.stat(f.orderId, f.fileName));
  const verdict = judge(receipt, { ...digest, interactionId });
  if (verdict.ok) {
    await ledger.appendEvent({ interactionId, eventKey: 'VERIFIED:0', kind: 'VERIFIED', detail: { resend: 0 } });
    await ledger.updateInteraction(interactionId, { status: 'RECORDED', lastError: null });
    return outcome(f, 'resent', true, interactionId, 'sent again as a new interaction and verified');
  }
  await ledger.appendEvent({
    interactionId,
    eventKey: 'VERIFY_FAILED:0',
    kind: 'VERIFY_FAILED',
    detail: { resend: 0, rule: verdict.rule, detail: verdict.detail },
  });
  await rollBack(`reconcile resend failed verification: ${verdict.rule}: ${verdict.detail}`);
  return outcome(
    f,
    'resent',
    false,
    interactionId,
    `verification failed (${verdict.rule}: ${verdict.detail}); rolled back`,
  );
}

/** After a failed repair send: removes the copy that send left, if any, and records the rollback. */
async function rollBackOwnCopy(
  ledger: Ledger,
  system: RecordingSystem,
  f: Finding,
  interactionId: string,
  batchId: string,
  reason: string,
): Promise<void> {
  await startRollback(ledger, interactionId, reason);
  await ledger.updateInteraction(interactionId, { status: 'ROLLING_BACK' });
  const removal = await removeCopy(system, f, interactionId);
  await finishRollback(ledger, { interactionId, batchId, f, reason }, removal, {
    finalState: 'ROLLED_BACK',
    detail: {},
  });
}

function claimedText(holder: { interactionId: string; batchId: string }): string {
  return `interaction ${holder.interactionId} of batch ${holder.batchId} is delivering this file`;
}

/**
 * Whether, while the repair waited, an interaction of the file delivered the bytes the batch
 * recorded: the copy held has them and its writer is RECORDED. Then there is nothing to send.
 */
async function recordedMeanwhile(
  ledger: Ledger,
  system: RecordingSystem,
  f: Finding,
  previous: InteractionRow,
  digest: { sha256: string; size: number },
): Promise<string | undefined> {
  if (digest.sha256 !== previous.sha256 || digest.size !== previous.size_bytes) return undefined;
  const now = await withRetries(() => system.stat(f.orderId, f.fileName));
  if (!now || now.sha256 !== digest.sha256 || now.size !== digest.size) return undefined;
  const writer = await ledger.getInteraction(now.idempotencyKey);
  if (writer?.status !== 'RECORDED' || writer.order_id !== f.orderId || writer.file_name !== f.fileName) {
    return undefined;
  }
  return `held again with the bytes recorded, as interaction ${writer.interaction_id} of batch ${writer.batch_id} recorded them: nothing sent`;
}
