/**
 * How a repair keeps the ledger's story true: every repair is a new interaction of the file,
 * linked from the one it follows, and every removal of a copy is recorded as a rollback with
 * its reason.
 */
import { randomUUID } from 'node:crypto';
import { errorText } from '../errors';
import type { InteractionRow, Ledger } from '../ledger/port';
import type { RecordingSystem } from '../recording-system/port';
import type { FileState } from '../shared';
import type { Finding } from './repair-outcome';
import { withRetries } from './retries';

/** The file a repair interaction is about, as the ledger records it. */
export interface RepairFile {
  batchId: string;
  sourcePath: string;
  sha256: string;
  sizeBytes: number;
  status: FileState;
}

/** Opens a new interaction of the file for a repair, and links it from the interaction it follows. */
export async function openRepairInteraction(
  ledger: Ledger,
  f: Finding,
  file: RepairFile,
  previous: InteractionRow | null,
): Promise<string> {
  const interactionId = randomUUID();
  const opened = await ledger.openInteraction({
    interactionId,
    batchId: file.batchId,
    orderId: f.orderId,
    fileName: f.fileName,
    target: f.target,
    sourcePath: file.sourcePath,
    sha256: file.sha256,
    sizeBytes: file.sizeBytes,
    status: file.status,
  });
  await ledger.appendEvent({
    interactionId,
    eventKey: 'OPENED',
    kind: 'OPENED',
    detail: { seq: opened.seq, reconcile: f.kind, follows: previous?.interaction_id ?? null, drift: f.detail },
  });
  if (previous) {
    await ledger.appendEvent({
      interactionId: previous.interaction_id,
      eventKey: `RECONCILE_REPAIR:${interactionId}`,
      kind: 'RECONCILE_REPAIR',
      detail: { drift: f.kind, repairedBy: interactionId },
    });
  }
  return interactionId;
}

/** A rollback a repair runs: of which interaction and file, and why. */
export interface RepairRollback {
  interactionId: string;
  batchId: string;
  f: Finding;
  reason: string;
}

/** Whether a removal left the file without the copy, and if not, why. */
export interface Removal {
  gone: boolean;
  error: string;
}

export async function startRollback(ledger: Ledger, interactionId: string, reason: string): Promise<void> {
  await ledger.appendEvent({
    interactionId,
    eventKey: 'ROLLBACK_STARTED',
    kind: 'ROLLBACK_STARTED',
    detail: { reason },
  });
}

/** Opens a repair interaction that removes a copy, and records its rollback as started. */
export async function openRollbackInteraction(
  ledger: Ledger,
  f: Finding,
  file: Omit<RepairFile, 'status'>,
  previous: InteractionRow | null,
  reason: string,
): Promise<string> {
  const interactionId = await openRepairInteraction(ledger, f, { ...file, status: 'ROLLING_BACK' }, previous);
  await startRollback(ledger, interactionId, reason);
  return interactionId;
}

/**
 * Removes the file's copy and checks it is gone. The removal is conditional on the key of the
 * copy: `ownKey` when given, else the key of the copy the finding saw; a copy written under
 * another key since (or before, with `ownKey`) is left in place and counts as gone: it is not
 * this repair's to remove.
 */
export async function removeCopy(system: RecordingSystem, f: Finding, ownKey?: string): Promise<Removal> {
  const key = ownKey ?? f.held?.idempotencyKey;
  try {
    if (key === undefined) await withRetries(() => system.remove(f.orderId, f.fileName));
    else await withRetries(() => system.removeIfOwn(f.orderId, f.fileName, key));
    const after = await withRetries(() => system.stat(f.orderId, f.fileName));
    const gone = after === null || (key !== undefined && after.idempotencyKey !== key);
    return { gone, error: gone ? '' : 'still held after DELETE' };
  } catch (err) {
    return { gone: false, error: errorText(err) };
  }
}

/** Records how a repair's rollback ended: its rollback row, its event, and the interaction's final state. */
export async function finishRollback(
  ledger: Ledger,
  r: RepairRollback,
  removal: Removal,
  end: { finalState: FileState; detail: Record<string, unknown> },
): Promise<void> {
  const { interactionId } = r;
  await ledger.recordRollback({
    interactionId,
    batchId: r.batchId,
    orderId: r.f.orderId,
    fileName: r.f.fileName,
    reason: r.reason,
    status: removal.gone ? 'DONE' : 'FAILED',
    attempts: 1,
  });
  if (removal.gone) {
    await ledger.appendEvent({ interactionId, eventKey: 'ROLLED_BACK', kind: 'ROLLED_BACK', detail: end.detail });
    await ledger.updateInteraction(interactionId, { status: end.finalState, lastError: r.reason });
  } else {
    await ledger.appendEvent({
      interactionId,
      eventKey: 'ROLLBACK_FAILED',
      kind: 'ROLLBACK_FAILED',
      detail: { ...end.detail, error: removal.error },
    });
    await ledger.updateInteraction(interactionId, { status: 'ROLLBACK_FAILED', lastError: removal.error });
  }
}
