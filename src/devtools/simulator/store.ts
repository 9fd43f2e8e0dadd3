/**
 * The simulator's durable store.
 *
 * Layout under the data folder:
 *   files/<orderId>/<fileName>            the bytes kept
 *   receipts/<orderId>/<fileName>.json    the receipt of those bytes
 *   tmp/                                  uploads in progress and receipts being written
 *
 * Receipts live in their own tree, so no file name can collide with a receipt. Every write
 * goes to tmp/ first and is renamed into place, so a crash never leaves a half-written file
 * or receipt. The receipt is the truth: a file is held exactly when its receipt exists
 * (bytes are moved in before the receipt is written, and the receipt is removed first).
 *
 * All receipts are loaded at start and kept in memory, so one simulator process must own a
 * data folder at a time. Names are trusted here: the HTTP layer validates them.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Receipt } from '../../recording-system/port';

export interface ListSlice {
  files: Receipt[];
  /** The last receipt returned when more follow it, else null. */
  last: Receipt | null;
}

export class FileStore {
  private readonly receipts = new Map<string, Receipt>();
  /** Receipts in list order, rebuilt on demand after a change. */
  private sorted: Receipt[] | null = null;
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(private readonly dataDir: string) {}

  /** Opens (creating if needed) the store in `dataDir`, dropping leftovers of interrupted writes. */
  static async open(dataDir: string): Promise<FileStore> {
    const store = new FileStore(path.resolve(dataDir));
    await fs.rm(store.tmpDir, { recursive: true, force: true });
    await Promise.all(
      [store.filesDir, store.receiptsDir, store.tmpDir].map((dir) => fs.mkdir(dir, { recursive: true })),
    );
    await store.loadReceipts();
    return store;
  }

  get size(): number {
    return this.receipts.size;
  }

  get(orderId: string, fileName: string): Receipt | undefined {
    return this.receipts.get(keyOf(orderId, fileName));
  }

  /** A fresh path in tmp/ for an upload; it is moved into place by commit(). */
  tempPath(): string {
    return path.join(this.tmpDir, `${randomUUID()}.part`);
  }

  /** Moves uploaded bytes into place and records their receipt. */
  async commit(tempPath: string, receipt: Receipt): Promise<void> {
    const { orderId, fileName } = receipt;
    await fs.mkdir(path.join(this.filesDir, orderId), { recursive: true });
    await fs.rename(tempPath, this.bytesPath(orderId, fileName));
    await this.writeReceipt(receipt);
    this.receipts.set(keyOf(orderId, fileName), receipt);
    this.sorted = null;
  }

  /** Removes a file and its receipt; false when it was not held. */
  async remove(orderId: string, fileName: string): Promise<boolean> {
    const key = keyOf(orderId, fileName);
    if (!this.receipts.has(key)) return false;
    await fs.rm(this.receiptPath(orderId, fileName), { force: true });
    this.receipts.delete(key);
    this.sorted = null;
    await fs.rm(this.bytesPath(orderId, fileName), { force: true });
    return true;
  }

  /** Deletes a temporary upload; nothing happens when it was already moved or deleted. */
  async discard(tempPath: string): Promise<void> {
    await fs.rm(tempPath, { force: true });
  }

  /** Up to `limit` receipts ordered by orderId then fileName, strictly after `after` when given. */
  list(after: { orderId: string; fileName: string } | null, limit: number): ListSlice {
    const all = this.ordered();
    const start = after ? firstIndexAfter(all, after) : 0;
    const files = all.slice(start, start + limit);
    const more = start + limit < all.length;
    return { files, last: more ? (files[files.length - 1] ?? null) : null };
  }

  /**
   * Runs `fn` while holding the lock of one (orderId, fileName): calls for the same file run
   * one after the other, in arrival order; calls for other files are not held up.
   */
  async withLock<T>(orderId: string, fileName: string, fn: () => Promise<T>): Promise<T> {
    const key = keyOf(orderId, fileName);
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => held);
    this.locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  private get filesDir(): string {
    return path.join(this.dataDir, 'files');
  }

  private get receiptsDir(): string {
    return path.join(this.dataDir, 'receipts');
  }

  private get tmpDir(): string {
    return path.join(this.dataDir, 'tmp');
  }

  private bytesPath(orderId: string, fileName: string): string {
    return path.join(this.filesDir, orderId, fileName);
  }

  private receiptPath(orderId: string, fileName: string): string {
    return path.join(this.receiptsDir, orderId, `${fileName}.json`);
  }

  private async writeReceipt(receipt: Receipt): Promise<void> {
    const target = this.receiptPath(receipt.orderId, receipt.fileName);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(this.tmpDir, `${randomUUID()}.json`);
    await fs.writeFile(temp, `${JSON.stringify(receipt)}\n`);
    await fs.rename(temp, target);
  }

  private async loadReceipts(): Promise<void> {
    for (const orderDir of await fs.readdir(this.receiptsDir, { withFileTypes: true })) {
      if (!orderDir.isDirectory()) continue;
      const dir = path.join(this.receiptsDir, orderDir.name);
      for (const entry of await fs.readdir(dir)) {
        if (!entry.endsWith('.json')) continue;
        const receipt = parseReceipt(await fs.readFile(path.join(dir, entry), 'utf8'));
        if (receipt) this.receipts.set(keyOf(receipt.orderId, receipt.fileName), receipt);
      }
    }
  }

  private ordered(): Receipt[] {
    this.sorted ??= [...this.receipts.values()].sort(compareKeys);
    return this.sorted;
  }
}

function keyOf(orderId: string, fileName: string): string {
  return `${orderId}\u0000${fileName}`;
}

function compareKeys(a: { orderId: string; fileName: string }, b: { orderId: string; fileName: string }): number {
  if (a.orderId !== b.orderId) return a.orderId < b.orderId ? -1 : 1;
  if (a.fileName !== b.fileName) return a.fileName < b.fileName ? -1 : 1;
  return 0;
}

/** Index of the first receipt ordered strictly after `key` (binary search). */
function firstIndexAfter(all: Receipt[], key: { orderId: string; fileName: string }): number {
  let low = 0;
  let high = all.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const receipt = all[mid] as Receipt;
    if (compareKeys(receipt, key) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A receipt read back from disk, or null when the sidecar is not one (it is then ignored). */
function parseReceipt(text: string): Receipt | null {
  try {
    const r = JSON.parse(text) as Partial<Receipt>;
    const ok =
      typeof r.orderId === 'string' &&
      typeof r.fileName === 'string' &&
      typeof r.sha256 === 'string' &&
      typeof r.size === 'number' &&
      typeof r.idempotencyKey === 'string' &&
      typeof r.receivedAt === 'string';
    return ok ? (r as Receipt) : null;
  } catch {
    return null;
  }
}
