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
 * Every repair is logged as events of the interactions it concerns (the process log). The
 * repairs are in repair-resend.ts and repair-remove.ts; repair-ledger.ts records them.
 */
import { errorText } from '../errors';
import { checkBatchConsistency, type CheckOptions, type ConsistencyReport } from './invariant';
import { outcome, type Finding, type RepairOutcome } from './repair-outcome';
import { recordGoneAsRolledBack, removeAsNewInteraction, writeRollbackRow } from './repair-remove';
import { REPAIR_CLAIM_PATIENCE_MS } from './repair-claim';
import { resendAsNewInteraction } from './repair-resend';

export interface RepairOptions extends CheckOptions {
  /** Remove copies another sender wrote where the ledger says none should be, or where ours should be. */
  removeForeign?: boolean;
  /** How long a resend waits for a file another live interaction is delivering (default REPAIR_CLAIM_PATIENCE_MS). */
  claimPatienceMs?: number;
}

export interface RepairResult {
  before: ConsistencyReport;
  repairs: RepairOutcome[];
  after: ConsistencyReport;
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
        return await resendAsNewInteraction(
          ledger,
          system,
          f,
          previous,
          opts.claimPatienceMs ?? REPAIR_CLAIM_PATIENCE_MS,
        );
      case 'held-not-recorded':
      case 'held-never-started':
      case 'rollback-failed':
        if (!f.held) return await recordGoneAsRolledBack(ledger, f, previous);
        return await removeAsNewInteraction(ledger, system, opts.batchId, f, previous);
      case 'rollback-record':
        return await writeRollbackRow(ledger, system, f, previous);
    }
  } catch (err) {
    return outcome(f, 'skipped', false, null, errorText(err));
  }
}
