/**
 * A 500-file batch against a recording system that fails, drops, corrupts and rejects, on both
 * ledger backends: every file ends recorded or rolled back, and the invariant holds for each.
 */
import { afterAll, describe, expect } from 'vitest';
import { BACKENDS } from '../ledger/backends';
import { it } from '../helpers/fixture';

describe.each(BACKENDS.filter((b) => !b.skipped))('a faulty batch on the $name ledger', (backend) => {
  afterAll(async () => {
    await backend.cleanup();
  });

  it('ends with every file recorded or rolled back, consistently', { timeout: 300_000 }, async ({ harness }) => {
    await backend.check();
    const h = await harness({
      ledgerUrl: await backend.freshUrl(),
      simulator: { failRate: 0.1, dropRate: 0.05, corruptRate: 0.05, rejectRate: 0.02, seed: 42 },
    });
    const items = await h.makeFiles(500, 2048, 25);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 32, maxResends: 3 });
    const result = await handle.result();
    expect(result.recorded + result.rolledBack + result.rollbackFailed).toBe(500);
    expect(result.resends).toBeGreaterThan(0); // drops and corruption were caught and resent
    expect(result.rolledBack).toBeGreaterThan(0); // rejections were rolled back
    expect(result.ledger.recorded).toBe(result.recorded);
    const report = await h.consistency(batchId, 3);
    expect(report.drifts).toEqual([]);
    expect(h.ledger.dialect).toBe(backend.name);
  });
});
