/** What a repair is about (one file's finding) and how it ended, as reconcile reports it. */
import type { DriftKind } from './drift';
import { writerText, type HeldCopy } from './writers';

/** One file to repair, from a drift or a file needing attention. */
export interface Finding {
  kind: DriftKind | 'rollback-failed';
  orderId: string;
  fileName: string;
  target: string;
  interactionId: string | null;
  held: HeldCopy | null;
  detail: string;
}

export interface RepairOutcome {
  kind: DriftKind | 'rollback-failed';
  orderId: string;
  fileName: string;
  target: string;
  action: 'resent' | 'removed' | 'rollback-recorded' | 'skipped';
  ok: boolean;
  /** The interaction the repair opened, when it opened one. */
  interactionId: string | null;
  detail: string;
}

export function outcome(
  f: Finding,
  action: RepairOutcome['action'],
  ok: boolean,
  interactionId: string | null,
  detail: string,
): RepairOutcome {
  return {
    kind: f.kind,
    orderId: f.orderId,
    fileName: f.fileName,
    target: f.target,
    action,
    ok,
    interactionId,
    detail,
  };
}

export function heldText(held: HeldCopy): string {
  return `sha256 ${held.sha256}, ${held.size} B, written by ${writerText(held)}`;
}
