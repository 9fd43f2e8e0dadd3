/**
 * A SQLite ledger locked by another process mid-batch: the workflows wait for it with the reason
 * in their current details, and the batch ends consistent once the lock is gone.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect } from 'vitest';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

describe('the ledger away', () => {
  let lock: Database.Database | undefined;
  afterEach(async () => {
    if (lock?.inTransaction) lock.exec('ROLLBACK');
    lock?.close();
  });

  it('a locked SQLite ledger is waited for, shown in the details, and the batch ends consistent', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(3, 512, 3);
    const file = h.ledgerUrl.replace(/^sqlite:/, '');
    lock = new Database(file);
    lock.exec('BEGIN EXCLUSIVE');
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
    lock.exec('COMMIT');
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(3);
    expect((await h.ledger.listInteractions(batchId)).length).toBe(3);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  }, 240_000);
});
