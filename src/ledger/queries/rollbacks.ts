/**
 * The `rollbacks` table: one row per compensated interaction, DONE or FAILED, updated in place
 * by later attempts.
 */
import type { LedgerQueries } from '../port';
import { safeLedgerText } from '../safe-text';
import type { LedgerDb } from '../schema';
import { nowIso } from './common';

export function rollbackQueries(db: LedgerDb) {
  return {
    /**
     * Inserts the interaction's rollback row, or updates its status, attempts, reason and
     * finished_at when it exists. `created_at` keeps the first call's time.
     */
    async recordRollback(r) {
      const now = nowIso();
      await db
        .insertInto('rollbacks')
        .values({
          interaction_id: r.interactionId,
          batch_id: r.batchId,
          order_id: r.orderId,
          file_name: r.fileName,
          reason: safeLedgerText(r.reason),
          status: r.status,
          attempts: r.attempts,
          created_at: now,
          finished_at: now,
        })
        .onConflict((oc) =>
          oc.column('interaction_id').doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            attempts: eb.ref('excluded.attempts'),
            reason: eb.ref('excluded.reason'),
            finished_at: eb.ref('excluded.finished_at'),
          })),
        )
        .execute();
    },

    async listRollbacks(batchId) {
      return db.selectFrom('rollbacks').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
    },

    async rollbacksOf(interactionIds) {
      if (interactionIds.length === 0) return [];
      return db.selectFrom('rollbacks').selectAll().where('interaction_id', 'in', interactionIds).execute();
    },
  } satisfies Partial<LedgerQueries>;
}
