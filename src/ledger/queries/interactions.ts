/**
 * The `interactions` table: one row per attempt to deliver a file (a redrive opens a new one),
 * keyed by the interaction id sent as `Idempotency-Key`; `seq` orders them.
 */
import { sql, type ExpressionBuilder, type Updateable } from 'kysely';
import { FILE_STATES, type FileState } from '../../shared';
import {
  fileWithChecksumKey,
  type BatchCounts,
  type FileRef,
  type InteractionPatch,
  type LedgerQueries,
  type OpenInteraction,
} from '../port';
import { safeLedgerText } from '../safe-text';
import type { InteractionsTable, LedgerDatabase, LedgerDb } from '../schema';
import { MAX_BOUND_VALUES, nowIso, slices } from './common';

/** Rows read per page when recordedWithSameChecksum scans the whole ledger. */
const SCAN_PAGE = 5000;

/** Filters `interactions as i` to the latest interaction (highest seq) of each file of its batch. */
function isLatestOfItsFile({
  not,
  exists,
  selectFrom,
}: ExpressionBuilder<LedgerDatabase & { i: LedgerDatabase['interactions'] }, 'i'>) {
  return not(
    exists(
      selectFrom('interactions as newer')
        .select('newer.seq')
        .whereRef('newer.batch_id', '=', 'i.batch_id')
        .whereRef('newer.order_id', '=', 'i.order_id')
        .whereRef('newer.file_name', '=', 'i.file_name')
        .whereRef('newer.seq', '>', 'i.seq'),
    ),
  );
}

/** The latest interaction of every file of every batch, as `i`. */
export function latestOfEachFile(db: LedgerDb) {
  return db.selectFrom('interactions as i').where(isLatestOfItsFile);
}

/**
 * Inserts an interaction's row (a second insert of the same id changes nothing) and returns its
 * seq; `db` may be a transaction, as when the interaction is opened with its claim.
 */
export async function insertInteraction(db: LedgerDb, i: OpenInteraction, now: string): Promise<number> {
  const inserted = await db
    .insertInto('interactions')
    .values({
      interaction_id: i.interactionId,
      batch_id: i.batchId,
      order_id: i.orderId,
      file_name: i.fileName,
      target: i.target,
      source_path: i.sourcePath,
      sha256: i.sha256,
      size_bytes: i.sizeBytes,
      status: i.status,
      resends: 0,
      last_error: null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('interaction_id').doNothing())
    .returning('seq')
    .executeTakeFirst();
  if (inserted) return inserted.seq;
  // Inserted before (a retried activity): its seq is read back.
  const row = await db
    .selectFrom('interactions')
    .select('seq')
    .where('interaction_id', '=', i.interactionId)
    .executeTakeFirstOrThrow(() => new Error(`ledger: interaction ${i.interactionId} vanished after insert`));
  return row.seq;
}

/** The columns a patch of an interaction sets, with its time of writing. */
export function interactionSet(patch: InteractionPatch, now: string): Updateable<InteractionsTable> {
  const set: Updateable<InteractionsTable> = { updated_at: now };
  if (patch.status !== undefined) set.status = patch.status;
  if (patch.resends !== undefined) set.resends = patch.resends;
  if (patch.lastError !== undefined) set.last_error = safeLedgerText(patch.lastError);
  if (patch.sha256 !== undefined) set.sha256 = patch.sha256;
  if (patch.sizeBytes !== undefined) set.size_bytes = patch.sizeBytes;
  return set;
}

export function interactionQueries(db: LedgerDb) {
  return {
    async openInteraction(i) {
      return { seq: await insertInteraction(db, i, nowIso()) };
    },

    async updateInteraction(interactionId, patch) {
      await db
        .updateTable('interactions')
        .set(interactionSet(patch, nowIso()))
        .where('interaction_id', '=', interactionId)
        .execute();
    },

    async getInteraction(interactionId) {
      return db.selectFrom('interactions').selectAll().where('interaction_id', '=', interactionId).executeTakeFirst();
    },

    async listInteractions(batchId) {
      return db.selectFrom('interactions').selectAll().where('batch_id', '=', batchId).orderBy('seq').execute();
    },

    /**
     * A page walks the (batch_id, order_id, file_name, seq) index, so each page costs its own
     * size whatever the batch's.
     */
    async latestInteractions(batchId, filter = {}) {
      let query = latestOfEachFile(db).selectAll('i').where('i.batch_id', '=', batchId);
      if (filter.status !== undefined) {
        const statuses: readonly FileState[] = typeof filter.status === 'string' ? [filter.status] : filter.status;
        if (statuses.length === 0) return [];
        query = query.where('i.status', 'in', statuses);
      }
      const page = filter.page;
      if (!page) return query.orderBy('i.seq').execute();
      const after = page.after;
      if (after) {
        query = query.where((eb) =>
          eb.or([
            eb('i.order_id', '>', after.orderId),
            eb.and([eb('i.order_id', '=', after.orderId), eb('i.file_name', '>', after.fileName)]),
          ]),
        );
      }
      return query.orderBy('i.order_id').orderBy('i.file_name').limit(page.limit).execute();
    },

    async batchCounts(batchId) {
      const [all, byStatus] = await Promise.all([
        db
          .selectFrom('interactions')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('batch_id', '=', batchId)
          .executeTakeFirstOrThrow(),
        latestOfEachFile(db)
          .select('i.status')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('i.batch_id', '=', batchId)
          .groupBy('i.status')
          .execute(),
      ]);
      const found = new Map(byStatus.map((r) => [r.status, Number(r.n)]));
      const files: BatchCounts['files'] = {};
      for (const status of FILE_STATES) {
        const n = found.get(status);
        if (n) files[status] = n;
      }
      return { interactions: Number(all.n), files };
    },

    async filesEndedSince(batchId, since) {
      const row = await db
        .selectFrom('interactions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('batch_id', '=', batchId)
        .where('status', 'in', ['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'CANCELLED'])
        .where('updated_at', '>=', since)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** A scheduled sync uses it to skip what earlier runs delivered. */
    async recordedFilesOfBatches(prefix) {
      const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await latestOfEachFile(db)
        .select(['i.order_id', 'i.file_name'])
        .distinct()
        .where(sql<boolean>`i.batch_id like ${pattern} escape '\\'`)
        .where('i.status', '=', 'RECORDED')
        .execute();
      return rows.map((r) => ({ orderId: r.order_id, fileName: r.file_name }));
    },

    /** A scheduled sync asks this of its folder's files a page at a time. */
    async recordedOfBatchesAmong(prefix, files) {
      const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const key = (orderId: string, fileName: string) => `${orderId}\u0000${fileName}`;
      const found = new Map<string, FileRef>();
      // Orders and names of a slice bound at most MAX_BOUND_VALUES values together; the rows
      // matching an order of the slice and a name of another pair are dropped here.
      for (const part of slices(files, MAX_BOUND_VALUES / 2)) {
        const wanted = new Set(part.map((f) => key(f.orderId, f.fileName)));
        const rows = await latestOfEachFile(db)
          .select(['i.order_id', 'i.file_name'])
          .where('i.order_id', 'in', [...new Set(part.map((f) => f.orderId))])
          .where('i.file_name', 'in', [...new Set(part.map((f) => f.fileName))])
          .where(sql<boolean>`i.batch_id like ${pattern} escape '\\'`)
          .where('i.status', '=', 'RECORDED')
          .execute();
        for (const r of rows) {
          const k = key(r.order_id, r.file_name);
          if (wanted.has(k) && !found.has(k)) found.set(k, { orderId: r.order_id, fileName: r.file_name });
        }
      }
      return [...found.values()];
    },

    async recordedWithSameChecksum(files, opts = {}) {
      const wanted = new Set(files.map(fileWithChecksumKey));
      const found = new Set<string>();
      const keep = (r: { target: string; order_id: string; file_name: string; sha256: string }) => {
        const key = fileWithChecksumKey({
          target: r.target,
          orderId: r.order_id,
          fileName: r.file_name,
          sha256: r.sha256,
        });
        if (wanted.has(key)) found.add(key);
      };
      const recorded = () =>
        latestOfEachFile(db)
          .select(['i.seq', 'i.target', 'i.order_id', 'i.file_name', 'i.sha256'])
          .where('i.status', '=', 'RECORDED');
      if (files.length <= (opts.scanAbove ?? 4 * MAX_BOUND_VALUES)) {
        for (const part of slices([...new Set(files.map((f) => f.sha256))])) {
          for (const r of await recorded().where('i.sha256', 'in', part).execute()) keep(r);
        }
        return found;
      }
      const pageSize = opts.pageSize ?? SCAN_PAGE;
      let after = 0;
      for (;;) {
        const page = await recorded().where('i.seq', '>', after).orderBy('i.seq').limit(pageSize).execute();
        for (const r of page) keep(r);
        if (page.length < pageSize) return found;
        after = page[page.length - 1]!.seq;
      }
    },

    async recordedFilesAfter(afterSeq, limit) {
      const rows = await latestOfEachFile(db)
        .select(['i.seq', 'i.target', 'i.order_id', 'i.file_name', 'i.sha256'])
        .where('i.status', '=', 'RECORDED')
        .where('i.seq', '>', afterSeq)
        .orderBy('i.seq')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        seq: Number(r.seq),
        target: r.target,
        orderId: r.order_id,
        fileName: r.file_name,
        sha256: r.sha256,
      }));
    },

    async batchIdsWithSourcesUnder(dir) {
      const folder = dir.endsWith('/') ? dir : `${dir}/`;
      // An exact, case-sensitive prefix on both backends (SQLite's LIKE ignores ASCII case);
      // substr counts characters, so the length is counted in code points.
      const length = [...folder].length;
      const rows = await db
        .selectFrom('interactions')
        .select('batch_id')
        .select((eb) => eb.fn.min('seq').as('first'))
        .where(sql<boolean>`substr(source_path, 1, ${length}) = ${folder}`)
        .groupBy('batch_id')
        .orderBy('first')
        .execute();
      return rows.map((r) => r.batch_id);
    },
  } satisfies Partial<LedgerQueries>;
}
