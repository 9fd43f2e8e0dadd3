/**
 * The activities of syncBatch and syncFile, made by a factory so the worker gives them
 * production dependencies and tests give them local ones. One file per role:
 * - transfer.ts: send and verify a file (the happy path as one local activity, or a large file
 *   through a regular, heartbeating activity);
 * - claims.ts: one interaction at a time per destination file, files already held, and the
 *   removal of an interaction's own copy;
 * - rollback.ts: compensation of one file, and the rollback of an atomic batch;
 * - ledger.ts: the batch's ledger row and resend notes;
 * - batch.ts: manifest pages, schedules, outage probes, files started by an earlier run;
 * - redrive.ts: failed files queued for a redrive in the ledger, and read back in pages;
 * - reconcile.ts: the scheduled reconcile's checks (reads only);
 * - notify.ts: batch events POSTed to receivers;
 * - intake.ts: the intake's notes beside its files' interactions.
 *
 * Every ledger write is idempotent (keyed by interaction id and an event key), so Temporal's
 * retries of an activity write each row once. Image bytes stream from disk to the recording
 * system here; only references and small results go back to the workflows.
 */
import { createBatchActivities } from './batch';
import type { ActivityDeps } from './context';
import { createIntakeActivities } from './intake';
import { createLedgerActivities } from './ledger';
import { createNotifyActivities } from './notify';
import { createReconcileActivities } from './reconcile';
import { createRedriveActivities } from './redrive';
import { createRollbackActivities } from './rollback';
import { createTransferActivities } from './transfer';

export type { ActivityDeps, TransferObserver } from './context';
export { toFailure } from './context';
export { FOREIGN_COPY } from './rollback';
export { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signBody } from './notify';
export { judge, type Delivery, type Verdict, type VerifyRule } from './transfer';
export type { AwaitedFile, EndedFile } from './batch';
export type { QueuedRedrive, RedrivesQueued } from './redrive';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createTransferActivities(deps),
    ...createRollbackActivities(deps),
    ...createLedgerActivities(deps),
    ...createBatchActivities(deps),
    ...createRedriveActivities(deps),
    ...createReconcileActivities(deps),
    ...createNotifyActivities(deps),
    ...createIntakeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
