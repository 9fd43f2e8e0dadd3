/**
 * The consistency invariant (docs/concepts.md), checked for one batch against what the recording
 * systems hold. Used after every batch test, by `image-sync reconcile` and by the scheduled
 * reconcile.
 *
 * Every clause is checked for every file of the batch, from the latest interaction of each file
 * (and, when the batch's manifest is given, from the files that never started) and from what the
 * recording systems list. Both sides are read in pages into a scratch SQLite file on disk
 * (scratch.ts), so the memory a check needs is bounded by the page size, not by the size of the
 * batch or of the recording system. The clauses of one file are in clauses.ts.
 */
import type { Targets } from '../config/targets';
import { errorText } from '../errors';
import type { InteractionRow, Ledger, RollbackRow } from '../ledger/port';
import { MAX_LIST_LIMIT, type ListPage } from '../recording-system/port';
import { readItemsPage } from '../source/normalized';
import { checkFile, sourceDigests } from './clauses';
import type { Findings } from './drift';
import { withRetries } from './retries';
import { Scratch } from './scratch';
import { WriterCache, writerText } from './writers';

export interface ConsistencyReport extends Findings {
  batchId: string;
  /** Files of the batch checked: every file with an interaction, and the manifest's files that never started. */
  files: number;
  /** Copies the recording systems hold under the batch's orders. */
  heldUnderOrders: number;
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

/** One check under way: its options, its scratch store and the report it fills. */
interface Run {
  opts: CheckOptions;
  scratch: Scratch;
  report: ConsistencyReport;
  pageSize: number;
  progress: (p: ReconcileProgress) => void;
}

async function check(opts: CheckOptions, scratch: Scratch): Promise<ConsistencyReport> {
  const report: ConsistencyReport = {
    batchId: opts.batchId,
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
  const run: Run = {
    opts,
    scratch,
    report,
    pageSize: Math.max(1, Math.min(opts.pageSize ?? 1000, MAX_LIST_LIMIT)),
    progress: opts.onProgress ?? (() => undefined),
  };

  // 1. The files of the batch as started (its manifest), marked not started.
  if (opts.manifestPath) await addManifestFiles(run, opts.manifestPath);
  // 2. The files with an interaction, from the ledger.
  const ledgerFiles = await addLedgerFiles(run);
  // 3. What each target holds under the batch's orders.
  await listHeld(run);
  report.heldUnderOrders = scratch.heldCount();
  const writers = new WriterCache(opts.ledger, opts.batchId);
  // 4. Every file with an interaction, against its copy.
  await checkStartedFiles(run, writers, ledgerFiles);
  // 5. Copies under the batch's orders that no interaction of the batch accounts for.
  await checkUnaccountedCopies(run, writers);
  report.files = scratch.fileCount();
  return report;
}

async function addManifestFiles(run: Run, manifestPath: string): Promise<void> {
  const { opts, pageSize } = run;
  for (let offset = 0; ; offset += pageSize) {
    opts.signal?.throwIfAborted();
    let items;
    try {
      items = await readItemsPage(manifestPath, offset, pageSize);
    } catch (err) {
      run.report.unchecked.push(`held-never-started: the manifest cannot be read (${errorText(err)})`);
      return;
    }
    run.scratch.addFiles(
      items.map((i) => ({
        target: opts.targets.resolveName(i.target),
        orderId: i.orderId,
        fileName: i.fileName,
        started: false,
      })),
    );
    run.progress({ phase: 'manifest', done: offset + items.length });
    if (items.length < pageSize) return;
  }
}

/** Adds the files with an interaction to the scratch store; returns how many there are. */
async function addLedgerFiles(run: Run): Promise<number> {
  let ledgerFiles = 0;
  await forEachLedgerPage(run, async (rows) => {
    run.scratch.addFiles(
      rows.map((r) => ({ target: r.target, orderId: r.order_id, fileName: r.file_name, started: true })),
    );
    ledgerFiles += rows.length;
    run.progress({ phase: 'ledger', done: ledgerFiles });
  });
  return ledgerFiles;
}

async function listHeld(run: Run): Promise<void> {
  const { opts, pageSize } = run;
  let listed = 0;
  for (const target of run.scratch.targets()) {
    if (!opts.targets.has(target)) {
      run.report.unchecked.push(`target ${target} is not configured: its copies could not be listed`);
      continue;
    }
    const system = opts.targets.get(target);
    let cursor: string | null = null;
    do {
      opts.signal?.throwIfAborted();
      const from: string | null = cursor;
      const page: ListPage = await withRetries(() =>
        system.list({ cursor: from, limit: pageSize, signal: opts.signal }),
      );
      run.scratch.addHeld(target, page.files);
      listed += page.files.length;
      run.progress({ phase: 'listing', done: listed });
      cursor = page.nextCursor;
    } while (cursor);
  }
}

async function checkStartedFiles(run: Run, writers: WriterCache, ledgerFiles: number): Promise<void> {
  const { ledger, maxResends, checkSources } = run.opts;
  let checked = 0;
  await forEachLedgerPage(run, async (rows) => {
    const rollbacks = new Map<string, RollbackRow>(
      (await ledger.rollbacksOf(rows.map((r) => r.interaction_id))).map((r) => [r.interaction_id, r]),
    );
    const sources = checkSources === false ? [] : await sourceDigests(rows);
    for (const [i, row] of rows.entries()) {
      const receipt = run.scratch.heldCopy(row.target, row.order_id, row.file_name);
      const held = receipt ? await writers.describe(receipt, row.order_id, row.file_name, row) : null;
      await checkFile(run.report, ledger, maxResends, row, held, rollbacks.get(row.interaction_id), sources[i]);
    }
    checked += rows.length;
    run.progress({ phase: 'check', done: checked, total: ledgerFiles });
  });
}

async function checkUnaccountedCopies(run: Run, writers: WriterCache): Promise<void> {
  const { report } = run;
  let extra = 0;
  for (const page of run.scratch.unstartedHeld(run.pageSize)) {
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
    run.progress({ phase: 'held', done: extra });
  }
}

/** The latest interaction of every file of the batch, a page at a time in file order. */
async function forEachLedgerPage(run: Run, each: (rows: InteractionRow[]) => Promise<void>): Promise<void> {
  const { ledger, batchId, signal } = run.opts;
  let after: { orderId: string; fileName: string } | null = null;
  for (;;) {
    signal?.throwIfAborted();
    const rows = await ledger.latestInteractions(batchId, { page: { after, limit: run.pageSize } });
    if (rows.length === 0) return;
    await each(rows);
    if (rows.length < run.pageSize) return;
    const last = rows[rows.length - 1]!;
    after = { orderId: last.order_id, fileName: last.file_name };
  }
}
