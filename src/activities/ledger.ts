/**
 * Ledger activities: the batch's row, and the steps of a file that write to the ledger alone.
 * Short and local to the worker: the workflows run them as local activities.
 */
import { scopeLimits } from '../limits/pacer';
import type { BatchLimits, BatchState, LedgerTotals, RateLimit } from '../shared';
import { mapped, type ActivityDeps } from './context';

export function createLedgerActivities(deps: ActivityDeps) {
  const { ledger } = deps;

  async function countTotals(batchId: string): Promise<LedgerTotals> {
    const { files } = await ledger.batchCounts(batchId);
    const rolledBack = files.ROLLED_BACK ?? 0;
    return { recorded: files.RECORDED ?? 0, rolledBack, failed: rolledBack + (files.ROLLBACK_FAILED ?? 0) };
  }

  return {
    /**
     * Opens the batch's row and puts its limits in force: the batch's own and each target's
     * from the targets file. Returns the limits, which the batch then carries.
     */
    async openBatch(args: {
      batchId: string;
      workflowId: string;
      total: number;
      limits?: RateLimit;
    }): Promise<BatchLimits> {
      // A redrive run of an ended batch reopens its row; the batch's total stays the first run's.
      return mapped(async () => {
        const { limits, ...row } = args;
        await ledger.ensureBatch({ ...row, state: 'RUNNING' });
        await ledger.updateBatch(args.batchId, { state: 'RUNNING', finished: false });
        const inForce: BatchLimits = { batch: { ...limits }, targets: deps.targets.limits() };
        await ledger.setRateLimits(args.batchId, scopeLimits(args.batchId, inForce));
        return inForce;
      });
    },

    /** Puts changed limits in force for every worker of the batch (set-limits). */
    async applyLimits(args: { batchId: string; limits: BatchLimits }): Promise<void> {
      await mapped(() => ledger.setRateLimits(args.batchId, scopeLimits(args.batchId, args.limits)));
    },

    /** Records the batch's end state; the counts come from the ledger's own rows. */
    async finishBatch(args: { batchId: string; state: BatchState }): Promise<LedgerTotals> {
      return mapped(async () => {
        const totals = await countTotals(args.batchId);
        await ledger.updateBatch(args.batchId, { state: args.state, ...totals, finished: true });
        await ledger.clearRateLimits(args.batchId);
        return totals;
      });
    },

    /** A resend is queued: the file waits for its backoff. */
    async noteResend(args: { interactionId: string; resends: number; reason: string }): Promise<void> {
      await mapped(() =>
        ledger.recordStep(
          args.interactionId,
          [
            {
              eventKey: `RESEND_QUEUED:${args.resends}`,
              kind: 'RESEND_QUEUED',
              detail: { resends: args.resends, reason: args.reason },
            },
          ],
          { status: 'RESENDING', resends: args.resends, lastError: args.reason },
        ),
      );
    },
  };
}
