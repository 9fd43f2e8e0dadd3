/**
 * One interaction at a time per destination file: before an interaction sends, it claims the
 * file (target, order, file) in the ledger, and a file whose bytes the target already holds, as
 * an earlier interaction recorded them, is delivered without a second upload. A rollback
 * removes this interaction's own copy only under the file's claim (removeOwnCopy).
 *
 * A claim held by a live interaction of another is reported back ("busy"): the file workflow
 * waits and looks again (sync-file.ts). A claim whose interaction has ended is free (the ledger
 * sees to that); one whose interaction never ends because its workflow run is closed (terminated,
 * timed out) is taken over, once that run is seen closed.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { FailureType } from '../failures';
import type { ClaimHolder, FileClaim, Ledger } from '../ledger/port';
import { PROCESS_CLAIM_PREFIX, processClaimLive } from '../ledger/queries/claims';
import type { RecordingSystem } from '../recording-system/port';
import { writerOf, type Digest, type FileRef } from './context';

/** The holder of a claim, as the file workflow is told of it. */
export interface BusyWith {
  interactionId: string;
  batchId: string;
  workflowId: string;
}

/** What a claim look found: the file is this interaction's to send, held by another, or already delivered. */
export type ClaimLook =
  { kind: 'taken' } | { kind: 'busy'; holder: BusyWith } | { kind: 'held'; heldBy: string; batchId: string };

/** Whether the workflow run of a claim's holder still runs; true when it cannot be told. */
async function holderRuns(holder: ClaimHolder): Promise<boolean> {
  if (holder.workflowId.startsWith(PROCESS_CLAIM_PREFIX)) return processClaimLive(holder);
  let client;
  try {
    client = Context.current().client;
  } catch {
    return true;
  }
  try {
    const described = await client.workflow.getHandle(holder.workflowId, holder.runId ?? undefined).describe();
    return described.status.name === 'RUNNING';
  } catch (err) {
    // Gone from the server (past retention): it runs no more.
    return !(err instanceof WorkflowNotFoundError);
  }
}

/**
 * Claims the file for this interaction, taking over the claim of a holder whose workflow run is
 * closed. Records CLAIM_WAIT (once per holder) and CLAIM_TAKEN_OVER events.
 */
/** The claim of this interaction on its file, naming the activity's workflow. */
export function claimOf(ref: FileRef, target: string): FileClaim {
  const execution = Context.current().info.workflowExecution;
  return {
    target,
    orderId: ref.item.orderId,
    fileName: ref.item.fileName,
    interactionId: ref.interactionId,
    batchId: ref.batchId,
    // Activities here always run for a workflow; the batch stands in for one that does not.
    workflowId: execution?.workflowId ?? `sync-batch/${ref.batchId}`,
    runId: execution?.runId,
  };
}

export async function claimFile(ledger: Ledger, ref: FileRef, target: string): Promise<ClaimLook> {
  const claim = claimOf(ref, target);
  let outcome = await ledger.claimFile(claim);
  let why = 'its interaction is not in the ledger';
  if (!outcome.taken && !(await holderRuns(outcome.holder))) {
    why = 'its workflow run is closed';
    outcome = await ledger.claimFile(claim, { over: outcome.holder.interactionId });
  }
  if (!outcome.taken) {
    const { interactionId, batchId, workflowId } = outcome.holder;
    await ledger.appendEvent({
      interactionId: ref.interactionId,
      eventKey: `CLAIM_WAIT:${interactionId}`,
      kind: 'CLAIM_WAIT',
      detail: { holder: interactionId, batchId, workflowId },
    });
    return { kind: 'busy', holder: { interactionId, batchId, workflowId } };
  }
  const from = outcome.from;
  if (from && (from.status === null || !isEnded(from.status))) {
    await ledger.appendEvent({
      interactionId: ref.interactionId,
      eventKey: `CLAIM_TAKEN_OVER:${from.interactionId}`,
      kind: 'CLAIM_TAKEN_OVER',
      detail: { from: from.interactionId, batchId: from.batchId, workflowId: from.workflowId, reason: why },
    });
  }
  return { kind: 'taken' };
}

/** How long a removal waits in all for a file another live interaction holds, before it fails (retryable). */
export const REMOVAL_CLAIM_PATIENCE_MS = 20_000;

/**
 * Claims the file before this interaction removes its own copy (a rollback), so that no other
 * interaction is deciding meanwhile that the copy is the one it holds: waits for a live holder
 * (250 ms doubling to 2 s between looks) for up to REMOVAL_CLAIM_PATIENCE_MS, then throws a
 * retryable ClaimBusy failure.
 */
export async function claimToRemove(ledger: Ledger, ref: FileRef, target: string, signal: AbortSignal): Promise<void> {
  let waited = 0;
  let wait = 250;
  for (;;) {
    const look = await claimFile(ledger, ref, target);
    if (look.kind !== 'busy') return;
    if (waited >= REMOVAL_CLAIM_PATIENCE_MS) {
      throw ApplicationFailure.retryable(
        `interaction ${look.holder.interactionId} of batch ${look.holder.batchId} is delivering this file; the rollback waits for it`,
        FailureType.ClaimBusy,
      );
    }
    await delay(wait, undefined, { signal });
    waited += wait;
    wait = Math.min(wait * 2, 2_000);
  }
}

function isEnded(status: string): boolean {
  return status === 'RECORDED' || status === 'ROLLED_BACK' || status === 'ROLLBACK_FAILED' || status === 'CANCELLED';
}

/**
 * Whether the target already holds these bytes of the file, as another interaction recorded
 * them: the ledger says so, and the receipt confirms it (same sha256 and size, written by an
 * image-sync interaction of this file). Then this interaction is RECORDED with an ALREADY_HELD
 * event naming the copy's interaction, and nothing is sent.
 */
export async function deliverIfHeld(
  ledger: Ledger,
  system: RecordingSystem,
  ref: FileRef & { resend: number },
  target: string,
  digest: Digest,
  signal: AbortSignal,
): Promise<ClaimLook | undefined> {
  const { item, interactionId } = ref;
  const recorded = await ledger.recordedWithBytes(
    { target, orderId: item.orderId, fileName: item.fileName, ...digest },
    { excludingInteraction: interactionId },
  );
  if (!recorded) return undefined;
  const receipt = await system.stat(item.orderId, item.fileName, { signal });
  if (!receipt || receipt.sha256 !== digest.sha256 || receipt.size !== digest.size) return undefined;
  if ((await writerOf(ledger, receipt, item, interactionId)) !== 'sibling') return undefined;
  const holder =
    receipt.idempotencyKey === recorded.interaction_id ? recorded : await ledger.getInteraction(receipt.idempotencyKey);
  const batchId = holder?.batch_id ?? recorded.batch_id;
  await ledger.appendEvent({
    interactionId,
    eventKey: 'ALREADY_HELD',
    kind: 'ALREADY_HELD',
    detail: { heldBy: receipt.idempotencyKey, batchId, recordedBy: recorded.interaction_id, resend: ref.resend },
  });
  await ledger.updateInteraction(interactionId, { status: 'RECORDED', lastError: null });
  return { kind: 'held', heldBy: receipt.idempotencyKey, batchId };
}

/**
 * The key of the copy an upload under --resend-recorded replaces: the target holds these bytes
 * of the file under another image-sync interaction's key (an earlier interaction recorded
 * them). A new copy under this interaction's key takes its place in one step at the recording
 * system (PutRequest.replacing). Undefined when there is nothing to replace.
 */
export async function copyToReplace(
  ledger: Ledger,
  system: RecordingSystem,
  ref: FileRef,
  digest: Digest,
  signal: AbortSignal,
): Promise<string | undefined> {
  if (!system.replacesHeldCopy) return undefined;
  const { item, interactionId } = ref;
  const receipt = await system.stat(item.orderId, item.fileName, { signal });
  if (!receipt || receipt.sha256 !== digest.sha256 || receipt.size !== digest.size) return undefined;
  if ((await writerOf(ledger, receipt, item, interactionId)) !== 'sibling') return undefined;
  return receipt.idempotencyKey;
}

/**
 * Removes the copy this interaction wrote, and checks it is gone. A copy another interaction
 * or another sender wrote is left in place: it is not this interaction's to roll back; so is
 * this interaction's own copy when another interaction recorded it as holding those bytes
 * ('sibling'). Its own copy is removed under the file's claim (waiting for a live holder), and
 * conditionally at the recording system (only the copy under this interaction's key), so a copy
 * written between the look and the removal is never lost.
 */
export async function removeOwnCopy(
  ledger: Ledger,
  system: RecordingSystem,
  ref: FileRef & { target: string },
  signal: AbortSignal,
): Promise<'gone' | 'sibling' | 'foreign'> {
  const { item, interactionId } = ref;
  const receipt = await system.stat(item.orderId, item.fileName, { signal });
  if (!receipt) return 'gone';
  const writer = await writerOf(ledger, receipt, item, interactionId);
  if (writer !== 'this') return writer;
  await claimToRemove(ledger, ref, ref.target, signal);
  const reliedOn = await ledger.recordedWithBytes(
    { target: ref.target, orderId: item.orderId, fileName: item.fileName, sha256: receipt.sha256, size: receipt.size },
    { excludingInteraction: interactionId },
  );
  if (reliedOn) return 'sibling';
  if ((await system.removeIfOwn(item.orderId, item.fileName, interactionId, { signal })) === 'other') {
    // Replaced since the look: this interaction's copy is gone; the one held now is not its own.
    const now = await system.stat(item.orderId, item.fileName, { signal });
    return now ? writerOf(ledger, now, item, interactionId).then((w) => (w === 'this' ? 'gone' : w)) : 'gone';
  }
  const after = await system.stat(item.orderId, item.fileName, { signal });
  if (after?.idempotencyKey === interactionId) {
    throw ApplicationFailure.retryable(
      `${item.orderId}/${item.fileName} is still held after DELETE`,
      FailureType.RemoveNotEffective,
    );
  }
  return 'gone';
}
