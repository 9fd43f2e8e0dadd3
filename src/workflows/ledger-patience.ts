/**
 * A step whose ledger write fails because the ledger's database is away (restarting, failing
 * over, disk full, locked) is tried again after a wait, with the reason in the workflow's
 * details, for up to LEDGER_PATIENCE_MS; then the failure stands. Nothing is lost meanwhile:
 * every ledger write is idempotent, and the step runs again whole.
 */
import { sleep } from '@temporalio/workflow';
import { failureMessage, isLedgerUnavailable } from '../failures';

/** How long a workflow waits, in all, for its ledger to come back. */
export const LEDGER_PATIENCE_MS = 15 * 60_000;
const FIRST_WAIT_MS = 5_000;
const LONGEST_WAIT_MS = 60_000;

export function ledgerPatiently<T>(step: () => Promise<T>, tell: (details: string) => void): Promise<T> {
  // The first try makes one promise on the happy path, not an async frame's two: the SDK records
  // a stack trace for every promise workflow code makes, and this runs for every file.
  let first: Promise<T>;
  try {
    first = step();
  } catch (err) {
    return retryPatiently(err, step, tell);
  }
  return first.catch((err: unknown) => retryPatiently(err, step, tell));
}

async function retryPatiently<T>(
  failure: unknown,
  step: () => Promise<T>,
  tell: (details: string) => void,
): Promise<T> {
  let err = failure;
  let waited = 0;
  let wait = FIRST_WAIT_MS;
  for (;;) {
    if (!isLedgerUnavailable(err) || waited >= LEDGER_PATIENCE_MS) throw err;
    tell(`**waiting for the ledger** (${Math.round(waited / 1000)} s so far): ${failureMessage(err)}`);
    await sleep(wait);
    waited += wait;
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    try {
      return await step();
    } catch (next) {
      err = next;
    }
  }
}
