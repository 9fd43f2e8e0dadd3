/**
 * The consistency invariant of design.md, checked for one batch against what the recording
 * systems hold. Used after every batch test, by `image-sync reconcile` and by the scheduled
 * reconcile.
 *
 * Every clause is checked for every file of the batch, from the latest interaction of each file
 * (and, when the batch's manifest is given, from the files that never started) and from what the
 * recording systems list. Both sides are read in pages into a scratch SQLite file on disk, so the
 * memory a check needs is bounded by the page size, not by the size of the batch or of the
 * recording system.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Targets } from '../config/targets';
import type { InteractionRow, Ledger, RollbackRow } from '../ledger/port';
import { MAX_LIST_LIMIT, RecordingSystemError, type ListPage, type Receipt } from '../recording-system/port';
import type { FileState } from '../shared';
import { mapWithConcurrency } from '../source/concurrency';
import { sha256File } from '../source/files';
import { readItemsPage } from '../source/normalized';

/** The kinds of drift, each the breach of one clause of the invariant. */
export const DRIFT_KINDS = [
  /** RECORDED: the recording system does not hold the file. */
  'missing',
  /** RECORDED: the recording system holds other bytes (sha256 or size) than the ledger recorded. */
  'different-bytes',
  /** RECORDED and held as recorded, but the source file's sha256 differs now: the copy is out of date. */
  'stale',
  /** ROLLED_BACK or CANCELLED: the recording system holds the file again (or still). */
  'held-not-recorded',
  /** A file of the batch that never started (a cancelled or failed batch) is held. */
  'held-never-started',
  /** ROLLED_BACK or CANCELLED after a send without a DONE rollback row, or ROLLBACK_FAILED without a FAILED one. */
  'rollback-record',
  /** A file was resent more often than the batch's threshold. */
  'resends',
  /** The latest interaction is not in a final state (the batch still runs, or stopped midway). */
  'unfinished',
] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

/** Findings that are no drift of the batch, but worth a look. */
export const WARNING_KINDS = [
  /** Held under one of the batch's orders, but no file of the batch, nor recorded by another image-sync batch. */
  'foreign-file',
  /** RECORDED, but the source file is gone, so whether the copy is stale cannot be told. */
  'source-gone',
] as const;
export type WarningKind = (typeof WARNING_KINDS)[number];

/** Who wrote a held copy: an interaction of this batch, of another image-sync batch, or another sender. */
export type Writer = 'this-batch' | 'image-sync' | 'foreign';

export interface HeldCopy {
  sha256: string;
  size: number;
  idempotencyKey: string;
  writer: Writer;
}

export interface Drift {
  kind: DriftKind;
  orderId: string;
  fileName: string;
  target: string;
  /** The file's latest interaction; null for a file that never started. */
  interactionId: string | null;
  /** Its status; NEVER_STARTED for a file with no interaction. */
  status: FileState | 'NEVER_STARTED';
  /** What the recording system holds for the file, when it holds it. */
  held: HeldCopy | null;
  detail: string;
}

export interface Warning {
  kind: WarningKind;
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string | null;
  detail: string;
}

export interface NeedsAttention {
  /** Always `rollback-failed`: the rollback could not remove the copy; a person must look. */
  kind: 'rollback-failed';
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string;
  held: HeldCopy | null;
  detail: string;
}

export interface ConsistencyReport {
  batchId: string;
  /** Files of the batch checked: every file with an interaction, and the manifest's files that never started. */
  files: number;
  /** Copies the recording systems hold under the batch's orders. */
  heldUnderOrders: number;
  drifts: Drift[];
  warnings: Warning[];
  /** Files whose rollback failed: recorded as such, but a person must look. */
  needsAttention: NeedsAttention[];
  /** Clauses that could not be checked, and why. */
  unchecked: string[];
}

export interface ReconcileProgress {
  phase: 'manifest' | 'ledger' | 'listing' | 'check' | 'held';
  /** Items done in this phase. */
  done: number;
  /** Items this phase will do, when known. */
  total?: number;
}

export interface CheckOptions {
  ledger: Ledger;
  targets: Targets;
  batchId: string;
  /** The batch's resend threshold; the `resends` clause is not checked without it. */
  maxResends?: number;
  /** The batch's normalised manifest; files that never started are only found with it. */
  manifestPath?: string;
  /** Whether to hash the source of every RECORDED file to find stale copies (default true). */
  checkSources?: boolean;
  /** Rows read per page from the ledger, the listing and the manifest (default 1000). */
  pageSize?: number;
  onProgress?: (p: ReconcileProgress) => void;
  signal?: AbortSignal;
}

/** Checks every clause of the invariant for every file of a batch. */
export async function checkBatchConsistency(opts: CheckOptions): Promise<ConsistencyReport> {
  const scratch = new Scratch();
  try {
    return await check(opts, scratch);
  } finally {
    scratch.close();
  }
}

async function check(opts: CheckOptions, scratch: Scratch): Promise<ConsistencyReport> {
  const { ledger, targets, batchId } = opts;
  const pageSize = Math.max(1, Math.min(opts.pageSize ?? 1000, MAX_LIST_LIMIT));
  const progress = opts.onProgress ?? (() => undefined);
  const report: ConsistencyReport = {
    batchId,
    files: 0,
    heldUnderOrders: 0,
    drifts: [],
    warnings: [],
    needsAttention: [],
    unchecked: [],
  };
  if (opts.maxResends === undefined) report.unchecked.push('resends: the batch threshold is not known');
  if (!opts.manifestPath) report.unchecked.push('held-never-started: the batch manifest is not available');
  if (opts.checkSources === false) report.unchecked.push('stale: sources were not read');

  // 1. The files of the batch as started (its manifest), marked not started.
  if (opts.manifestPath) {
    for (let offset = 0; ; offset += pageSize) {
      opts.signal?.throwIfAborted();
      let items;
      try {
        items = await readItemsPage(opts.manifestPath, offset, pageSize);
      } catch (err) {
        report.unchecked.push(`held-never-started: the manifest cannot be read (${(err as Error).message})`);
        break;
      }
      scratch.addFiles(
        items.map((i) => ({
          target: targets.resolveName(i.target),
          orderId: i.orderId,
          fileName: i.fileName,
          started: false,
        })),
      );
      progress({ phase: 'manifest', done: offset + items.length });
      if (items.length < pageSize) break;
    }
  }

  // 2. The files with an interaction, from the ledger.
  let ledgerFiles = 0;
  await forEachLedgerPage(ledger, batchId, pageSize, opts.signal, async (rows) => {
    scratch.addFiles(
      rows.map((r) => ({ target: r.target, orderId: r.order_id, fileName: r.file_name, started: true })),
    );
    ledgerFiles += rows.length;
    progress({ phase: 'ledger', done: ledgerFiles });
  });

  // 3. What each target holds under the batch's orders.
  let listed = 0;
  for (const target of scratch.targets()) {
    if (!targets.has(target)) {
      report.unchecked.push(`target ${target} is not configured: its copies could not be listed`);
      continue;
    }
    const system = targets.get(target);
    let cursor: string | null = null;
    do {
      opts.signal?.throwIfAborted();
      const from: string | null = cursor;
      const page: ListPage = await withRetries(() =>
        system.list({ cursor: from, limit: pageSize, signal: opts.signal }),
      );
      scratch.addHeld(target, page.files);
      listed += page.files.length;
      progress({ phase: 'listing', done: listed });
      cursor = page.nextCursor;
    } while (cursor);
  }
  report.heldUnderOrders = scratch.heldCount();

  const writers = new WriterCache(ledger, batchId);

  // 4. Every file with an interaction, against its copy.
  let checked = 0;
  await forEachLedgerPage(ledger, batchId, pageSize, opts.signal, async (rows) => {
    const rollbacks = new Map<string, RollbackRow>(
      (await ledger.rollbacksOf(rows.map((r) => r.interaction_id))).map((r) => [r.interaction_id, r]),
    );
    const sources = opts.checkSources === false ? [] : await sourceDigests(rows);
    for (const [i, row] of rows.entries()) {
      const receipt = scratch.heldCopy(row.target, row.order_id, row.file_name);
      const held = receipt ? await writers.describe(receipt, row.order_id, row.file_name, row) : null;
      await checkFile(report, ledger, opts, row, held, rollbacks.get(row.interaction_id), sources[i]);
    }
    checked += rows.length;
    progress({ phase: 'check', done: checked, total: ledgerFiles });
  });

  // 5. Copies under the batch's orders that no interaction of the batch accounts for.
  let extra = 0;
  for (const page of scratch.unstartedHeld(pageSize)) {
    for (const h of page) {
      const held = await writers.describe(h.receipt, h.receipt.orderId, h.receipt.fileName);
      const recordedElsewhere = held.writer === 'image-sync' && (await writers.recordedElsewhere(held.idempotencyKey));
      if (recordedElsewhere) continue;
      if (h.ofBatch) {
        report.drifts.push({
          kind: 'held-never-started',
          orderId: h.receipt.orderId,
          fileName: h.receipt.fileName,
          target: h.target,
          interactionId: null,
          status: 'NEVER_STARTED',
          held,
          detail: `a file of the batch that never started is held (written by ${writerText(held)})`,
        });
      } else {
        report.warnings.push({
          kind: 'foreign-file',
          orderId: h.receipt.orderId,
          fileName: h.receipt.fileName,
          target: h.target,
          interactionId: null,
          detail: `held under order ${h.receipt.orderId}, but no file of the batch (written by ${writerText(held)})`,
        });
      }
    }
    extra += page.length;
    progress({ phase: 'held', done: extra });
  }
  report.files = scratch.fileCount();
  return report;
}

async function forEachLedgerPage(
  ledger: Ledger,
  batchId: string,
  pageSize: number,
  signal: AbortSignal | undefined,
  each: (rows: InteractionRow[]) => Promise<void>,
): Promise<void> {
  let after: { orderId: string; fileName: string } | null = null;
  for (;;) {
    signal?.throwIfAborted();
    const rows = await ledger.latestInteractions(batchId, { page: { after, limit: pageSize } });
    if (rows.length === 0) return;
    await each(rows);
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1]!;
    after = { orderId: last.order_id, fileName: last.file_name };
  }
}

type SourceState = { sha256: string; size: number } | 'gone' | undefined;

/** The current sha256 of the sources of a page's RECORDED files. */
async function sourceDigests(rows: InteractionRow[]): Promise<SourceState[]> {
  return mapWithConcurrency(rows, 8, async (row): Promise<SourceState> => {
    if (row.status !== 'RECORDED') return undefined;
    const st = await stat(row.source_path).catch(() => undefined);
    if (!st?.isFile()) return 'gone';
    // A different size tells without reading the file.
    if (st.size !== row.size_bytes) return { sha256: '', size: st.size };
    try {
      return await sha256File(row.source_path);
    } catch {
      return 'gone';
    }
  });
}

async function checkFile(
  report: ConsistencyReport,
  ledger: Ledger,
  opts: CheckOptions,
  row: InteractionRow,
  held: HeldCopy | null,
  rollback: RollbackRow | undefined,
  source: SourceState,
): Promise<void> {
  const drift = (kind: DriftKind, detail: string) =>
    report.drifts.push({
      kind,
      orderId: row.order_id,
      fileName: row.file_name,
      target: row.target,
      interactionId: row.interaction_id,
      status: row.status,
      held,
      detail,
    });
  if (opts.maxResends !== undefined && row.resends > opts.maxResends) {
    drift('resends', `resent ${row.resends} times, the batch allows ${opts.maxResends}`);
  }
  switch (row.status) {
    case 'RECORDED':
      if (!held) {
        drift('missing', 'the ledger says RECORDED; the recording system does not hold it');
      } else if (held.sha256 !== row.sha256 || held.size !== row.size_bytes) {
        drift(
          'different-bytes',
          `holds sha256 ${held.sha256} (${held.size} B, written by ${writerText(held)}), the ledger ${row.sha256} (${row.size_bytes} B)`,
        );
      } else if (source === 'gone') {
        report.warnings.push({
          kind: 'source-gone',
          orderId: row.order_id,
          fileName: row.file_name,
          target: row.target,
          interactionId: row.interaction_id,
          detail: `source ${row.source_path} cannot be read`,
        });
      } else if (source && (source.sha256 !== row.sha256 || source.size !== row.size_bytes)) {
        drift(
          'stale',
          `the source ${row.source_path} changed since it was recorded (${source.size} B now, ${row.size_bytes} B recorded)`,
        );
      }
      break;
    case 'ROLLED_BACK':
    case 'CANCELLED': {
      if (held && !(held.writer === 'image-sync' && (await isRecorded(ledger, held.idempotencyKey)))) {
        drift(
          'held-not-recorded',
          `the ledger says ${row.status}; the recording system holds it (written by ${writerText(held)})`,
        );
      }
      const needsRow = row.status === 'ROLLED_BACK' || rollback !== undefined || (await wasSent(ledger, row));
      if (needsRow && rollback?.status !== 'DONE')
        drift('rollback-record', `no DONE rollback row for a ${row.status} file`);
      break;
    }
    case 'ROLLBACK_FAILED': {
      if (rollback?.status !== 'FAILED') drift('rollback-record', 'no FAILED rollback row for a ROLLBACK_FAILED file');
      // A copy another image-sync batch recorded is that batch's, not one this rollback left.
      const leftBehind =
        held && !(held.writer === 'image-sync' && (await isRecorded(ledger, held.idempotencyKey))) ? held : null;
      report.needsAttention.push({
        kind: 'rollback-failed',
        orderId: row.order_id,
        fileName: row.file_name,
        target: row.target,
        interactionId: row.interaction_id,
        held: leftBehind,
        detail: rollback?.reason ?? row.last_error ?? 'the rollback failed',
      });
      break;
    }
    default:
      drift('unfinished', `the latest interaction is still ${row.status}`);
  }
}

async function isRecorded(ledger: Ledger, interactionId: string): Promise<boolean> {
  return (await ledger.getInteraction(interactionId))?.status === 'RECORDED';
}

async function wasSent(ledger: Ledger, row: InteractionRow): Promise<boolean> {
  return (await ledger.listEvents(row.interaction_id)).some((e) => e.kind === 'SENT' || e.kind === 'SEND_FAILED');
}

export function writerText(held: HeldCopy): string {
  const who = { 'this-batch': 'this batch', 'image-sync': 'another image-sync batch', foreign: 'another sender' }[
    held.writer
  ];
  return `${who}, key ${held.idempotencyKey}`;
}

/** Who wrote a held copy, from its idempotency key; asks the ledger once per key. */
class WriterCache {
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

/**
 * The scratch store of one check: the batch's files and the copies held under its orders, in a
 * SQLite file of its own in the temporary folder, removed when the check ends.
 */
class Scratch {
  readonly #dir: string;
  readonly #db: Database.Database;
  readonly #addFile: Database.Statement;
  readonly #addHeld: Database.Statement;
  readonly #getHeld: Database.Statement;

  constructor() {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-reconcile-'));
    this.#db = new Database(path.join(this.#dir, 'scratch.db'));
    this.#db.pragma('journal_mode = OFF');
    this.#db.pragma('synchronous = OFF');
    this.#db.pragma('cache_size = -8000');
    this.#db.exec(`
      create table orders (order_id text primary key) without rowid;
      create table files (target text, order_id text, file_name text, started integer,
        primary key (target, order_id, file_name)) without rowid;
      create table held (target text, order_id text, file_name text, receipt text,
        primary key (target, order_id, file_name));
    `);
    this.#addFile = this.#db.prepare(
      `insert into files values (?, ?, ?, ?)
       on conflict (target, order_id, file_name) do update set started = max(started, excluded.started)`,
    );
    const addOrder = this.#db.prepare('insert or ignore into orders values (?)');
    this.#addHeld = this.#db.prepare(
      'insert or replace into held select ?, ?, ?, ? where exists (select 1 from orders where order_id = ?)',
    );
    this.#getHeld = this.#db.prepare('select receipt from held where target = ? and order_id = ? and file_name = ?');
    this.addFiles = this.#db.transaction(
      (files: { target: string; orderId: string; fileName: string; started: boolean }[]) => {
        for (const f of files) {
          addOrder.run(f.orderId);
          this.#addFile.run(f.target, f.orderId, f.fileName, f.started ? 1 : 0);
        }
      },
    );
    this.addHeld = this.#db.transaction((target: string, receipts: Receipt[]) => {
      for (const r of receipts) this.#addHeld.run(target, r.orderId, r.fileName, JSON.stringify(r), r.orderId);
    });
  }

  readonly addFiles: (files: { target: string; orderId: string; fileName: string; started: boolean }[]) => void;
  readonly addHeld: (target: string, receipts: Receipt[]) => void;

  targets(): string[] {
    return (this.#db.prepare('select distinct target from files order by target').all() as { target: string }[]).map(
      (r) => r.target,
    );
  }

  heldCount(): number {
    return (this.#db.prepare('select count(*) as n from held').get() as { n: number }).n;
  }

  fileCount(): number {
    return (this.#db.prepare('select count(*) as n from files').get() as { n: number }).n;
  }

  heldCopy(target: string, orderId: string, fileName: string): Receipt | null {
    const row = this.#getHeld.get(target, orderId, fileName) as { receipt: string } | undefined;
    return row ? (JSON.parse(row.receipt) as Receipt) : null;
  }

  /** Pages of the held copies no started file accounts for; `ofBatch` when the manifest lists them. */
  *unstartedHeld(pageSize: number): Generator<{ target: string; receipt: Receipt; ofBatch: boolean }[]> {
    const page = this.#db.prepare(
      `select h.rowid as id, h.target as target, h.receipt as receipt, f.started as started
       from held h left join files f on f.target = h.target and f.order_id = h.order_id and f.file_name = h.file_name
       where h.rowid > ? and (f.started is null or f.started = 0) order by h.rowid limit ?`,
    );
    let after = 0;
    for (;;) {
      const rows = page.all(after, pageSize) as {
        id: number;
        target: string;
        receipt: string;
        started: number | null;
      }[];
      if (rows.length === 0) return;
      yield rows.map((r) => ({
        target: r.target,
        receipt: JSON.parse(r.receipt) as Receipt,
        ofBatch: r.started === 0,
      }));
      after = rows[rows.length - 1]!.id;
    }
  }

  close(): void {
    try {
      this.#db.close();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }
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
