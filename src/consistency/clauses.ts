/**
 * The clauses of the consistency invariant for one file with an interaction: its latest
 * interaction, its rollback row, the copy held and its source, against the invariant of
 * docs/concepts.md ("The consistency invariant").
 */
import { stat } from 'node:fs/promises';
import type { InteractionRow, Ledger, RollbackRow } from '../ledger/port';
import { mapWithConcurrency } from '../source/concurrency';
import { sha256File } from '../source/files';
import type { DriftKind, Findings } from './drift';
import { writerText, type HeldCopy } from './writers';

export type SourceState = { sha256: string; size: number } | 'gone' | undefined;

/** The current sha256 of the sources of a page's RECORDED files. */
export async function sourceDigests(rows: InteractionRow[]): Promise<SourceState[]> {
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

/** Checks every clause for one file, and adds what it finds to `findings`. */
export async function checkFile(
  findings: Findings,
  ledger: Ledger,
  maxResends: number | undefined,
  row: InteractionRow,
  held: HeldCopy | null,
  rollback: RollbackRow | undefined,
  source: SourceState,
): Promise<void> {
  const drift = (kind: DriftKind, detail: string) =>
    findings.drifts.push({
      kind,
      orderId: row.order_id,
      fileName: row.file_name,
      target: row.target,
      interactionId: row.interaction_id,
      status: row.status,
      held,
      detail,
    });
  if (maxResends !== undefined && row.resends > maxResends) {
    drift('resends', `resent ${row.resends} times, the batch allows ${maxResends}`);
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
        findings.warnings.push({
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
      if (held && !(await heldForAnother(ledger, row, held))) {
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
      const leftBehind = held && !(await heldForAnother(ledger, row, held)) ? held : null;
      findings.needsAttention.push({
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

/**
 * Whether a copy held for a file this batch did not record is another batch's: written by an
 * interaction that is RECORDED, or with the bytes another batch's latest interaction of the
 * file recorded (a copy a rollback left in place because that batch holds it as its own).
 */
async function heldForAnother(ledger: Ledger, row: InteractionRow, held: HeldCopy): Promise<boolean> {
  if (held.writer === 'foreign') return false;
  if (held.writer === 'image-sync' && (await isRecorded(ledger, held.idempotencyKey))) return true;
  const file = { target: row.target, orderId: row.order_id, fileName: row.file_name };
  return (
    (await ledger.recordedWithBytes(
      { ...file, sha256: held.sha256, size: held.size },
      { excludingBatch: row.batch_id },
    )) !== undefined
  );
}

async function isRecorded(ledger: Ledger, interactionId: string): Promise<boolean> {
  return (await ledger.getInteraction(interactionId))?.status === 'RECORDED';
}

async function wasSent(ledger: Ledger, row: InteractionRow): Promise<boolean> {
  return (await ledger.listEvents(row.interaction_id)).some((e) => e.kind === 'SENT' || e.kind === 'SEND_FAILED');
}
