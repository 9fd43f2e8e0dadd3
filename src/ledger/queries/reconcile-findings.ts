/**
 * The `reconcile_findings` table: what each scheduled (or recorded) reconcile run found, one
 * row per (run, kind, target, order, file).
 */
import type { LedgerQueries } from '../port';
import { safeLedgerText } from '../safe-text';
import type { LedgerDb } from '../schema';
import { nowIso, slices } from './common';

/** Rows one insert writes: nine values each stays under the backends' bound-parameter limits. */
const ROWS_PER_INSERT = 200;

export function reconcileFindingQueries(db: LedgerDb) {
  return {
    async recordReconcileFindings(run) {
      const now = nowIso();
      for (const part of slices(run.findings, ROWS_PER_INSERT)) {
        await db
          .insertInto('reconcile_findings')
          .values(
            part.map((f) => ({
              run_id: run.runId,
              batch_id: run.batchId,
              kind: f.kind,
              order_id: f.orderId,
              file_name: f.fileName,
              target: f.target,
              interaction_id: f.interactionId,
              detail: safeLedgerText(f.detail),
              found_at: now,
            })),
          )
          .onConflict((oc) => oc.columns(['run_id', 'kind', 'target', 'order_id', 'file_name']).doNothing())
          .execute();
      }
    },

    async listReconcileFindings(batchId) {
      return db.selectFrom('reconcile_findings').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
    },
  } satisfies Partial<LedgerQueries>;
}
