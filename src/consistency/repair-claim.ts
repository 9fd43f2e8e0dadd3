/**
 * A repair that sends takes the file's claim like any delivery (docs/one-truth.md), so that it
 * never sends alongside a batch, a schedule's run or a redrive delivering the same file, and a
 * delivery waits for the repair in turn. The repair is a process, not a workflow: its claim names
 * `reconcile-repair/<batch>` and lives for a lease (PROCESS_CLAIM_LEASE_MS), after which a
 * delivery may take it over; it ends, like every claim, when the repair's interaction ends.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ClaimedFile, ClaimHolder, FileClaim, Ledger } from '../ledger/port';
import { ENDED_STATUSES, PROCESS_CLAIM_PREFIX, processClaimLive } from '../ledger/queries/claims';
import type { FileOutcome } from '../shared';

/** How long a repair waits in all, by default, for a file another live interaction holds. */
export const REPAIR_CLAIM_PATIENCE_MS = 60_000;

/** Whether a holder keeps the claim: its interaction is live, and a process's lease runs. */
function holds(holder: ClaimHolder): boolean {
  if (holder.status === null || ENDED_STATUSES.includes(holder.status as FileOutcome)) return false;
  return !holder.workflowId.startsWith(PROCESS_CLAIM_PREFIX) || processClaimLive(holder);
}

/**
 * Waits until no live interaction holds the file's claim (250 ms doubling to 2 s between looks),
 * for up to `patienceMs`. Undefined when the file is free; the holder when patience ran out.
 */
export async function waitForFreeClaim(
  ledger: Ledger,
  file: ClaimedFile,
  patienceMs: number,
  signal?: AbortSignal,
): Promise<ClaimHolder | undefined> {
  let waited = 0;
  let wait = 250;
  for (;;) {
    const holder = await ledger.claimOf(file);
    if (!holder || !holds(holder)) return undefined;
    if (waited >= patienceMs) return holder;
    await delay(wait, undefined, { signal });
    waited += wait;
    wait = Math.min(wait * 2, 2_000);
  }
}

/**
 * Claims the file for a repair's interaction (opened already, so that the claim is live), taking
 * over a claim whose holder no longer holds it; waits for a live holder as waitForFreeClaim does.
 * Undefined when taken; the holder when patience ran out.
 */
export async function takeRepairClaim(
  ledger: Ledger,
  claim: Omit<FileClaim, 'workflowId' | 'runId'>,
  patienceMs: number,
  signal?: AbortSignal,
): Promise<ClaimHolder | undefined> {
  const full: FileClaim = { ...claim, workflowId: `${PROCESS_CLAIM_PREFIX}${claim.batchId}` };
  let waited = 0;
  let wait = 250;
  for (;;) {
    let outcome = await ledger.claimFile(full);
    if (!outcome.taken && !holds(outcome.holder)) {
      outcome = await ledger.claimFile(full, { over: outcome.holder.interactionId });
    }
    if (outcome.taken) return undefined;
    if (waited >= patienceMs) return outcome.holder;
    await delay(wait, undefined, { signal });
    waited += wait;
    wait = Math.min(wait * 2, 2_000);
  }
}
