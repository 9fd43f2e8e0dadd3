/**
 * The activities of the scheduled reconcile (`scheduledReconcile`): find the batches to check,
 * and check one batch against the recording systems, keeping what it found in the ledger's
 * `reconcile_findings` table. Reads only: a scheduled reconcile never repairs.
 */
import { Context } from '@temporalio/activity';
import type { Targets } from '../config/targets';
import { batchContextFromTemporal } from '../consistency/batch-context';
import { checkBatchConsistency, type ConsistencyReport } from '../consistency/invariant';
import type { ReconcileSummary } from '../consistency/scheduled-types';
import type { Ledger, ReconcileFinding } from '../ledger/port';

/** Drift lines a summary carries into workflow history. */
const SAMPLE_LINES = 10;

export function createReconcileActivities(deps: { ledger: Ledger; targets: Targets }) {
  const { ledger, targets } = deps;
  return {
    /** The batches whose files were read from under `dir`, oldest first. */
    async findBatchesToReconcile(args: { dir: string }): Promise<string[]> {
      return ledger.batchIdsWithSourcesUnder(args.dir);
    },

    /**
     * Checks one batch (every clause of the invariant) and records each drift, warning and file
     * needing attention in the ledger under the calling workflow run's id.
     */
    async reconcileBatch(args: { batchId: string }): Promise<ReconcileSummary> {
      const ctx = Context.current();
      // Findings are kept under the run of the workflow that asked, so each run's are told apart.
      const runId = ctx.info.workflowExecution?.runId ?? ctx.info.activityId;
      ctx.heartbeat({ phase: 'start' });
      const context = await batchContextFromTemporal(ctx.client, args.batchId);
      const report = await checkBatchConsistency({
        ledger,
        targets,
        batchId: args.batchId,
        maxResends: context.maxResends,
        manifestPath: context.manifestPath,
        onProgress: (p) => ctx.heartbeat(p),
        signal: ctx.cancellationSignal,
      });
      report.unchecked.push(...context.problems);
      await ledger.recordReconcileFindings({ runId, batchId: args.batchId, findings: findingsOf(report) });
      const summary = summarize(report);
      const row = await ledger.getBatch(args.batchId);
      if (row) {
        const { files } = await ledger.batchCounts(args.batchId);
        summary.ledger = {
          state: row.state,
          total: row.total,
          recorded: files.RECORDED ?? 0,
          rolledBack: files.ROLLED_BACK ?? 0,
          rollbackFailed: files.ROLLBACK_FAILED ?? 0,
          cancelled: files.CANCELLED ?? 0,
        };
      }
      return summary;
    },
  };
}

export type ReconcileActivities = ReturnType<typeof createReconcileActivities>;

function findingsOf(report: ConsistencyReport): ReconcileFinding[] {
  return [...report.drifts.map((d) => ({ ...d, detail: d.detail })), ...report.warnings, ...report.needsAttention].map(
    (f) => ({
      kind: f.kind,
      orderId: f.orderId,
      fileName: f.fileName,
      target: f.target,
      interactionId: f.interactionId,
      detail: f.detail,
    }),
  );
}

function summarize(report: ConsistencyReport): ReconcileSummary {
  const byKind: Record<string, number> = {};
  for (const d of report.drifts) byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
  return {
    batchId: report.batchId,
    files: report.files,
    drifts: report.drifts.length,
    byKind,
    warnings: report.warnings.length,
    needsAttention: report.needsAttention.length,
    unchecked: report.unchecked,
    sample: report.drifts.slice(0, SAMPLE_LINES).map((d) => `${d.kind} ${d.orderId}/${d.fileName}: ${d.detail}`),
  };
}
