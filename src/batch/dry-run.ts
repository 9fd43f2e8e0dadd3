/**
 * What a start would send, without starting it: the files and bytes per target, and how many of
 * them the ledger already holds RECORDED with the same sha256 (the sha256 of the file's bytes
 * now, as a send would compute it). Reads the source files and the ledger; writes nothing: no
 * normalised manifest, no ledger row or table, no workflow.
 *
 * The input is read as a stream (input.ts), its files spooled to a temporary database; then the
 * ledger's RECORDED files are read page by page and matched against them. Only a file the ledger
 * holds RECORDED at the same target is hashed: the others cannot be already recorded, so a dry
 * run of new files reads no file's bytes.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isMissingTable, openLedgerToRead } from '../ledger';
import type { RecordedFile } from '../ledger/port';
import { mapWithConcurrency } from '../source/concurrency';
import { sha256File } from '../source/files';
import { SpooledFiles, type SpooledFile } from '../source/spooled-files';
import { readInput, type InputSource, type InputSummary, type ReadInputOptions } from './input';

export interface DryRunTarget {
  target: string;
  files: number;
  bytes: number;
  /** Files the ledger already holds RECORDED at this target with the same sha256. */
  alreadyRecorded: number;
}

export interface DryRunPlan {
  files: number;
  bytes: number;
  alreadyRecorded: number;
  /** One entry per target, by name. */
  targets: DryRunTarget[];
  /** Whether the ledger held any batch to compare with (false: a ledger never written). */
  ledgerRead: boolean;
}

/** Files hashed at once: reading is the cost, and a few in flight keep a disk busy. */
const HASH_CONCURRENCY = 4;
/** RECORDED files read from the ledger per page. */
const LEDGER_PAGE = 5000;
/** Files up to this size are hashed from one read; larger ones as a stream. */
const WHOLE_READ_BYTES = 1024 * 1024;

/** The sha256 of a file's bytes now: one read for a small file, a stream for a large one. */
async function sha256Now(sourcePath: string): Promise<string> {
  if ((await stat(sourcePath)).size > WHOLE_READ_BYTES) return (await sha256File(sourcePath)).sha256;
  return createHash('sha256')
    .update(await readFile(sourcePath))
    .digest('hex');
}

/**
 * Reads the input as a start would (the same errors, the same --skip-invalid) and plans it; the
 * ledger at `ledgerUrl` is only read. Rejects with an InputError as a start would.
 */
export async function planDryRun(
  src: InputSource,
  opts: Omit<ReadInputOptions, 'files'> & { defaultTarget: string; ledgerUrl: string },
): Promise<{ plan: DryRunPlan; input: InputSummary }> {
  const files = new SpooledFiles(true);
  try {
    const byTarget = new Map<string, DryRunTarget>();
    const input = await readInput(src, { ...opts, files }, ({ item, size }) => {
      const name = item.target ?? opts.defaultTarget;
      let t = byTarget.get(name);
      if (!t) {
        t = { target: name, files: 0, bytes: 0, alreadyRecorded: 0 };
        byTarget.set(name, t);
      }
      t.files += 1;
      t.bytes += size;
    });
    const ledgerRead = await countAlreadyRecorded(files, byTarget, opts);
    const targets = [...byTarget.values()].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
    const plan: DryRunPlan = {
      files: targets.reduce((n, t) => n + t.files, 0),
      bytes: targets.reduce((n, t) => n + t.bytes, 0),
      alreadyRecorded: targets.reduce((n, t) => n + t.alreadyRecorded, 0),
      targets,
      ledgerRead,
    };
    return { plan, input };
  } finally {
    files.close();
  }
}

/**
 * Reads the ledger's RECORDED files page by page and counts, per target, the input's files among
 * them whose bytes now have the same sha256 (each file once). Returns whether the ledger was read.
 */
async function countAlreadyRecorded(
  files: SpooledFiles,
  byTarget: Map<string, DryRunTarget>,
  opts: { defaultTarget: string; ledgerUrl: string },
): Promise<boolean> {
  const ledger = openLedgerToRead(opts.ledgerUrl);
  if (!ledger) return false;
  try {
    let after = 0;
    for (;;) {
      let page: RecordedFile[];
      try {
        page = await ledger.recordedFilesAfter(after, LEDGER_PAGE);
      } catch (err) {
        if (isMissingTable(err)) return false;
        throw err;
      }
      // The input's valid files the ledger holds RECORDED at their own target.
      const matches: { recorded: RecordedFile; file: SpooledFile }[] = [];
      for (const recorded of page) {
        const file = files.find(recorded.orderId, recorded.fileName);
        if (!file || file.skipped || file.counted) continue;
        if ((file.target ?? opts.defaultTarget) !== recorded.target) continue;
        matches.push({ recorded, file });
      }
      // Each file hashed once, however many batches recorded it.
      const toHash = new Map<string, SpooledFile>();
      for (const { file } of matches) {
        if (file.sha256 === null) toHash.set(`${file.orderId}\u0000${file.fileName}`, file);
      }
      const hashed = new Map<string, string>();
      await mapWithConcurrency([...toHash], HASH_CONCURRENCY, async ([key, file]) => {
        const sha256 = await sha256Now(file.sourcePath);
        hashed.set(key, sha256);
        files.rememberSha256(file, sha256);
      });
      for (const { recorded, file } of matches) {
        const key = `${file.orderId}\u0000${file.fileName}`;
        const sha256 = file.sha256 ?? hashed.get(key);
        if (sha256 !== recorded.sha256 || files.find(file.orderId, file.fileName)?.counted) continue;
        files.markCounted(file);
        byTarget.get(recorded.target)!.alreadyRecorded += 1;
      }
      if (page.length < LEDGER_PAGE) return true;
      after = page[page.length - 1]!.seq;
    }
  } finally {
    await ledger.close();
  }
}

/** The plan as text: a line of totals, then one line per target. */
export function formatDryRun(plan: DryRunPlan, batchId: string | undefined): string {
  const width = Math.max(6, ...plan.targets.map((t) => t.target.length));
  const lines = [
    `Dry run${batchId ? ` of batch ${batchId}` : ''}: would send ${plan.files} files, ${plan.bytes} bytes, to ${plan.targets.length} ${plan.targets.length === 1 ? 'target' : 'targets'}; ${plan.alreadyRecorded} already recorded with the same sha256${plan.alreadyRecorded ? ' (already held: delivered without a second upload unless --resend-recorded)' : ''}. Nothing was started or written.`,
    `  ${'TARGET'.padEnd(width)}  ${'FILES'.padStart(7)}  ${'BYTES'.padStart(14)}  ALREADY RECORDED`,
  ];
  for (const t of plan.targets) {
    lines.push(
      `  ${t.target.padEnd(width)}  ${String(t.files).padStart(7)}  ${String(t.bytes).padStart(14)}  ${t.alreadyRecorded}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
