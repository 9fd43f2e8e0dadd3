/**
 * The `rate_limits` table: the limits of running batches, shared by every worker.
 *
 * Each scope is a cell-rate schedule in one row: a reservation of `amount` units moves the row's
 * `next_at_ms` on by amount / rate from the later of itself and now, in one UPDATE ... RETURNING,
 * so two workers never take the same slot. The caller waits until its slot starts; nothing is
 * held between reservations.
 */
import { sql } from 'kysely';
import type { LedgerQueries } from '../port';
import type { LedgerDb } from '../schema';

export function rateLimitQueries(db: LedgerDb) {
  return {
    async setRateLimits(batchId, limits) {
      const nowMs = Date.now();
      const updatedAt = new Date(nowMs).toISOString();
      for (const { scope, perSecond } of limits) {
        if (!(perSecond > 0)) {
          await db.deleteFrom('rate_limits').where('scope', '=', scope).execute();
          continue;
        }
        await db
          .insertInto('rate_limits')
          .values({ scope, batch_id: batchId, per_second: perSecond, next_at_ms: nowMs, updated_at: updatedAt })
          .onConflict((oc) =>
            oc.column('scope').doUpdateSet({
              per_second: perSecond,
              // Slots reserved far ahead at an old, lower rate are given back.
              next_at_ms: sql<number>`CASE WHEN rate_limits.next_at_ms < ${nowMs} THEN rate_limits.next_at_ms ELSE ${nowMs} END`,
              updated_at: updatedAt,
            }),
          )
          .execute();
      }
    },

    async reserveRate(scopes, amount) {
      if (scopes.length === 0 || amount <= 0) return undefined;
      const nowMs = Date.now();
      const rows = await db
        .updateTable('rate_limits')
        .set({
          next_at_ms: sql<number>`(CASE WHEN next_at_ms > ${nowMs} THEN next_at_ms ELSE ${nowMs} END) + ${amount} * 1000.0 / per_second`,
        })
        .where('scope', 'in', scopes)
        .where('per_second', '>', 0)
        .returning(['next_at_ms', 'per_second'])
        .execute();
      if (rows.length === 0) return undefined;
      let startAtMs = nowMs;
      let slowestPerSecond = Infinity;
      for (const row of rows) {
        const perSecond = Number(row.per_second);
        startAtMs = Math.max(startAtMs, Number(row.next_at_ms) - (amount * 1000) / perSecond);
        slowestPerSecond = Math.min(slowestPerSecond, perSecond);
      }
      return { startAtMs, slowestPerSecond };
    },

    async clearRateLimits(batchId) {
      await db.deleteFrom('rate_limits').where('batch_id', '=', batchId).execute();
    },
  } satisfies Partial<LedgerQueries>;
}
