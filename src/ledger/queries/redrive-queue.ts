/**
 * The `redrive_queue` table: a batch's failed files waiting for a redrive, in the order they are
 * to start. The batch workflow carries only how far it has read its queue; the files, their
 * failed interactions and their redrive counts are here.
 *
 * A row is keyed by the failed interaction it redrives, so a file is queued once per failure:
 * queueing again while it waits (or before its redrive opened a new interaction) adds nothing.
 */
import type { ExpressionBuilder, Insertable } from 'kysely';
import { fileKey } from '../../shared';
import type { FileRef, LedgerQueries } from '../port';
import type { LedgerDatabase, LedgerDb, RedriveQueueTable } from '../schema';
import { nowIso, slices } from './common';
import { latestOfEachFile } from './interactions';

/** Rows queued by one call unless told otherwise. */
const QUEUE_CHUNK = 500;
/** Files named in one statement (two bound values each). */
const NAMED_SLICE = 200;
/** Rows inserted by one statement (ten bound values each). */
const INSERT_SLICE = 50;

const FAILED = ['ROLLED_BACK', 'ROLLBACK_FAILED'] as const;

type Latest = ExpressionBuilder<LedgerDatabase & { i: LedgerDatabase['interactions'] }, 'i'>;

/** `i` is one of the named files. */
function isOneOf(files: readonly FileRef[]) {
  return (eb: Latest) =>
    eb.or(files.map((f) => eb.and([eb('i.order_id', '=', f.orderId), eb('i.file_name', '=', f.fileName)])));
}

/** The batch's queue end: one past its highest position. */
async function queueEnd(db: LedgerDb, batchId: string): Promise<number> {
  const row = await db
    .selectFrom('redrive_queue')
    .select((eb) => eb.fn.max('position').as('top'))
    .where('batch_id', '=', batchId)
    .executeTakeFirst();
  return row?.top === null || row?.top === undefined ? 0 : Number(row.top) + 1;
}

export function redriveQueueQueries(db: LedgerDb) {
  /** Queues the given candidates (at most QUEUE_CHUNK) in one transaction; returns how many. */
  async function queueSome(batchId: string, named: readonly FileRef[] | undefined, limit: number): Promise<number> {
    return db.transaction().execute(async (trx) => {
      let candidates = latestOfEachFile(trx)
        .select(['i.interaction_id', 'i.order_id', 'i.file_name', 'i.target', 'i.source_path', 'i.status'])
        .where('i.batch_id', '=', batchId)
        .where('i.status', 'in', FAILED)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('redrive_queue as q')
                .select('q.id')
                .whereRef('q.failed_interaction_id', '=', 'i.interaction_id'),
            ),
          ),
        );
      if (named) candidates = candidates.where(isOneOf(named));
      const rows = await candidates.orderBy('i.seq').limit(limit).execute();
      if (rows.length === 0) return 0;
      // Redrives each file had in this batch before, for its redrive count.
      const earlier = new Map<string, number>();
      for (const orders of slices([...new Set(rows.map((r) => r.order_id))])) {
        const counted = await trx
          .selectFrom('redrive_queue')
          .select(['order_id', 'file_name'])
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('batch_id', '=', batchId)
          .where('order_id', 'in', orders)
          .groupBy(['order_id', 'file_name'])
          .execute();
        for (const c of counted) earlier.set(fileKey(c.order_id, c.file_name), Number(c.n));
      }
      let position = await queueEnd(trx, batchId);
      const queuedAt = nowIso();
      const values = rows.map((r): Insertable<RedriveQueueTable> => ({
        batch_id: batchId,
        position: position++,
        order_id: r.order_id,
        file_name: r.file_name,
        target: r.target,
        source_path: r.source_path,
        failed_interaction_id: r.interaction_id,
        failed_status: r.status as RedriveQueueTable['failed_status'],
        attempt: (earlier.get(fileKey(r.order_id, r.file_name)) ?? 0) + 1,
        queued_at: queuedAt,
      }));
      for (const part of slices(values, INSERT_SLICE)) await trx.insertInto('redrive_queue').values(part).execute();
      return rows.length;
    });
  }

  return {
    async queueRedrive(batchId, opts = {}) {
      const limit = opts.limit ?? QUEUE_CHUNK;
      if (!opts.files) return queueSome(batchId, undefined, limit);
      let queued = 0;
      for (const part of slices(opts.files, NAMED_SLICE)) queued += await queueSome(batchId, part, part.length);
      return queued;
    },

    async queuedRedrives(batchId, page) {
      return db
        .selectFrom('redrive_queue')
        .selectAll()
        .where('batch_id', '=', batchId)
        .where('position', '>=', page.from)
        .orderBy('position')
        .limit(page.limit)
        .execute();
    },

    async redriveTally(batchId, from) {
      const byStatus = await db
        .selectFrom('redrive_queue')
        .select('failed_status')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('batch_id', '=', batchId)
        .where('position', '>=', from)
        .groupBy('failed_status')
        .execute();
      const n = (status: string) => Number(byStatus.find((r) => r.failed_status === status)?.n ?? 0);
      return { end: await queueEnd(db, batchId), rolledBack: n('ROLLED_BACK'), rollbackFailed: n('ROLLBACK_FAILED') };
    },

    async notRedrivable(batchId, files, opts = {}) {
      const unique = [...new Map(files.map((f) => [fileKey(f.orderId, f.fileName), f])).values()];
      const redrivable = new Set<string>();
      for (const part of slices(unique, NAMED_SLICE)) {
        const rows = await latestOfEachFile(db)
          .leftJoin('redrive_queue as q', 'q.failed_interaction_id', 'i.interaction_id')
          .select(['i.order_id', 'i.file_name', 'i.status', 'q.position'])
          .where('i.batch_id', '=', batchId)
          .where(isOneOf(part))
          .execute();
        for (const r of rows) {
          const failed = (FAILED as readonly string[]).includes(r.status);
          const free = r.position === null || (opts.queuedFrom !== undefined && Number(r.position) >= opts.queuedFrom);
          if (failed && free) redrivable.add(fileKey(r.order_id, r.file_name));
        }
      }
      return unique.filter((f) => !redrivable.has(fileKey(f.orderId, f.fileName)));
    },

    async clearRedriveQueue(batchId) {
      const result = await db
        .deleteFrom('redrive_queue')
        .where('batch_id', '=', batchId)
        .where(
          'failed_interaction_id',
          'in',
          latestOfEachFile(db).select('i.interaction_id').where('i.batch_id', '=', batchId),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  } satisfies Partial<LedgerQueries>;
}
