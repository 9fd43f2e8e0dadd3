/**
 * Repairs the drift `checkBatchConsistency` finds, in the way that keeps the ledger's story true:
 * - a RECORDED file whose copy is missing, altered or stale is sent again from its source as a
 *   new interaction of the batch (a new interaction id as idempotency key, SENT, then VERIFIED or
 *   VERIFY_FAILED with the rule), after the copy held in its place is removed;
 * - a copy that should not be held (the file was rolled back, cancelled or never started, or its
 *   rollback failed) is removed as a new interaction whose removal is recorded as a rollback
 *   with its reason;
 * - a copy another sender wrote is removed only when `removeForeign` is set;
 * - a missing rollback row of a file that is not held is written.
 * Every repair is logged as events of the interactions it concerns (the process log).
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { judge } from '../activities';
import type { InteractionRow, Ledger } from '../ledger/port';
import type { RecordingSystem } from '../recording-system/port';
import type { FileState } from '../shared';
import { contentTypeFor, sha256File } from '../source/files';
import {
  checkBatchConsistency,
  withRetries,
  writerText,
  type CheckOptions,
  type ConsistencyReport,
  type DriftKind,
  type HeldCopy,
} from './invariant';

export interface RepairOptions extends CheckOptions {
  /** Remove copies another sender wrote where the ledger says none should be, or where ours should be. */
  removeForeign?: boolean;
}

export interface RepairOutcome {
  kind: DriftKind | 'rollback-failed';
  orderId: string;
  fileName: string;
  target: string;
  action: 'resent' | 'removed' | 'rollback-recorded' | 'skipped';
  ok: boolean;
  /** The interaction the repair opened, when it opened one. */
  interactionId: string | null;
  detail: string;
}

export interface RepairResult {
  before: ConsistencyReport;
  repairs: RepairOutcome[];
  after: ConsistencyReport;
}

/** One file to repair, from a drift or a file needing attention. */
interface Finding {
  kind: DriftKind | 'rollback-failed';
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string | null;
  held: HeldCopy | null;
  detail: string;
}

export async function repairBatch(opts: RepairOptions): Promise<RepairResult> {
  const before = await checkBatchConsistency(opts);
  const findings: Finding[] = [...before.drifts, ...before.needsAttention];
  const repairs: RepairOutcome[] = [];
  // A file with several drifts is repaired once, by the first repair that applies to it.
  const repaired = new Set<string>();
  for (const f of findings) {
    const key = `${f.target}\u0000${f.orderId}\u0000${f.fileName}`;
    if (repaired.has(key)) {
      repairs.push(outcome(f, 'skipped', true, null, 'repaired with the file’s other drift'));
      continue;
    }
    const result = await repairOne(opts, f);
    if (result.action !== 'skipped') repaired.add(key);
    repairs.push(result);
  }
  const after = await checkBatchConsistency(opts);
  return { before, repairs, after };
}

function outcome(
  f: Finding,
  action: RepairOutcome['action'],
  ok: boolean,
  interactionId: string | null,
  detail: string,
): RepairOutcome {
  return {
    kind: f.kind,
    orderId: f.orderId,
    fileName: f.fileName,
    target: f.target,
    action,
    ok,
    interactionId,
    detail,
  };
}

async function repairOne(opts: RepairOptions, f: Finding): Promise<RepairOutcome> {
  const { ledger, targets } = opts;
  if (f.kind === 'resends') return outcome(f, 'skipped', false, null, 'a resend count is history: nothing to repair');
  if (f.kind === 'unfinished') return outcome(f, 'skipped', false, null, 'the file has not finished; run again later');
  if (!targets.has(f.target)) return outcome(f, 'skipped', false, null, `target ${f.target} is not configured`);
  if (f.held?.writer === 'foreign' && !opts.removeForeign && f.kind !== 'rollback-record') {
    return outcome(
      f,
      'skipped',
      false,
      null,
      `the copy held was written by another sender (key ${f.held.idempotencyKey}); --remove-foreign removes it`,
    );
  }
  const system = targets.get(f.target);
  const previous = f.interactionId ? ((await ledger.getInteraction(f.interactionId)) ?? null) : null;
  try {
    switch (f.kind) {
      case 'missing':
      case 'different-bytes':
      case 'stale':
        if (!previous) return outcome(f, 'skipped', false, null, 'the interaction is not in the ledger');
        return await resendAsNewInteraction(ledger, system, f, previous);
      case 'held-not-recorded':
      case 'held-never-started':
      case 'rollback-failed':
        if (!f.held) return await recordGoneAsRolledBack(ledger, f, previous);
        return await removeAsNewInteraction(ledger, system, opts.batchId, f, previous);
      case 'rollback-record':
        return await writeRollbackRow(ledger, system, f, previous);
    }
  } catch (err) {
    return outcome(f, 'skipped', false, null, err instanceof Error ? err.message : String(err));
  }
}

function heldText(held: HeldCopy): string {
  return `sha256 ${held.sha256}, ${held.size} B, written by ${writerText(held)}`;
}

/** Opens a new interaction of the file for a repair, and links it from the interaction it follows. */
async function openRepairInteraction(
  ledger: Ledger,
  f: Finding,
  file: { batchId: string; sourcePath: string; sha256: string; sizeBytes: number; status: FileState },
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

/** Sends the file's source again as a new interaction, and verifies it with the preset rules. */
async function resendAsNewInteraction(
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
    { ...previous, batchId: previous.batch_id, sourcePath: previous.source_path, ...sized(digest), status: 'SENDING' },
    previous,
  );
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
    const error = err instanceof Error ? err.message : String(err);
    await ledger.appendEvent({ interactionId, eventKey: 'SEND_FAILED:0:1', kind: 'SEND_FAILED', detail: { error } });
    await rollBackOwnCopy(ledger, system, f, interactionId, previous.batch_id, `reconcile resend failed: ${error}`);
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
  await rollBackOwnCopy(
    ledger,
    system,
    f,
    interactionId,
    previous.batch_id,
    `reconcile resend failed verification: ${verdict.rule}: ${verdict.detail}`,
  );
  return outcome(
    f,
    'resent',
    false,
    interactionId,
    `verification failed (${verdict.rule}: ${verdict.detail}); rolled back`,
  );
}

function sized(digest: { sha256: string; size: number }): { sha256: string; sizeBytes: number } {
  return { sha256: digest.sha256, sizeBytes: digest.size };
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
  await ledger.appendEvent({
    interactionId,
    eventKey: 'ROLLBACK_STARTED',
    kind: 'ROLLBACK_STARTED',
    detail: { reason },
  });
  await ledger.updateInteraction(interactionId, { status: 'ROLLING_BACK' });
  let gone = false;
  let error = '';
  try {
    const receipt = await withRetries(() => system.stat(f.orderId, f.fileName));
    if (receipt?.idempotencyKey === interactionId) await withRetries(() => system.remove(f.orderId, f.fileName));
    const after = await withRetries(() => system.stat(f.orderId, f.fileName));
    gone = after === null || after.idempotencyKey !== interactionId;
    if (!gone) error = 'still held after DELETE';
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  await finishRollback(ledger, {
    interactionId,
    batchId,
    f,
    reason,
    gone,
    error,
    finalState: 'ROLLED_BACK',
    detail: {},
  });
}

async function finishRollback(
  ledger: Ledger,
  r: {
    interactionId: string;
    batchId: string;
    f: Finding;
    reason: string;
    gone: boolean;
    error: string;
    finalState: FileState;
    detail: Record<string, unknown>;
  },
): Promise<void> {
  const { interactionId } = r;
  await ledger.recordRollback({
    interactionId,
    batchId: r.batchId,
    orderId: r.f.orderId,
    fileName: r.f.fileName,
    reason: r.reason,
    status: r.gone ? 'DONE' : 'FAILED',
    attempts: 1,
  });
  if (r.gone) {
    await ledger.appendEvent({ interactionId, eventKey: 'ROLLED_BACK', kind: 'ROLLED_BACK', detail: r.detail });
    await ledger.updateInteraction(interactionId, { status: r.finalState, lastError: r.reason });
  } else {
    await ledger.appendEvent({
      interactionId,
      eventKey: 'ROLLBACK_FAILED',
      kind: 'ROLLBACK_FAILED',
      detail: { ...r.detail, error: r.error },
    });
    await ledger.updateInteraction(interactionId, { status: 'ROLLBACK_FAILED', lastError: r.error });
  }
}

/** The state a file whose copy reconcile removed ends in: as before, or CANCELLED for a file that never started. */
function stateAfterRemoval(previous: InteractionRow | null): FileState {
  if (!previous) return 'CANCELLED';
  return previous.status === 'CANCELLED' ? 'CANCELLED' : 'ROLLED_BACK';
}

/** Removes a copy that should not be held, as a new interaction recorded as a rollback with its reason. */
async function removeAsNewInteraction(
  ledger: Ledger,
  system: RecordingSystem,
  batchId: string,
  f: Finding,
  previous: InteractionRow | null,
): Promise<RepairOutcome> {
  const held = f.held!;
  const reason = `reconcile (${f.kind}): removed a copy the ledger says should not be held (${heldText(held)})`;
  const interactionId = await openRepairInteraction(
    ledger,
    f,
    {
      batchId,
      sourcePath: previous?.source_path ?? '',
      sha256: held.sha256,
      sizeBytes: held.size,
      status: 'ROLLING_BACK',
    },
    previous,
  );
  await ledger.appendEvent({
    interactionId,
    eventKey: 'ROLLBACK_STARTED',
    kind: 'ROLLBACK_STARTED',
    detail: { reason },
  });
  let gone = false;
  let error = '';
  try {
    await withRetries(() => system.remove(f.orderId, f.fileName));
    gone = (await withRetries(() => system.stat(f.orderId, f.fileName))) === null;
    if (!gone) error = 'still held after DELETE';
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  await finishRollback(ledger, {
    interactionId,
    batchId,
    f,
    reason,
    gone,
    error,
    finalState: stateAfterRemoval(previous),
    detail: { removedKey: held.idempotencyKey, writer: held.writer },
  });
  return outcome(f, 'removed', gone, interactionId, gone ? `removed (${heldText(held)})` : `not removed: ${error}`);
}

/** A file whose rollback failed, and whose copy is gone since: its rollback is done, as a new interaction. */
async function recordGoneAsRolledBack(
  ledger: Ledger,
  f: Finding,
  previous: InteractionRow | null,
): Promise<RepairOutcome> {
  if (!previous) return outcome(f, 'skipped', true, null, 'not held: nothing to repair');
  const reason = `reconcile (${f.kind}): the copy is no longer held; the rollback is complete`;
  const interactionId = await openRepairInteraction(
    ledger,
    f,
    {
      batchId: previous.batch_id,
      sourcePath: previous.source_path,
      sha256: previous.sha256,
      sizeBytes: previous.size_bytes,
      status: 'ROLLING_BACK',
    },
    previous,
  );
  await ledger.appendEvent({
    interactionId,
    eventKey: 'ROLLBACK_STARTED',
    kind: 'ROLLBACK_STARTED',
    detail: { reason },
  });
  await finishRollback(ledger, {
    interactionId,
    batchId: previous.batch_id,
    f,
    reason,
    gone: true,
    error: '',
    finalState: stateAfterRemoval(previous),
    detail: { notHeld: true },
  });
  return outcome(f, 'rollback-recorded', true, interactionId, 'not held any more: rollback recorded as done');
}

/** Writes the rollback row a rolled-back, cancelled or failed file lacks, once its copy is confirmed gone. */
async function writeRollbackRow(
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
