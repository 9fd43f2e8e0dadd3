/**
 * The invariant per file across batches (design.md's invariant, for every batch and across
 * them), and the uploads the simulator counted: what the tests of concurrent batches assert.
 */
import { expect } from 'vitest';
import type { InteractionRow } from '../../src/ledger/port';
import type { Receipt } from '../../src/recording-system/port';
import type { SyncItem } from '../../src/shared';
import type { Harness } from './harness';

/** The kinds of the events of one interaction. */
export async function eventKinds(h: Harness, interactionId: string): Promise<string[]> {
  return (await h.ledger.listEvents(interactionId)).map((e) => e.kind);
}

/** The detail of the first event of a kind, parsed. */
export async function eventDetail(
  h: Harness,
  interactionId: string,
  kind: string,
): Promise<Record<string, unknown> | undefined> {
  const event = (await h.ledger.listEvents(interactionId)).find((e) => e.kind === kind);
  return event?.detail ? (JSON.parse(event.detail) as Record<string, unknown>) : undefined;
}

export async function everythingHeld(h: Harness): Promise<Map<string, Receipt>> {
  const held = new Map<string, Receipt>();
  let cursor: string | null = null;
  do {
    const page: { files: Receipt[]; nextCursor: string | null } = await h.targets
      .get('default')
      .list({ cursor, limit: 1000 });
    for (const r of page.files) held.set(`${r.orderId}/${r.fileName}`, r);
    cursor = page.nextCursor;
  } while (cursor);
  return held;
}

/** The latest interaction of each file of each batch, by `order/file`. */
export async function latestByFile(h: Harness, batchIds: string[]): Promise<Map<string, InteractionRow[]>> {
  const byFile = new Map<string, InteractionRow[]>();
  for (const batchId of batchIds) {
    for (const row of await h.ledger.latestInteractions(batchId)) {
      const key = `${row.order_id}/${row.file_name}`;
      byFile.set(key, [...(byFile.get(key) ?? []), row]);
    }
  }
  return byFile;
}

/**
 * Every batch is consistent on its own; across them, a file any batch calls RECORDED is held
 * with the bytes that batch recorded, a file no batch calls RECORDED is not held; and no file
 * was uploaded by two interactions (the simulator saw its bytes under one idempotency key at
 * most, and kept one copy at most), unless `sentTwice` names it.
 */
export async function expectOneTruth(
  h: Harness,
  batchIds: string[],
  items: SyncItem[],
  opts: { maxResends: number; sentTwice?: Set<string> },
): Promise<void> {
  // The check reads the state the batches left: the faults injected into their run are over,
  // and a simulated 503 to the check's own listing would fail it for nothing.
  h.simulator.setFaults({ failRate: 0, dropRate: 0, corruptRate: 0, rejectRate: 0, timeoutRate: 0 });
  for (const batchId of batchIds) {
    expect((await h.consistency(batchId, opts.maxResends)).drifts, `drifts of batch ${batchId}`).toEqual([]);
  }
  const held = await everythingHeld(h);
  const latest = await latestByFile(h, batchIds);
  const uploads = h.simulator.uploadsByFile();
  for (const item of items) {
    const key = `${item.orderId}/${item.fileName}`;
    const rows = latest.get(key) ?? [];
    const recorded = rows.filter((r) => r.status === 'RECORDED');
    const copy = held.get(key);
    if (recorded.length === 0) expect(copy, `${key}: no batch recorded it, yet it is held`).toBeUndefined();
    for (const r of recorded) {
      expect(copy, `${key}: RECORDED in ${r.batch_id} but not held`).toBeDefined();
      expect({ sha256: copy!.sha256, size: copy!.size }).toEqual({ sha256: r.sha256, size: r.size_bytes });
    }
    if (!opts.sentTwice?.has(key)) {
      expect(uploads.get(key)?.senders ?? 0, `${key}: interactions that uploaded it`).toBeLessThanOrEqual(1);
      expect(uploads.get(key)?.stored ?? 0, `${key}: copies stored at the simulator`).toBeLessThanOrEqual(1);
    }
  }
}
