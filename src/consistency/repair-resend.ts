/**
 * The repair of a RECORDED file whose copy is missing, altered or stale: its source is sent
 * again as a new interaction of the batch, after the copy held in its place is removed, and
 * verified with the preset rules; a send or verification that fails is rolled back.
 */
import { stat } from 'node:fs/promises';
import { judge } from '../activities';
import { errorText } from '../errors';
import type { InteractionRow, Ledger } from '../ledger/port';
import type { RecordingSystem } from '../recording-system/port';
import { contentTypeFor, sha256File } from '../source/files';
import { finishRollback, openRepairInteraction, removeCopy, startRollback } from './repair-ledger';
import { heldText, outcome, type Finding, type RepairOutcome } from './repair-outcome';
import { withRetries } from './retries';

/** Sends the file's source again as a new interaction, and verifies it with the preset rules. */
export async function resendAsNewInteraction(
  ledger: Ledger,
  system: RecordingSystem,
  f: Finding,
  previous: InteractionRow,
): Promise<RepairOutcome> {
  const source = await stat(previous.source_path).catch(() => undefined);
  if (!source?.isFile()) {
    return outcome(f, 'skipped', false, null, `the source ${previous.source_path} is gone: nothing to send`);
  }
  const digest = await sha256File(previous.source_path);
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
  if (f.held) {
    // The copy in the way (altered, stale, or another sender's with --remove-foreign) goes first.
    await withRetries(() => system.remove(f.orderId, f.fileName));
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
