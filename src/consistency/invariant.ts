/**
 * The consistency invariant of design.md, checked for one finished batch against what the
 * recording systems hold. Used after every batch test and by `image-sync reconcile`.
 */
import type { Targets } from '../config/targets';
import type { InteractionRow, Ledger, RollbackRow } from '../ledger/port';
import { RecordingSystemError, type ListPage, type Receipt } from '../recording-system/port';
import { fileKey } from '../shared';

export type DriftKind =
  /** The ledger says RECORDED; the recording system does not hold the file. */
  | 'missing'
  /** The recording system holds other bytes than the ledger recorded. */
  | 'different-bytes'
  /** The recording system holds a copy the batch wrote of a file the ledger does not call RECORDED. */
  | 'extra'
  /** A rolled-back or cancelled file has no DONE rollback row, or a failed rollback no FAILED row. */
  | 'rollback-record'
  /** A file was resent more often than the batch allows. */
  | 'resends'
  /** The latest interaction is not in a final state. */
  | 'unfinished';

export interface Drift {
  kind: DriftKind;
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string;
  status: string;
  detail: string;
}

export interface ConsistencyReport {
  batchId: string;
  files: number;
  drifts: Drift[];
  /** Files whose rollback failed: consistent, but a person must look. */
  needsAttention: { orderId: string; fileName: string; interactionId: string }[];
}

export async function checkBatchConsistency(args: {
  ledger: Ledger;
  targets: Targets;
  batchId: string;
  maxResends?: number;
}): Promise<ConsistencyReport> {
  const { ledger, targets, batchId } = args;
  const latest = await ledger.latestInteractions(batchId);
  // A copy belongs to this batch when one of the batch's interactions wrote it; a copy an
  // earlier batch recorded, under its own key, is that batch's.
  const ownKeys = new Set((await ledger.listInteractions(batchId)).map((r) => r.interaction_id));
  const rollbacks = new Map<string, RollbackRow>(
    (await ledger.listRollbacks(batchId)).map((r) => [r.interaction_id, r]),
  );
  const drifts: Drift[] = [];
  const needsAttention: ConsistencyReport['needsAttention'] = [];
  const drift = (row: InteractionRow, kind: DriftKind, detail: string) =>
    drifts.push({
      kind,
      orderId: row.order_id,
      fileName: row.file_name,
      target: row.target,
      interactionId: row.interaction_id,
      status: row.status,
      detail,
    });

  const held = await heldByTargets(targets, [...new Set(latest.map((r) => r.target))]);
  for (const row of latest) {
    const receipt = held.get(row.target)?.get(fileKey(row.order_id, row.file_name));
    const rollback = rollbacks.get(row.interaction_id);
    if (args.maxResends !== undefined && row.resends > args.maxResends) {
      drift(row, 'resends', `resent ${row.resends} times, the batch allows ${args.maxResends}`);
    }
    switch (row.status) {
      case 'RECORDED':
        if (!receipt) drift(row, 'missing', 'the ledger says RECORDED; the recording system does not hold it');
        else if (receipt.sha256 !== row.sha256 || receipt.size !== row.size_bytes) {
          drift(
            row,
            'different-bytes',
            `holds sha256 ${receipt.sha256} (${receipt.size} B), the ledger ${row.sha256} (${row.size_bytes} B)`,
          );
        }
        break;
      case 'ROLLED_BACK':
      case 'CANCELLED':
        if (receipt && ownKeys.has(receipt.idempotencyKey)) {
          drift(row, 'extra', `the ledger says ${row.status}; the recording system still holds the batch's copy`);
        }
        if (
          rollback?.status !== 'DONE' &&
          !(row.status === 'CANCELLED' && !rollback && !(await wasSent(ledger, row)))
        ) {
          drift(row, 'rollback-record', `no DONE rollback row for a ${row.status} file`);
        }
        break;
      case 'ROLLBACK_FAILED':
        if (rollback?.status !== 'FAILED')
          drift(row, 'rollback-record', 'no FAILED rollback row for a ROLLBACK_FAILED file');
        needsAttention.push({ orderId: row.order_id, fileName: row.file_name, interactionId: row.interaction_id });
        break;
      default:
        drift(row, 'unfinished', `the latest interaction is still ${row.status}`);
    }
  }
  return { batchId, files: latest.length, drifts, needsAttention };
}

async function wasSent(ledger: Ledger, row: InteractionRow): Promise<boolean> {
  return (await ledger.listEvents(row.interaction_id)).some((e) => e.kind === 'SENT' || e.kind === 'SEND_FAILED');
}

/** Everything each target holds, by `order/file`. */
export async function heldByTargets(targets: Targets, names: string[]): Promise<Map<string, Map<string, Receipt>>> {
  const out = new Map<string, Map<string, Receipt>>();
  for (const name of names) {
    if (!targets.has(name)) {
      // A target this configuration does not know holds nothing image-sync could have sent.
      out.set(name, new Map());
      continue;
    }
    const system = targets.get(name);
    const files = new Map<string, Receipt>();
    let cursor: string | null = null;
    do {
      const from: string | null = cursor;
      const page: ListPage = await withRetries(() => system.list({ cursor: from, limit: 1000 }));
      for (const r of page.files) files.set(fileKey(r.orderId, r.fileName), r);
      cursor = page.nextCursor;
    } while (cursor);
    out.set(name, files);
  }
  return out;
}

/** Retries a read that failed for transport reasons (5xx, timeouts), a few times with backoff. */
export async function withRetries<T>(read: () => Promise<T>, attempts = 5, firstDelayMs = 200): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof RecordingSystemError && err.retryable) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, firstDelayMs * 2 ** (attempt - 1)));
    }
  }
}
