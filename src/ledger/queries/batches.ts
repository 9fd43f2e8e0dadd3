/** The `sync_batches` table: one row per batch, its state and its end counts. */
import type { Updateable } from 'kysely';
import type { LedgerQueries } from '../port';
import type { LedgerDb, SyncBatchesTable } from '../schema';
import { nowIso } from './common';

/** The columns of `sync_batches` that form a BatchRow. */
const BATCH_COLUMNS = [
  'batch_id',
  'workflow_id',
  'state',
  'total',
  'recorded',
  'rolled_back',
  'failed',
  'created_at',
  'finished_at',
] as const;

export function batchQueries(db: LedgerDb) {
  return {
    async ensureBatch(b) {
      const now = nowIso();
      await db
        .insertInto('sync_batches')
        .values({
          batch_id: b.batchId,
          workflow_id: b.workflowId,
          state: b.state,
          total: b.total,
          recorded: 0,
          rolled_back: 0,
          failed: 0,
          created_at: now,
          updated_at: now,
          finished_at: null,
        })
        .onConflict((oc) => oc.column('batch_id').doNothing())
        .execute();
    },

    async updateBatch(batchId, patch) {
      const now = nowIso();
      const set: Updateable<SyncBatchesTable> = { updated_at: now };
      if (patch.state !== undefined) set.state = patch.state;
      if (patch.total !== undefined) set.total = patch.total;
      if (patch.recorded !== undefined) set.recorded = patch.recorded;
      if (patch.rolledBack !== undefined) set.rolled_back = patch.rolledBack;
      if (patch.failed !== undefined) set.failed = patch.failed;
      let query = db.updateTable('sync_batches').set(set);
      if (patch.finished === true) {
        query = query.set((eb) => ({ finished_at: eb.fn.coalesce('finished_at', eb.val(now)) }));
      } else if (patch.finished === false) {
        query = query.set({ finished_at: null });
      }
      await query.where('batch_id', '=', batchId).execute();
    },

    async getBatch(batchId) {
      return db.selectFrom('sync_batches').select(BATCH_COLUMNS).where('batch_id', '=', batchId).executeTakeFirst();
    },

    async listBatches(opts = {}) {
      let query = db.selectFrom('sync_batches').select(BATCH_COLUMNS);
      if (opts.state !== undefined) query = query.where('state', '=', opts.state);
      query = query.orderBy('created_at', 'desc').orderBy('batch_id', 'desc');
      if (opts.limit !== undefined) query = query.limit(opts.limit);
      return query.execute();
    },
  } satisfies Partial<LedgerQueries>;
}
