/** A batch's outcome as the ledger records it: counts and files per status, and per-status exports. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { Targets } from '../config/targets';
import type { BatchRow, InteractionRow, InteractionTrail, Ledger, RollbackRow } from '../ledger/port';
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
  /** RECORDED without a second upload: the interaction whose copy the target already held. */
  heldBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface BatchReport {
  batch: BatchRow;
  counts: Partial<Record<FileState, number>>;
  interactions: number;
  /** Files RECORDED without a second upload: the target already held their bytes. */
  alreadyHeld: number;
  files: ReportFile[];
  needsAttention: ReportFile[];
}

export async function buildReport(ledger: Ledger, batchId: string): Promise<BatchReport | undefined> {
  const batch = await ledger.getBatch(batchId);
  if (!batch) return undefined;
  const [latest, counts, rollbacks, held] = await Promise.all([
    ledger.latestInteractions(batchId),
    ledger.batchCounts(batchId),
    ledger.listRollbacks(batchId),
    ledger.alreadyHeldIn(batchId),
  ]);
  const byInteraction = new Map<string, RollbackRow>(rollbacks.map((r) => [r.interaction_id, r]));
  const files = latest.map((row) =>
    toFile(
      row,
      byInteraction.get(row.interaction_id),
      row.status === 'RECORDED' ? held.get(row.interaction_id) : undefined,
    ),
  );
  return {
    batch,
    counts: counts.files,
    interactions: counts.interactions,
    alreadyHeld: files.filter((f) => f.heldBy !== null).length,
    files,
    needsAttention: files.filter((f) => f.status === 'ROLLBACK_FAILED'),
  };
}

function toFile(row: InteractionRow, rollback: RollbackRow | undefined, heldBy: string | undefined): ReportFile {
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
    heldBy: heldBy ?? null,
    createdAt: row.created_at,
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
  if (r.alreadyHeld) {
    lines.push(
      `  of them already held  ${r.alreadyHeld}: RECORDED without a second upload (the target held the bytes an earlier interaction recorded)`,
    );
  }
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

/** The first characters that make a spreadsheet read a cell as a formula. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell made safe for spreadsheets: one that would start a formula (=, +, -, @, tab,
 * carriage return) is prefixed with a single quote, so it is shown as text, never evaluated.
 */
export function neutraliseCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** CSV text with a header row, written by csv-stringify, every text cell neutralised. */
export function toSafeCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  return stringify(rows as Record<string, unknown>[], {
    header: true,
    columns: [...columns],
    cast: {
      string: (value) => neutraliseCell(value),
      boolean: (value) => (value ? 'true' : 'false'),
      date: (value) => value.toISOString(),
      object: (value) => neutraliseCell(JSON.stringify(value)),
    },
  });
}

/** Writes one CSV per status present (`<status>.csv`) into dir; returns the files written. */
export async function exportByStatus(
  r: BatchReport,
  dir: string,
  opts: { failedOnly?: boolean } = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const status of FILE_STATES) {
    if (opts.failedOnly && status === 'RECORDED') continue;
    const rows = r.files.filter((f) => f.status === status);
    if (rows.length === 0) continue;
    const file = path.join(dir, `${status.toLowerCase()}.csv`);
    await writeFile(file, toSafeCsv(CSV_COLUMNS, rows as unknown as Record<string, unknown>[]));
    written.push(file);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// The per-file report: every file's final state, the rule that failed, resends, bytes, the
// sha256 sent and the one in the recording system's receipt, the interaction id, and times.

/** One file of the per-file report (report.csv and report.jsonl). */
export interface FileReportRow {
  batchId: string;
  orderId: string;
  fileName: string;
  target: string;
  state: FileState;
  /** What failed last: a verification rule (missing, size, checksum, idempotency-key) or `send`. */
  failedRule: string | null;
  lastError: string | null;
  resends: number;
  bytes: number;
  sha256Sent: string;
  /** The sha256 in the recording system's receipt when the report was written; null when it holds none. */
  sha256Receipt: string | null;
  interactionId: string;
  /** When the file's latest interaction was opened, first sent, and last changed. */
  openedAt: string;
  sentAt: string | null;
  endedAt: string;
  rollbackStatus: string | null;
}

export const FILE_REPORT_COLUMNS: readonly (keyof FileReportRow)[] = [
  'batchId',
  'orderId',
  'fileName',
  'target',
  'state',
  'failedRule',
  'lastError',
  'resends',
  'bytes',
  'sha256Sent',
  'sha256Receipt',
  'interactionId',
  'openedAt',
  'sentAt',
  'endedAt',
  'rollbackStatus',
];

/** What the receipts at the recording systems say, or why they could not be read. */
export type Receipts = { read: true; sha256: Map<string, string> } | { read: false; reason: string };

export const receiptKey = (target: string, orderId: string, fileName: string): string =>
  `${target}\u0000${orderId}\u0000${fileName}`;

/**
 * The sha256 of every receipt the recording systems hold for the report's files, read through
 * the paged list endpoint of each target the files used (one pass, no request per file).
 */
export async function readReceipts(
  report: BatchReport,
  targets: Targets,
  opts: { pageSize?: number } = {},
): Promise<Map<string, string>> {
  const wanted = new Map<string, Set<string>>();
  for (const f of report.files) {
    let keys = wanted.get(f.target);
    if (!keys) wanted.set(f.target, (keys = new Set()));
    keys.add(receiptKey(f.target, f.orderId, f.fileName));
  }
  const found = new Map<string, string>();
  for (const [target, keys] of wanted) {
    const system = targets.get(target);
    let cursor: string | null = null;
    do {
      const page = await system.list({ cursor, limit: opts.pageSize ?? 1000 });
      for (const receipt of page.files) {
        const key = receiptKey(target, receipt.orderId, receipt.fileName);
        if (keys.has(key)) found.set(key, receipt.sha256);
      }
      cursor = page.nextCursor;
    } while (cursor);
  }
  return found;
}

/** The report's files as rows of the per-file report, failed ones only when asked. */
export function fileReportRows(
  report: BatchReport,
  trails: Map<string, InteractionTrail>,
  receipts: Receipts,
  opts: { failedOnly?: boolean } = {},
): FileReportRow[] {
  const files = opts.failedOnly ? report.files.filter((f) => f.status !== 'RECORDED') : report.files;
  return files.map((f) => {
    const trail = trails.get(f.interactionId);
    return {
      batchId: report.batch.batch_id,
      orderId: f.orderId,
      fileName: f.fileName,
      target: f.target,
      state: f.status,
      failedRule: trail?.failedRule ?? null,
      lastError: f.lastError,
      resends: f.resends,
      bytes: f.sizeBytes,
      sha256Sent: f.sha256,
      sha256Receipt: receipts.read ? (receipts.sha256.get(receiptKey(f.target, f.orderId, f.fileName)) ?? null) : null,
      interactionId: f.interactionId,
      openedAt: f.createdAt,
      sentAt: trail?.firstSentAt ?? null,
      endedAt: f.updatedAt,
      rollbackStatus: f.rollback?.status ?? null,
    };
  });
}

/** Writes report.csv (spreadsheet-safe) and report.jsonl (one JSON object a line) into dir. */
export async function writeFileReport(rows: readonly FileReportRow[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const csvFile = path.join(dir, 'report.csv');
  const jsonlFile = path.join(dir, 'report.jsonl');
  await writeFile(csvFile, toSafeCsv(FILE_REPORT_COLUMNS, rows as unknown as Record<string, unknown>[]));
  await writeFile(jsonlFile, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return [csvFile, jsonlFile];
}
