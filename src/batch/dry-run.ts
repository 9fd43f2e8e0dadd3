/**
 * What a start would send, without starting it: the files and bytes per target, and how many of
 * them the ledger already holds RECORDED with the same sha256 (the sha256 of the file's bytes
 * now, as a send would compute it). Reads the source files and the ledger; writes nothing: no
 * normalised manifest, no ledger row or table, no workflow.
 */
import { stat } from 'node:fs/promises';
import { fileWithChecksumKey, isMissingTable, openLedgerToRead } from '../ledger';
import type { SyncItem } from '../shared';
import { mapWithConcurrency } from '../source/concurrency';
import { sha256File } from '../source/files';

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

export async function planDryRun(
  items: readonly SyncItem[],
  opts: { defaultTarget: string; ledgerUrl: string },
): Promise<DryRunPlan> {
  const files = await mapWithConcurrency(items, HASH_CONCURRENCY, async (item) => {
    const [digest, st] = await Promise.all([sha256File(item.sourcePath), stat(item.sourcePath)]);
    return {
      target: item.target ?? opts.defaultTarget,
      orderId: item.orderId,
      fileName: item.fileName,
      sha256: digest.sha256,
      bytes: st.size,
    };
  });
  let held = new Set<string>();
  let ledgerRead = false;
  const ledger = openLedgerToRead(opts.ledgerUrl);
  if (ledger) {
    try {
      held = await ledger.recordedWithSameChecksum(files);
      ledgerRead = true;
    } catch (err) {
      if (!isMissingTable(err)) throw err;
    } finally {
      await ledger.close();
    }
  }
  const byTarget = new Map<string, DryRunTarget>();
  for (const f of files) {
    let t = byTarget.get(f.target);
    if (!t) {
      t = { target: f.target, files: 0, bytes: 0, alreadyRecorded: 0 };
      byTarget.set(f.target, t);
    }
    t.files += 1;
    t.bytes += f.bytes;
    if (held.has(fileWithChecksumKey(f))) t.alreadyRecorded += 1;
  }
  const targets = [...byTarget.values()].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  return {
    files: files.length,
    bytes: targets.reduce((n, t) => n + t.bytes, 0),
    alreadyRecorded: targets.reduce((n, t) => n + t.alreadyRecorded, 0),
    targets,
    ledgerRead,
  };
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
