/**
 * Rollback activities: compensation of one file that cannot be delivered or was cancelled, and
 * the rollback of an atomic batch's recorded files. Both go through one path, `rollBack`, which
 * removes only a copy this interaction wrote and records the outcome in the ledger.
 */
import { Context } from '@temporalio/activity';
import { errorText } from '../errors';
import type { FileOutcome, SyncItem } from '../shared';
import { removeOwnCopy } from './claims';
import { mapped, openInteraction, withHeartbeat, type ActivityDeps, type FileRef } from './context';

/** Why a rollback leaves a file in place: image-sync removes only copies it wrote. */
export const FOREIGN_COPY = 'the recording system holds a copy another sender wrote; it was left in place';

export interface RollbackOutcome {
  status: 'DONE' | 'FAILED';
  detail: string;
}

export function createRollbackActivities(deps: ActivityDeps) {
  const { ledger, targets } = deps;
  const heartbeatEveryMs = deps.heartbeatEveryMs ?? 2_000;

  /** Closes an interaction: the event that says how (its kind is its key) and the final state. */
  async function close(
    interactionId: string,
    kind: 'ROLLED_BACK' | 'ROLLBACK_FAILED' | 'CANCELLED',
    detail: Record<string, unknown>,
    state: FileOutcome,
    lastError: string,
  ): Promise<void> {
    await ledger.appendEvent({ interactionId, eventKey: kind, kind, detail });
    await ledger.updateInteraction(interactionId, { status: state, lastError });
  }

  /**
   * Writes how a rollback ended: the rollback row, the event, and the interaction's state
   * (the given final state when DONE, ROLLBACK_FAILED when FAILED).
   */
  async function recordOutcome(
    ref: FileRef & { reason: string },
    outcome:
      | { status: 'DONE'; finalState: FileOutcome; attempts: number; detail: Record<string, unknown> }
      | { status: 'FAILED'; attempts: number; error: string },
  ): Promise<void> {
    const { interactionId, item } = ref;
    await ledger.recordRollback({
      interactionId,
      batchId: ref.batchId,
      orderId: item.orderId,
      fileName: item.fileName,
      reason: ref.reason,
      status: outcome.status,
      attempts: outcome.attempts,
    });
    if (outcome.status === 'DONE') {
      await close(interactionId, 'ROLLED_BACK', outcome.detail, outcome.finalState, ref.reason);
    } else {
      await close(interactionId, 'ROLLBACK_FAILED', { error: outcome.error }, 'ROLLBACK_FAILED', outcome.error);
    }
  }

  /**
   * Rolls one interaction back at its recording system and records the outcome. A copy another
   * sender wrote is left and the rollback is FAILED; one an earlier interaction of this file
   * recorded is left in place and the rollback is DONE. A recording-system error is logged as a
   * failed attempt and thrown.
   */
  async function rollBack(
    ref: FileRef & { reason: string; finalState: FileOutcome },
    attempt: number,
    signal: AbortSignal,
    extra: Record<string, unknown> = {},
  ): Promise<RollbackOutcome> {
    const { interactionId, item } = ref;
    await ledger.appendEvent({
      interactionId,
      eventKey: 'ROLLBACK_STARTED',
      kind: 'ROLLBACK_STARTED',
      detail: { reason: ref.reason },
    });
    await ledger.updateInteraction(interactionId, { status: 'ROLLING_BACK' });
    if (!targets.has(item.target)) {
      // Nothing can have been sent to a target that does not exist.
      await recordOutcome(ref, {
        status: 'DONE',
        finalState: ref.finalState,
        attempts: attempt,
        detail: { ...extra, unknownTarget: targets.resolveName(item.target) },
      });
      return { status: 'DONE', detail: 'unknown target: nothing was sent' };
    }
    let outcome: 'gone' | 'sibling' | 'foreign';
    try {
      outcome = await removeOwnCopy(
        ledger,
        targets.get(item.target),
        { ...ref, target: targets.resolveName(item.target) },
        signal,
      );
    } catch (err) {
      await ledger.appendEvent({
        interactionId,
        eventKey: `ROLLBACK_ATTEMPT_FAILED:${attempt}`,
        kind: 'ROLLBACK_ATTEMPT_FAILED',
        detail: { attempt, error: errorText(err) },
      });
      throw err;
    }
    if (outcome === 'foreign') {
      await recordOutcome(ref, { status: 'FAILED', attempts: attempt, error: FOREIGN_COPY });
      return { status: 'FAILED', detail: FOREIGN_COPY };
    }
    await recordOutcome(ref, {
      status: 'DONE',
      finalState: ref.finalState,
      attempts: attempt,
      detail:
        outcome === 'gone'
          ? { ...extra, attempts: attempt }
          : { ...extra, attempts: attempt, leftInPlace: 'recorded by an earlier interaction' },
    });
    return {
      status: 'DONE',
      detail: outcome === 'gone' ? 'removed' : 'held as an earlier interaction recorded it; left in place',
    };
  }

  return {
    /** Compensation of one file: a regular activity, retried with patience, never cancelled. */
    async compensate(args: FileRef & { reason: string; finalState: FileOutcome }): Promise<RollbackOutcome> {
      const attempt = Context.current().info.attempt;
      return withHeartbeat(heartbeatEveryMs, (signal) => mapped(() => rollBack(args, attempt, signal)));
    },

    /** Records a rollback that could not be done after every attempt: it needs a person. */
    async recordRollbackFailed(args: FileRef & { reason: string; attempts: number; error: string }): Promise<void> {
      await mapped(() => recordOutcome(args, { status: 'FAILED', attempts: args.attempts, error: args.error }));
    },

    /**
     * A file cancelled before its workflow saw any send: its interaction is opened and closed
     * CANCELLED, with nothing to roll back. Unless the recording system holds a copy under this
     * interaction's key: a send ran whose result the workflow never recorded (its task was
     * retried), and the file needs a rollback ('held'; nothing is written then).
     */
    async markCancelled(args: FileRef & { attempt: number; reason: string }): Promise<'cancelled' | 'held'> {
      const signal = Context.current().cancellationSignal;
      return mapped(async () => {
        const { item, interactionId } = args;
        await openInteraction(deps, args);
        if (targets.has(item.target)) {
          const receipt = await targets.get(item.target).stat(item.orderId, item.fileName, { signal });
          if (receipt?.idempotencyKey === interactionId) return 'held';
        }
        await close(interactionId, 'CANCELLED', { reason: args.reason }, 'CANCELLED', args.reason);
        return 'cancelled';
      });
    },

    /** Atomic batches: rolls back every file of the batch that is still RECORDED, once each. */
    async rollbackRecordedFiles(args: {
      batchId: string;
      reason: string;
    }): Promise<{ rolledBack: number; failed: number }> {
      const ctx = Context.current();
      return mapped(async () => {
        const recorded = await ledger.latestInteractions(args.batchId, { status: 'RECORDED' });
        let rolledBack = 0;
        let failed = 0;
        for (const [i, row] of recorded.entries()) {
          ctx.heartbeat({ done: i, of: recorded.length });
          const item: SyncItem = {
            orderId: row.order_id,
            fileName: row.file_name,
            sourcePath: row.source_path,
            target: row.target,
          };
          const ref = {
            interactionId: row.interaction_id,
            batchId: args.batchId,
            item,
            reason: args.reason,
            finalState: 'ROLLED_BACK' as const,
          };
          let outcome: RollbackOutcome;
          try {
            outcome = await rollBack(ref, 1, ctx.cancellationSignal, { atomic: true });
          } catch (err) {
            await recordOutcome(ref, { status: 'FAILED', attempts: 1, error: errorText(err) });
            outcome = { status: 'FAILED', detail: errorText(err) };
          }
          if (outcome.status === 'DONE') rolledBack += 1;
          else failed += 1;
        }
        return { rolledBack, failed };
      });
    },
  };
}
