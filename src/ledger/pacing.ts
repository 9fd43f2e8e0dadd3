/**
 * The ledger's shared rate limits and its record of notifications.
 *
 * Rate limits are a cell-rate schedule per scope, kept in one row that every worker of a batch
 * updates: a reservation of `amount` units moves the row's `next_at_ms` on by amount / rate
 * from the later of itself and now, in one UPDATE ... RETURNING, so two workers can never take
 * the same slot. The caller waits until its slot starts. Nothing is held between reservations.
 */
import { sql, type Kysely } from 'kysely';
import { safeLedgerText } from './safe-text';
import type { LedgerDatabase, LedgerDialect, NotificationRecord } from './schema';

/** The limit of one scope: units (bytes or requests) per second; 0 lifts it. */
export interface ScopeLimit {
  scope: string;
  perSecond: number;
}

/** When a reservation may start, and the slowest rate among its scopes (to size the next one). */
export interface Reservation {
  startAtMs: number;
  slowestPerSecond: number;
}

export interface NotificationOutcome {
  eventId: string;
  batchId: string;
  event: string;
  url: string;
  outcome: 'DELIVERED' | 'FAILED';
  attempts: number;
  error?: string;
}

const later = (dialect: LedgerDialect) => sql.raw(dialect === 'postgres' ? 'GREATEST' : 'MAX');
const earlier = (dialect: LedgerDialect) => sql.raw(dialect === 'postgres' ? 'LEAST' : 'MIN');

/** Sets (or lifts, with 0) the limits of a batch's scopes. A lowered or raised rate applies to the next reservation. */
export async function setRateLimits(
  db: Kysely<LedgerDatabase>,
  dialect: LedgerDialect,
  batchId: string,
  limits: readonly ScopeLimit[],
  nowMs: number,
): Promise<void> {
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
          next_at_ms: sql<number>`${earlier(dialect)}(rate_limits.next_at_ms, ${nowMs})`,
          updated_at: updatedAt,
        }),
      )
      .execute();
  }
}

/** Reserves `amount` units in every limited scope of `scopes`; undefined when none is limited. */
export async function reserveRate(
  db: Kysely<LedgerDatabase>,
  dialect: LedgerDialect,
  scopes: readonly string[],
  amount: number,
  nowMs: number,
): Promise<Reservation | undefined> {
  if (scopes.length === 0 || amount <= 0) return undefined;
  const rows = await db
    .updateTable('rate_limits')
    .set({
      next_at_ms: sql<number>`${later(dialect)}(next_at_ms, ${nowMs}) + ${amount} * 1000.0 / per_second`,
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
}

/** Drops the limits of an ended batch. */
export async function clearRateLimits(db: Kysely<LedgerDatabase>, batchId: string): Promise<void> {
  await db.deleteFrom('rate_limits').where('batch_id', '=', batchId).execute();
}

/**
 * Records how one event's delivery to one URL went: each attempt replaces the record of the one
 * before; with `ifNew`, only when there is no record yet (the workflow's note of a delivery that
 * timed out before any attempt ended).
 */
export async function recordNotification(
  db: Kysely<LedgerDatabase>,
  n: NotificationOutcome,
  ifNew = false,
): Promise<void> {
  const row = {
    outcome: n.outcome,
    attempts: n.attempts,
    error: safeLedgerText(n.error ?? null),
    created_at: new Date().toISOString(),
  };
  await db
    .insertInto('notifications')
    .values({ event_id: n.eventId, batch_id: n.batchId, event: n.event, url: n.url, ...row })
    .onConflict((oc) =>
      ifNew ? oc.columns(['event_id', 'url']).doNothing() : oc.columns(['event_id', 'url']).doUpdateSet(row),
    )
    .execute();
}

export async function listNotifications(db: Kysely<LedgerDatabase>, batchId: string): Promise<NotificationRecord[]> {
  return db.selectFrom('notifications').selectAll().where('batch_id', '=', batchId).orderBy('id').execute();
}
