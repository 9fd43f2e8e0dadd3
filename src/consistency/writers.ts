/** Who wrote a copy a recording system holds, told from its idempotency key and the ledger. */
import type { InteractionRow, Ledger } from '../ledger/port';
import type { Receipt } from '../recording-system/port';

/** Who wrote a held copy: an interaction of this batch, of another image-sync batch, or another sender. */
export type Writer = 'this-batch' | 'image-sync' | 'foreign';

export interface HeldCopy {
  sha256: string;
  size: number;
  idempotencyKey: string;
  writer: Writer;
}

export function writerText(held: HeldCopy): string {
  const who = { 'this-batch': 'this batch', 'image-sync': 'another image-sync batch', foreign: 'another sender' }[
    held.writer
  ];
  return `${who}, key ${held.idempotencyKey}`;
}

/** Who wrote a held copy, from its idempotency key; asks the ledger once per key. */
export class WriterCache {
  readonly #ledger: Ledger;
  readonly #batchId: string;
  readonly #rows = new Map<string, InteractionRow | null>();
  constructor(ledger: Ledger, batchId: string) {
    this.#ledger = ledger;
    this.#batchId = batchId;
  }

  async #row(key: string): Promise<InteractionRow | null> {
    if (!this.#rows.has(key)) {
      if (this.#rows.size >= 1000) this.#rows.clear();
      this.#rows.set(key, (await this.#ledger.getInteraction(key)) ?? null);
    }
    return this.#rows.get(key) ?? null;
  }

  async describe(receipt: Receipt, orderId: string, fileName: string, latest?: InteractionRow): Promise<HeldCopy> {
    // The common case, a copy the file's latest interaction wrote, needs no query.
    const row = latest?.interaction_id === receipt.idempotencyKey ? latest : await this.#row(receipt.idempotencyKey);
    const writer: Writer =
      row === null || row.order_id !== orderId || row.file_name !== fileName
        ? 'foreign'
        : row.batch_id === this.#batchId
          ? 'this-batch'
          : 'image-sync';
    return { sha256: receipt.sha256, size: receipt.size, idempotencyKey: receipt.idempotencyKey, writer };
  }

  async recordedElsewhere(key: string): Promise<boolean> {
    return (await this.#row(key))?.status === 'RECORDED';
  }
}
