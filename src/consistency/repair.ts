/**
 * Repairs the drift `checkBatchConsistency` finds, until the ledger and the recording systems
 * agree: a RECORDED file that is missing or holds other bytes is sent again from its source
 * and verified; a file the ledger does not call RECORDED is removed; a missing rollback row is
 * written. Every repair is logged as an event of the interaction it concerns.
 */
import { judge } from '../activities';
import type { Targets } from '../config/targets';
import type { Ledger } from '../ledger/port';
import { contentTypeFor, sha256File } from '../source/files';
import { checkBatchConsistency, type ConsistencyReport, type Drift } from './invariant';

export interface RepairOutcome {
  drift: Drift;
  action: 'resent' | 'removed' | 'rollback-recorded' | 'none';
  ok: boolean;
  detail: string;
}

export async function repairBatch(args: {
  ledger: Ledger;
  targets: Targets;
  batchId: string;
  maxResends?: number;
}): Promise<{ before: ConsistencyReport; repairs: RepairOutcome[]; after: ConsistencyReport }> {
  const before = await checkBatchConsistency(args);
  const repairs: RepairOutcome[] = [];
  for (const drift of before.drifts) repairs.push(await repairOne(args.ledger, args.targets, drift));
  const after = await checkBatchConsistency(args);
  return { before, repairs, after };
}

async function repairOne(ledger: Ledger, targets: Targets, drift: Drift): Promise<RepairOutcome> {
  const system = targets.get(drift.target);
  const log = (kind: string, detail: unknown) =>
    ledger.appendEvent({ interactionId: drift.interactionId, eventKey: `${kind}:${Date.now()}`, kind, detail });
  try {
    switch (drift.kind) {
      case 'missing':
      case 'different-bytes': {
        const row = await ledger.getInteraction(drift.interactionId);
        if (!row) return { drift, action: 'none', ok: false, detail: 'interaction not found' };
        const digest = await sha256File(row.source_path);
        if (digest.sha256 !== row.sha256) {
          return {
            drift,
            action: 'none',
            ok: false,
            detail: `the source changed since it was sent (sha256 ${digest.sha256})`,
          };
        }
        if (drift.kind === 'different-bytes') await system.remove(row.order_id, row.file_name);
        await system.put({
          orderId: row.order_id,
          fileName: row.file_name,
          sourcePath: row.source_path,
          sha256: digest.sha256,
          size: digest.size,
          contentType: contentTypeFor(row.file_name),
          idempotencyKey: row.interaction_id,
        });
        const verdict = judge(await system.stat(row.order_id, row.file_name), {
          ...digest,
          interactionId: row.interaction_id,
        });
        await log('RECONCILE_RESENT', {
          drift: drift.kind,
          verified: verdict.ok,
          ...(verdict.ok ? {} : { rule: verdict.rule }),
        });
        return {
          drift,
          action: 'resent',
          ok: verdict.ok,
          detail: verdict.ok ? 'resent and verified' : `resent; ${verdict.rule}: ${verdict.detail}`,
        };
      }
      case 'extra': {
        await system.remove(drift.orderId, drift.fileName);
        const gone = (await system.stat(drift.orderId, drift.fileName)) === null;
        await log('RECONCILE_REMOVED', { status: drift.status, gone });
        return { drift, action: 'removed', ok: gone, detail: gone ? 'removed' : 'still held after DELETE' };
      }
      case 'rollback-record': {
        if (drift.status === 'ROLLBACK_FAILED') return { drift, action: 'none', ok: false, detail: 'needs a person' };
        if (await system.stat(drift.orderId, drift.fileName)) await system.remove(drift.orderId, drift.fileName);
        await ledger.recordRollback({
          interactionId: drift.interactionId,
          batchId: (await ledger.getInteraction(drift.interactionId))?.batch_id ?? '',
          orderId: drift.orderId,
          fileName: drift.fileName,
          reason: 'recorded by reconcile',
          status: 'DONE',
          attempts: 1,
        });
        await log('RECONCILE_ROLLBACK_RECORDED', {});
        return { drift, action: 'rollback-recorded', ok: true, detail: 'rollback row written' };
      }
      default:
        return { drift, action: 'none', ok: false, detail: `${drift.kind} is not repaired automatically` };
    }
  } catch (err) {
    return { drift, action: 'none', ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}
