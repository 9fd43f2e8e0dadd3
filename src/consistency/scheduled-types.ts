/**
 * Names and types of the scheduled reconcile, shared by the CLI, the activity and the workflow.
 * No imports: the workflow bundle includes this module.
 */

export const SCHEDULED_RECONCILE_WORKFLOW_TYPE = 'scheduledReconcile';

/** Workflow id of a schedule's reconcile runs (Temporal appends the run's start time). */
export function reconcileScheduleWorkflowId(scheduleId: string): string {
  return `reconcile-schedule/${scheduleId}`;
}

/** What each run of a reconcile schedule checks: one batch, or every batch whose sources lie under a folder. */
export type ScheduledReconcileInput = {
  scheduleId: string;
  /** Where a run that finds drift POSTs a reconcile.drift event. */
  notify?: { urls: string[]; timeoutMs: number };
} & ({ batchId: string } | { dir: string });

/** What one batch's reconcile found, small enough for workflow history. */
export interface ReconcileSummary {
  batchId: string;
  files: number;
  drifts: number;
  /** Drifts by kind. */
  byKind: Record<string, number>;
  warnings: number;
  needsAttention: number;
  unchecked: string[];
  /** The first few drifts, one line each. */
  sample: string[];
  /** The batch as the ledger holds it: what a reconcile.drift notification carries. */
  ledger?: {
    state: string;
    total: number;
    recorded: number;
    rolledBack: number;
    rollbackFailed: number;
    cancelled: number;
  };
}

export interface ScheduledReconcileResult {
  batches: ReconcileSummary[];
  /** Drifts over every batch checked. */
  drifts: number;
}
