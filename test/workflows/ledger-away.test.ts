/**
 * A SQLite ledger locked by another process mid-batch: the workflows wait for it with the reason
 * in their current details, and the batch ends consistent once the lock is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { lockSqliteLedger } from '../../src/ledger/testing';
import { startHarness, type Harness } from '../helpers/harness';
import { waitFor } from '../helpers/wait';

describe('the ledger away', () => {
  let h: Harness | undefined;
  let lock: { release(): void } | undefined;
  afterEach(async () => {
    lock?.release();
    await h?.close();
    h = undefined;
  });

  it('a locked SQLite ledger is waited for, shown in the details, and the batch ends consistent', async () => {
    h = await startHarness();
    const items = await h.makeFiles(3, 512, 3);
    lock = lockSqliteLedger(h.ledgerUrl);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3 });
    const details = async () =>
      (await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '';
    const shown = await waitFor(
      'the batch to say it waits for the ledger',
      async () => {
        const d = await details();
        return d.includes('waiting for the ledger') ? d : undefined;
      },
      150_000,
    );
    expect(shown).toContain('ledger database is locked');
    lock.release();
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(3);
    expect((await h.ledger.listInteractions(batchId)).length).toBe(3);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  }, 240_000);
});
