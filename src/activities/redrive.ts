/**
 * Redrive activities: queue a batch's failed files for a redrive in the ledger, and read the
 * queue back a page at a time. The batch workflow carries only how far it has read the queue;
 * which files failed, and how often each was redriven, stay in the ledger.
 */
import { Context } from '@temporalio/activity';
import type { FileRef, Ledger, RedriveRow } from '../ledger/port';
import { fileKey, MAX_FAILURES_KEPT, type SyncItem } from '../shared';
import { mapped, type ActivityDeps } from './context';

/** What a request to redrive files queued, from the queue position it started at. */
export interface RedrivesQueued {
  /** The batch's queue end after the request: one past its highest position. */
  end: number;
  /** Files queued by the request (positions from..end). */
  count: number;
  /** Of those, how many had ended ROLLED_BACK and how many ROLLBACK_FAILED. */
  rolledBack: number;
  rollbackFailed: number;
  /** The first of them as ORDER/FILE, at most `sample`. */
  keys: string[];
}

/** A queued redrive as the batch starts it. */
export interface QueuedRedrive {
  item: SyncItem;
  /** The file's redrive count in the batch. */
  attempt: number;
}

/** Files queued per ledger call, between heartbeats. */
const QUEUE_CHUNK = 500;

/** ORDER/FILE names as the ledger's file references. */
export function fileRefs(keys: readonly string[]): FileRef[] {
  return keys.map((key) => {
    const slash = key.indexOf('/');
    return { orderId: key.slice(0, slash), fileName: key.slice(slash + 1) };
  });
}

/**
 * Queues the batch's failed files (the named ones only, when given) at the end of its redrive
 * queue, `onProgress` called between chunks. `from` is where the queue ended before the request:
 * everything queued from there on is this request's, so a retried call counts its earlier
 * attempt's rows too. A named file that cannot be redriven refuses the whole request, before
 * anything is queued.
 */
export async function queueRedrives(
  ledger: Ledger,
  args: { batchId: string; files?: string[]; from: number; sample?: number },
  onProgress: () => void = () => undefined,
): Promise<RedrivesQueued | { refused: string[] }> {
  const { batchId, from } = args;
  const named = args.files && args.files.length > 0 ? fileRefs(args.files) : undefined;
  if (named) {
    const refused = await ledger.notRedrivable(batchId, named, { queuedFrom: from });
    if (refused.length > 0) return { refused: refused.map((f) => fileKey(f.orderId, f.fileName)) };
    await ledger.queueRedrive(batchId, { files: named });
  } else {
    while ((await ledger.queueRedrive(batchId, { limit: QUEUE_CHUNK })) === QUEUE_CHUNK) onProgress();
  }
  const tally = await ledger.redriveTally(batchId, from);
  const first = await ledger.queuedRedrives(batchId, { from, limit: args.sample ?? MAX_FAILURES_KEPT });
  return {
    ...tally,
    count: Math.max(0, tally.end - from),
    keys: first.map((r) => fileKey(r.order_id, r.file_name)),
  };
}

export function toQueuedRedrive(row: RedriveRow): QueuedRedrive {
  return {
    item: { orderId: row.order_id, fileName: row.file_name, sourcePath: row.source_path, target: row.target },
    attempt: row.attempt,
  };
}

export function createRedriveActivities(deps: ActivityDeps) {
  const { ledger } = deps;
  return {
    /** Queues failed files of a batch for a redrive (see queueRedrives); heartbeats between chunks. */
    async queueBatchRedrives(args: {
      batchId: string;
      files?: string[];
      from: number;
    }): Promise<RedrivesQueued | { refused: string[] }> {
      const ctx = Context.current();
      return mapped(() => queueRedrives(ledger, args, () => ctx.heartbeat()));
    },

    /** A page of the batch's redrive queue, from position `from`. */
    async loadRedrives(args: { batchId: string; from: number; limit: number }): Promise<QueuedRedrive[]> {
      return mapped(async () =>
        (await ledger.queuedRedrives(args.batchId, { from: args.from, limit: args.limit })).map(toQueuedRedrive),
      );
    },
  };
}
