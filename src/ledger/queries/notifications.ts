/**
 * The `notifications` table: how each batch event's delivery to each receiver went, one row per
 * (event, URL), replaced by each later attempt.
 */
import type { LedgerQueries } from '../port';
import { safeLedgerText } from '../safe-text';
import type { LedgerDb } from '../schema';
import { nowIso } from './common';

export function notificationQueries(db: LedgerDb) {
  return {
    async recordNotification(n, ifNew = false) {
      const row = {
        outcome: n.outcome,
        attempts: n.attempts,
        error: safeLedgerText(n.error ?? null),
        created_at: nowIso(),
      };
      await db
        .insertInto('notifications')
        .values({ event_id: n.eventId, batch_id: n.batchId, event: n.event, url: n.url, ...row })
        .onConflict((oc) =>
          ifNew ? oc.columns(['event_id', 'url']).doNothing() : oc.columns(['event_id', 'url']).doUpdateSet(row),
        )
        .execute();
    },

    async listNotifications(batchId) {
      return db.selectFrom('notifications').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
    },
  } satisfies Partial<LedgerQueries>;
}
