/** What a consistency check finds: drifts (breaches of the invariant), warnings, and files needing a person. */
import type { FileState } from '../shared';
import type { HeldCopy } from './writers';

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

/** Findings that are no drift of the batch, but worth a look. */
export const WARNING_KINDS = [
  /** Held under one of the batch's orders, but no file of the batch, nor recorded by another image-sync batch. */
  'foreign-file',
  /** RECORDED, but the source file is gone, so whether the copy is stale cannot be told. */
  'source-gone',
] as const;
export type WarningKind = (typeof WARNING_KINDS)[number];

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

/** The findings of one check, in the order found. */
export interface Findings {
  drifts: Drift[];
  warnings: Warning[];
  /** Files whose rollback failed: recorded as such, but a person must look. */
  needsAttention: NeedsAttention[];
}
