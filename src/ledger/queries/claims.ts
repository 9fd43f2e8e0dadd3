/**
 * The `file_claims` table: one claim per destination file (target, order, file), so that two
 * interactions for the same file (two batches, a batch and a schedule, a redrive and a new
 * batch) never send it alongside each other.
 *
 * A claim names its interaction, batch and workflow. It needs no release: it is free as soon as
 * its interaction has ended (the interaction's status is final), or when that interaction is
 * not in the ledger. A claim whose interaction never ends because its workflow is gone is taken
 * over by name (`over`), once the caller has seen that workflow closed.
 *
 * Taking a claim is one statement when no one else holds it (an insert, or a refresh of the
 * caller's own claim); taking over is a compare-and-set on the holder's interaction id, so of
 * several callers racing for one claim exactly one wins, on both backends and across processes.
 */
import type { FileOutcome } from '../../shared';
import type { ClaimedFile, ClaimHolder, ClaimOutcome, FileClaim, LedgerQueries } from '../port';
import { serializeDetail } from '../safe-text';
import type { LedgerDb } from '../schema';
import { nowIso } from './common';
import { insertInteraction } from './interactions';

/** The statuses in which an interaction has ended, and its claim is free. */
export const ENDED_STATUSES: readonly FileOutcome[] = ['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'CANCELLED'];

/**
 * A claim held by a process instead of a workflow (a reconcile repair) names a workflow id under
 * this prefix and no run. No workflow can be asked whether it still runs, so the claim is live
 * for PROCESS_CLAIM_LEASE_MS from its taking; past that a delivery takes it over.
 */
export const PROCESS_CLAIM_PREFIX = 'reconcile-repair/';
export const PROCESS_CLAIM_LEASE_MS = 10 * 60_000;

/** Whether a claim taken by a process is still within its lease. */
export function processClaimLive(holder: { workflowId: string; claimedAt: string }, now = Date.now()): boolean {
  return (
    holder.workflowId.startsWith(PROCESS_CLAIM_PREFIX) && now - Date.parse(holder.claimedAt) < PROCESS_CLAIM_LEASE_MS
  );
}

/** Attempts at a claim that changes hands under the caller (each change means another caller won). */
const CLAIM_ROUNDS = 3;

export function claimQueries(db: LedgerDb) {
  const values = (c: FileClaim) => ({
    target: c.target,
    order_id: c.orderId,
    file_name: c.fileName,
    interaction_id: c.interactionId,
    batch_id: c.batchId,
    workflow_id: c.workflowId,
    run_id: c.runId ?? null,
    claimed_at: nowIso(),
  });

  /** The claim of a file with the status of its interaction. */
  const claimRow = (f: ClaimedFile) =>
    db
      .selectFrom('file_claims as c')
      .leftJoin('interactions as i', 'i.interaction_id', 'c.interaction_id')
      .select(['c.interaction_id', 'c.batch_id', 'c.workflow_id', 'c.run_id', 'c.claimed_at', 'i.status'])
      .where('c.target', '=', f.target)
      .where('c.order_id', '=', f.orderId)
      .where('c.file_name', '=', f.fileName);

  /** Inserts the claim, or refreshes the caller's own; true when the caller holds it after. */
  async function insertOrRefresh(c: FileClaim): Promise<boolean> {
    const row = await db
      .insertInto('file_claims')
      .values(values(c))
      .onConflict((oc) =>
        oc
          .columns(['target', 'order_id', 'file_name'])
          .doUpdateSet({ claimed_at: (eb) => eb.ref('excluded.claimed_at') })
          .where('file_claims.interaction_id', '=', c.interactionId),
      )
      .returning('interaction_id')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Moves the claim from `from` to the caller; false when it is no longer `from`'s. */
  async function swap(c: FileClaim, from: string): Promise<boolean> {
    const { target, order_id, file_name, ...rest } = values(c);
    const result = await db
      .updateTable('file_claims')
      .set(rest)
      .where('target', '=', target)
      .where('order_id', '=', order_id)
      .where('file_name', '=', file_name)
      .where('interaction_id', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  return {
    async claimFile(c: FileClaim, opts: { over?: string } = {}): Promise<ClaimOutcome> {
      for (let round = 1; ; round++) {
        if (await insertOrRefresh(c)) return { taken: true };
        const row = await claimRow(c).executeTakeFirst();
        if (!row) continue; // removed meanwhile: insert again
        const holder = holderOf(row);
        const free = holder.status === null || ENDED_STATUSES.includes(holder.status as FileOutcome);
        if (free || opts.over === holder.interactionId) {
          if (await swap(c, holder.interactionId)) return { taken: true, from: holder };
          if (round < CLAIM_ROUNDS) continue;
        }
        return { taken: false, holder };
      }
    },

    async openClaimed(i, claim, opened) {
      return db.transaction().execute(async (trx) => {
        const now = nowIso();
        const seq = await insertInteraction(trx, i, now);
        await trx
          .insertInto('interaction_events')
          .values({
            interaction_id: i.interactionId,
            event_key: 'OPENED',
            kind: 'OPENED',
            detail: serializeDetail({ seq, ...opened }),
            at: now,
          })
          .onConflict((oc) => oc.columns(['interaction_id', 'event_key']).doNothing())
          .execute();
        const inserted = await trx
          .insertInto('file_claims')
          .values(values(claim))
          .onConflict((oc) => oc.columns(['target', 'order_id', 'file_name']).doNothing())
          .returning('interaction_id')
          .executeTakeFirst();
        return { seq, firstClaim: inserted !== undefined };
      });
    },

    async claimOf(file: ClaimedFile) {
      const row = await claimRow(file).executeTakeFirst();
      return row && holderOf(row);
    },

    async alreadyHeldIn(batchId: string) {
      const rows = await db
        .selectFrom('interaction_events as e')
        .innerJoin('interactions as i', 'i.interaction_id', 'e.interaction_id')
        .select(['e.interaction_id', 'e.detail'])
        .where('i.batch_id', '=', batchId)
        .where('e.kind', '=', 'ALREADY_HELD')
        .execute();
      const heldBy = new Map<string, string>();
      for (const r of rows) {
        const detail = r.detail ? (JSON.parse(r.detail) as { heldBy?: unknown }) : {};
        heldBy.set(r.interaction_id, typeof detail.heldBy === 'string' ? detail.heldBy : '');
      }
      return heldBy;
    },

    async recordedWithBytes(file, opts = {}) {
      let query = db
        .selectFrom('interactions as i')
        .selectAll('i')
        .where('i.target', '=', file.target)
        .where('i.order_id', '=', file.orderId)
        .where('i.file_name', '=', file.fileName)
        .where('i.sha256', '=', file.sha256)
        .where('i.size_bytes', '=', file.size)
        .where('i.status', '=', 'RECORDED')
        // Still its batch's latest interaction of the file: a later one (a redrive) speaks for it.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('interactions as newer')
                .select('newer.seq')
                .whereRef('newer.batch_id', '=', 'i.batch_id')
                .whereRef('newer.order_id', '=', 'i.order_id')
                .whereRef('newer.file_name', '=', 'i.file_name')
                .whereRef('newer.seq', '>', 'i.seq'),
            ),
          ),
        );
      if (opts.excludingInteraction !== undefined) {
        query = query.where('i.interaction_id', '!=', opts.excludingInteraction);
      }
      if (opts.excludingBatch !== undefined) query = query.where('i.batch_id', '!=', opts.excludingBatch);
      return query.orderBy('i.seq', 'desc').limit(1).executeTakeFirst();
    },
  } satisfies Partial<LedgerQueries>;
}

function holderOf(row: {
  interaction_id: string;
  batch_id: string;
  workflow_id: string;
  run_id: string | null;
  claimed_at: string;
  status: ClaimHolder['status'];
}): ClaimHolder {
  return {
    interactionId: row.interaction_id,
    batchId: row.batch_id,
    workflowId: row.workflow_id,
    runId: row.run_id,
    claimedAt: row.claimed_at,
    status: row.status ?? null,
  };
}
