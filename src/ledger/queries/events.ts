/**
 * The `interaction_events` table: the append-only process log of every interaction (SENT,
 * VERIFIED, VERIFY_FAILED with the rule that failed, RESEND_QUEUED, ROLLBACK_STARTED, ...).
 */
import type { InteractionTrail, LedgerQueries, NewEvent } from '../port';
import { serializeDetail } from '../safe-text';
import type { LedgerDb, LedgerDialect } from '../schema';
import { nowIso } from './common';
import { interactionSet } from './interactions';

/** Events that say a send failed: the trail's failed rule comes from the latest of them. */
const FAILURE_KINDS = ['VERIFY_FAILED', 'SEND_FAILED'] as const;
/** Events that say a send was made: the trail's first send is the earliest of them. */
const SEND_KINDS = ['SENT', 'SEND_FAILED'] as const;

/** The rule a VERIFY_FAILED event's JSON detail names, if any. */
function ruleOf(detail: string | null): string | null {
  if (detail === null) return null;
  try {
    const parsed = JSON.parse(detail) as { rule?: unknown };
    return typeof parsed.rule === 'string' ? parsed.rule : null;
  } catch {
    return null;
  }
}

/** An event as its row holds it. */
function eventRow(e: NewEvent, now: string) {
  return {
    interaction_id: e.interactionId,
    event_key: e.eventKey,
    kind: e.kind,
    detail: serializeDetail(e.detail),
    at: e.at ?? now,
  };
}

export function eventQueries(db: LedgerDb, dialect: LedgerDialect) {
  /** Inserts events, each once per (interaction, key); `into` may be a transaction or a CTE's builder. */
  const insertEvents = (into: Pick<LedgerDb, 'insertInto'>, events: readonly NewEvent[], now: string) =>
    into
      .insertInto('interaction_events')
      .values(events.map((e) => eventRow(e, now)))
      .onConflict((oc) => oc.columns(['interaction_id', 'event_key']).doNothing());

  return {
    async appendEvent(e) {
      await insertEvents(db, [e], nowIso()).execute();
    },

    async recordStep(interactionId, events, patch) {
      const now = nowIso();
      const all = events.map((e) => ({ ...e, interactionId }));
      if (!patch) {
        if (all.length > 0) await insertEvents(db, all, now).execute();
        return;
      }
      const update = (on: Pick<LedgerDb, 'updateTable'>) =>
        on.updateTable('interactions').set(interactionSet(patch, now)).where('interaction_id', '=', interactionId);
      if (all.length === 0) {
        await update(db).execute();
      } else if (dialect === 'postgres') {
        // One statement, one round trip: the insert as a data-modifying CTE of the update.
        await update(db.with('step_events', (q) => insertEvents(q, all, now))).execute();
      } else {
        await db.transaction().execute(async (trx) => {
          await insertEvents(trx, all, now).execute();
          await update(trx).execute();
        });
      }
    },

    async listEvents(interactionId) {
      return db
        .selectFrom('interaction_events')
        .select(['id', 'interaction_id', 'kind', 'detail', 'at'])
        .where('interaction_id', '=', interactionId)
        .orderBy('id')
        .execute();
    },

    /**
     * One row per interaction, grouped by the database: the ids of its latest failure event,
     * its first send event and its latest event (in the order written), joined back to read
     * their kind, detail and time.
     */
    async interactionTrails(batchId) {
      const marks = db
        .selectFrom('interaction_events as e')
        .innerJoin('interactions as i', 'i.interaction_id', 'e.interaction_id')
        .where('i.batch_id', '=', batchId)
        .groupBy('e.interaction_id')
        .select((eb) => [
          'e.interaction_id',
          eb.fn.max(eb.case().when('e.kind', 'in', FAILURE_KINDS).then(eb.ref('e.id')).end()).as('failed_id'),
          eb.fn.min(eb.case().when('e.kind', 'in', SEND_KINDS).then(eb.ref('e.id')).end()).as('sent_id'),
          eb.fn.max('e.id').as('last_id'),
        ]);
      const rows = await db
        .selectFrom(marks.as('m'))
        .innerJoin('interaction_events as last', 'last.id', 'm.last_id')
        .leftJoin('interaction_events as failed', 'failed.id', 'm.failed_id')
        .leftJoin('interaction_events as sent', 'sent.id', 'm.sent_id')
        .select([
          'm.interaction_id',
          'failed.kind as failed_kind',
          'failed.detail as failed_detail',
          'sent.at as sent_at',
          'last.at as last_at',
        ])
        .execute();
      const trails = new Map<string, InteractionTrail>();
      for (const r of rows) {
        let failedRule: string | null = null;
        if (r.failed_kind === 'VERIFY_FAILED') failedRule = ruleOf(r.failed_detail) ?? 'verify';
        if (r.failed_kind === 'SEND_FAILED') failedRule = 'send';
        trails.set(r.interaction_id, { failedRule, firstSentAt: r.sent_at, lastEventAt: r.last_at });
      }
      return trails;
    },
  } satisfies Partial<LedgerQueries>;
}
