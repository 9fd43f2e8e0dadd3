/**
 * The intake's submissions (`intake_submissions`, `intake_files`): what makes a submission's
 * idempotency key hold across requests, server restarts and intake workflow runs.
 *
 * A request takes a key by inserting its row (one statement: of several requests racing for a
 * key exactly one inserts it, on both backends and across processes), with the body's hash.
 * The row says TAKING until the intake workflow has the files; then the files are written and
 * the row says ACCEPTED. No statement here needs a transaction (SQLite connections of one
 * process would wait on each other's write lock while holding the event loop). A
 * request that finds the row learns whether its body is the same, and whether the key was
 * accepted or is still being taken; a TAKING row whose lease has run out (its request died) is
 * taken over by compare-and-set on its taker. A request that could not hand the files over
 * (saturated, Temporal away) releases its row, so the caller's retry takes the key afresh.
 */
import type { IntakeSubmissionRecord, IntakeTakeOutcome, LedgerQueries, SubmittedFile } from '../port';
import type { LedgerDb } from '../schema';
import { nowIso, slices } from './common';

/** Rows inserted by one statement (six bound values each). */
const INSERT_SLICE = 50;

export function intakeQueries(db: LedgerDb) {
  return {
    async takeSubmission(s: IntakeSubmissionRecord, leaseMs: number): Promise<IntakeTakeOutcome> {
      const now = nowIso();
      // One statement: of several requests racing for the key, exactly one inserts it.
      const inserted = await db
        .insertInto('intake_submissions')
        .values({
          idempotency_key: s.idempotencyKey,
          order_id: s.orderId,
          body_sha256: s.bodySha256,
          state: 'TAKING',
          taker: s.taker,
          files: s.files.length,
          taken_at: now,
          accepted_at: null,
        })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .returning('idempotency_key')
        .executeTakeFirst();
      if (inserted) return { kind: 'taken', takeover: false };
      const held = await db
        .selectFrom('intake_submissions')
        .selectAll()
        .where('idempotency_key', '=', s.idempotencyKey)
        .executeTakeFirst();
      // Released between the insert and the look: the caller tries again.
      if (!held) return { kind: 'in_progress' };
      if (held.order_id !== s.orderId || held.body_sha256 !== s.bodySha256) return { kind: 'key_reused' };
      if (held.state === 'ACCEPTED') return { kind: 'accepted' };
      if (Date.parse(held.taken_at) + leaseMs > Date.now()) return { kind: 'in_progress' };
      const swapped = await db
        .updateTable('intake_submissions')
        .set({ taker: s.taker, taken_at: now })
        .where('idempotency_key', '=', s.idempotencyKey)
        .where('state', '=', 'TAKING')
        .where('taker', '=', held.taker)
        .where('taken_at', '=', held.taken_at)
        .executeTakeFirst();
      return Number(swapped.numUpdatedRows) === 1 ? { kind: 'taken', takeover: true } : { kind: 'in_progress' };
    },

    async acceptSubmission(s: Pick<IntakeSubmissionRecord, 'idempotencyKey' | 'orderId' | 'files'>): Promise<void> {
      // The files first: a submission reads as ACCEPTED only once its files are there. Each
      // statement is idempotent, so a retry after a lost answer writes nothing twice.
      const now = nowIso();
      for (const part of slices(s.files, INSERT_SLICE)) {
        await db
          .insertInto('intake_files')
          .values(
            part.map((f) => ({
              idempotency_key: s.idempotencyKey,
              order_id: s.orderId,
              file_name: f.fileName,
              target: f.target,
              source_path: f.sourcePath,
              submitted_at: now,
              dropped_at: null,
            })),
          )
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      await db
        .updateTable('intake_submissions')
        .set({ state: 'ACCEPTED', accepted_at: now })
        .where('idempotency_key', '=', s.idempotencyKey)
        .where('state', '=', 'TAKING')
        .execute();
    },

    async releaseSubmission(idempotencyKey: string, taker: string): Promise<void> {
      await db
        .deleteFrom('intake_submissions')
        .where('idempotency_key', '=', idempotencyKey)
        .where('state', '=', 'TAKING')
        .where('taker', '=', taker)
        .execute();
    },

    async dropSubmittedFiles(files: readonly { orderId: string; fileName: string; target: string }[]): Promise<void> {
      const now = nowIso();
      for (const f of files) {
        await db
          .updateTable('intake_files')
          .set({ dropped_at: now })
          .where('order_id', '=', f.orderId)
          .where('file_name', '=', f.fileName)
          .where('target', '=', f.target)
          .where('dropped_at', 'is', null)
          .where('submitted_at', '<=', now)
          .execute();
      }
    },

    async submittedFiles(orderId: string): Promise<SubmittedFile[]> {
      const rows = await db
        .selectFrom('intake_files as f')
        .innerJoin('intake_submissions as s', 's.idempotency_key', 'f.idempotency_key')
        .select(['f.file_name', 'f.target', 'f.submitted_at', 'f.dropped_at'])
        .where('f.order_id', '=', orderId)
        .where('s.state', '=', 'ACCEPTED')
        .orderBy('f.submitted_at')
        .execute();
      // The latest submission of each file at each target.
      const latest = new Map<string, SubmittedFile>();
      for (const r of rows) {
        latest.set(`${r.target}\u0000${r.file_name}`, {
          fileName: r.file_name,
          target: r.target,
          submittedAt: r.submitted_at,
          droppedAt: r.dropped_at,
        });
      }
      return [...latest.values()];
    },

    async latestInteractionsOfOrder(batchIds: readonly string[], orderId: string) {
      if (batchIds.length === 0) return [];
      return db
        .selectFrom('interactions as i')
        .selectAll('i')
        .where('i.batch_id', 'in', batchIds)
        .where('i.order_id', '=', orderId)
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
        )
        .orderBy('i.seq')
        .execute();
    },
  } satisfies Partial<LedgerQueries>;
}
