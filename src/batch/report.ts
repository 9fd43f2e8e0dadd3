/** A batch's outcome as the ledger records it: counts and files per status, and per-status exports. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BatchRow, InteractionRow, Ledger, RollbackRow } from '../ledger/port';
import { FILE_STATES, type FileState } from '../shared';

export interface ReportFile {
  orderId: string;
  fileName: string;
  status: FileState;
  interactionId: string;
  seq: number;
  resends: number;
  sizeBytes: number;
  sha256: string;
  target: string;
  lastError: string | null;
  rollback: { status: string; attempts: number; reason: string } | null;
  updatedAt: string;
}

export interface BatchReport {
  batch: BatchRow;
  counts: Partial<Record<FileState, number>>;
  interactions: number;
  files: ReportFile[];
  needsAttention: ReportFile[];
}

export async function buildReport(ledger: Ledger, batchId: string): Promise<BatchReport | undefined> {
  const batch = await ledger.getBatch(batchId);
  if (!batch) return undefined;
  const [latest, all, rollbacks] = await Promise.all([
    ledger.latestInteractions(batchId),
    ledger.listInteractions(batchId),
    ledger.listRollbacks(batchId),
  ]);
  const byInteraction = new Map<string, RollbackRow>(rollbacks.map((r) => [r.interaction_id, r]));
  const files = latest.map((row) => toFile(row, byInteraction.get(row.interaction_id)));
  const counts: Partial<Record<FileState, number>> = {};
  for (const f of files) counts[f.status] = (counts[f.status] ?? 0) + 1;
  return {
    batch,
    counts,
    interactions: all.length,
    files,
    needsAttention: files.filter((f) => f.status === 'ROLLBACK_FAILED'),
  };
}

function toFile(row: InteractionRow, rollback: RollbackRow | undefined): ReportFile {
  return {
    orderId: row.order_id,
    fileName: row.file_name,
    status: row.status,
    interactionId: row.interaction_id,
    seq: row.seq,
    resends: row.resends,
    sizeBytes: row.size_bytes,
    sha256: row.sha256,
    target: row.target,
    lastError: row.last_error,
    rollback: rollback ? { status: rollback.status, attempts: rollback.attempts, reason: rollback.reason } : null,
    updatedAt: row.updated_at,
  };
}

/** The report as text: the batch line, a table of counts per status, then the files needing a look. */
export function formatReport(r: BatchReport): string {
  const b = r.batch;
  const lines = [
    `Batch ${b.batch_id} (${b.workflow_id}): ${b.state}, ${b.total} files, ${r.interactions} interactions`,
    `  created ${b.created_at}${b.finished_at ? `, finished ${b.finished_at}` : ''}`,
    '',
    '  status            files',
  ];
  for (const s of FILE_STATES) if (r.counts[s]) lines.push(`  ${s.padEnd(16)}  ${String(r.counts[s]).padStart(5)}`);
  const failed = r.files.filter((f) => f.status !== 'RECORDED');
  if (failed.length) {
    lines.push('', '  files not recorded:');
    for (const f of failed.slice(0, 50)) {
      lines.push(`  ${f.status.padEnd(16)}  ${f.orderId}/${f.fileName}  resends ${f.resends}  ${f.lastError ?? ''}`);
    }
    if (failed.length > 50) lines.push(`  ... and ${failed.length - 50} more (--export DIR writes them all)`);
  }
  if (r.needsAttention.length)
    lines.push('', `  ${r.needsAttention.length} files need attention: their rollback failed`);
  return `${lines.join('\n')}\n`;
}

const CSV_COLUMNS: (keyof ReportFile)[] = [
  'orderId',
  'fileName',
  'status',
  'interactionId',
  'seq',
  'resends',
  'sizeBytes',
  'sha256',
  'target',
  'lastError',
  'updatedAt',
];

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Writes one CSV per status present (`<status>.csv`) into dir; returns the files written. */
export async function exportByStatus(r: BatchReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const status of FILE_STATES) {
    const rows = r.files.filter((f) => f.status === status);
    if (rows.length === 0) continue;
    const file = path.join(dir, `${status.toLowerCase()}.csv`);
    const body = [CSV_COLUMNS.join(','), ...rows.map((f) => CSV_COLUMNS.map((c) => csvCell(f[c])).join(','))].join(
      '\n',
    );
    await writeFile(file, `${body}\n`);
    written.push(file);
  }
  return written;
}
