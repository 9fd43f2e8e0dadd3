/**
 * The repairs of copies that should not be held (the file was rolled back, cancelled or never
 * started, or its rollback failed) and of missing rollback rows. Each removal is a new
 * interaction recorded as a rollback with its reason.
 */
import type { InteractionRow, Ledger } from '../ledger/port';
import type { RecordingSystem } from '../recording-system/port';
import type { FileState } from '../shared';
import { finishRollback, openRollbackInteraction, removeCopy } from './repair-ledger';
import { heldText, outcome, type Finding, type RepairOutcome } from './repair-outcome';
import { withRetries } from './retries';

/** The state a file whose copy reconcile removed ends in: as before, or CANCELLED for a file that never started. */
function stateAfterRemoval(previous: InteractionRow | null): FileState {
  if (!previous) return 'CANCELLED';
  return previous.status === 'CANCELLED' ? 'CANCELLED' : 'ROLLED_BACK';
}

/** Removes a copy that should not be held, as a new interaction recorded as a rollback with its reason. */
export async function removeAsNewInteraction(
  ledger: Ledger,
  system: RecordingSystem,
  batchId: string,
  f: Finding,
  previous: InteractionRow | null,
): Promise<RepairOutcome> {
  const held = f.held!;
  const reason = `reconcile (${f.kind}): removed a copy the ledger says should not be held (${heldText(held)})`;
  const interactionId = await openRollbackInteraction(
    ledger,
    f,
    { batchId, sourcePath: previous?.source_path ?? '', sha256: held.sha256, sizeBytes: held.size },
    previous,
    reason,
  );
  const removal = await removeCopy(system, f);
  await finishRollback(ledger, { interactionId, batchId, f, reason }, removal, {
    finalState: stateAfterRemoval(previous),
    detail: { removedKey: held.idempotencyKey, writer: held.writer },
  });
  const { gone, error } = removal;
  return outcome(f, 'removed', gone, interactionId, gone ? `removed (${heldText(held)})` : `not removed: ${error}`);
}

/** A file whose rollback failed, and whose copy is gone since: its rollback is done, as a new interaction. */
export async function recordGoneAsRolledBack(
  ledger: Ledger,
  f: Finding,
  previous: InteractionRow | null,
): Promise<RepairOutcome> {
  if (!previous) return outcome(f, 'skipped', true, null, 'not held: nothing to repair');
  const reason = `reconcile (${f.kind}): the copy is no longer held; the rollback is complete`;
  const batchId = previous.batch_id;
  const interactionId = await openRollbackInteraction(
    ledger,
    f,
    { batchId, sourcePath: previous.source_path, sha256: previous.sha256, sizeBytes: previous.size_bytes },
    previous,
    reason,
  );
  await finishRollback(
    ledger,
    { interactionId, batchId, f, reason },
    { gone: true, error: '' },
    { finalState: stateAfterRemoval(previous), detail: { notHeld: true } },
  );
  return outcome(f, 'rollback-recorded', true, interactionId, 'not held any more: rollback recorded as done');
}

/** Writes the rollback row a rolled-back, cancelled or failed file lacks, once its copy is confirmed gone. */
export async function writeRollbackRow(
  ledger: Ledger,
  system: RecordingSystem,
  f: Finding,
  previous: InteractionRow | null,
): Promise<RepairOutcome> {
  if (!previous) return outcome(f, 'skipped', false, null, 'the interaction is not in the ledger');
  if (await withRetries(() => system.stat(f.orderId, f.fileName))) {
    return outcome(f, 'skipped', false, null, 'the file is held: its copy must be removed first');
  }
  const failed = previous.status === 'ROLLBACK_FAILED';
  await ledger.recordRollback({
    interactionId: previous.interaction_id,
    batchId: previous.batch_id,
    orderId: previous.order_id,
    fileName: previous.file_name,
    reason: `recorded by reconcile: ${previous.last_error ?? previous.status}`,
    status: failed ? 'FAILED' : 'DONE',
    attempts: 1,
  });
  await ledger.appendEvent({
    interactionId: previous.interaction_id,
    eventKey: `RECONCILE_ROLLBACK_RECORDED:${Date.now()}`,
    kind: 'RECONCILE_ROLLBACK_RECORDED',
    detail: { status: failed ? 'FAILED' : 'DONE' },
  });
  return outcome(f, 'rollback-recorded', true, null, `${failed ? 'FAILED' : 'DONE'} rollback row written`);
}
