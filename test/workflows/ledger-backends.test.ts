/** The same batch, with faults, on both ledger backends: the invariant holds on each. */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../ledger/backends';
import { startHarness } from '../helpers/harness';

describe.each(BACKENDS.filter((b) => !b.skipped))('a faulty batch on the $name ledger', (backend) => {
  afterAll(async () => {
    await backend.cleanup();
  });

  it('ends with every file recorded or rolled back, consistently', async () => {
    await backend.check();
    const h = await startHarness({
      ledgerUrl: await backend.freshUrl(),
      simulator: { failRate: 0.1, dropRate: 0.05, corruptRate: 0.05, rejectRate: 0.05, seed: 42 },
    });
    try {
      const items = await h.makeFiles(40, 1024, 8);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 10, maxResends: 3 });
      const result = await handle.result();
      expect(result.recorded + result.rolledBack + result.rollbackFailed).toBe(40);
      expect(result.ledger.recorded).toBe(result.recorded);
      const report = await h.consistency(batchId, 3);
      expect(report.drifts).toEqual([]);
      expect(h.ledger.dialect).toBe(backend.name);
    } finally {
      await h.close();
    }
  });
});
