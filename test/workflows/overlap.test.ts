/**
 * Batches that send files an earlier batch already recorded: the copy held is accepted when it
 * has the same bytes, and a later batch's rollback never removes the earlier batch's copy.
 */
import { describe, expect } from 'vitest';
import { it } from '../helpers/fixture';

describe('batches over files already recorded', () => {
  it('a second batch of the same files verifies the held copies, and a failing third removes none', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(4, 512, 4);
    const first = await h.start(items, { maxConcurrency: 4 });
    expect((await first.handle.result()).recorded).toBe(4);
    const firstKeys = new Set((await h.ledger.listInteractions(first.batchId)).map((r) => r.interaction_id));

    const second = await h.start(items, { maxConcurrency: 4, maxResends: 1 });
    const secondResult = await second.handle.result();
    expect(secondResult).toMatchObject({ state: 'COMPLETED', recorded: 4, resends: 0 });
    for (const row of await h.ledger.listInteractions(second.batchId)) {
      const verified = (await h.ledger.listEvents(row.interaction_id)).find((e) => e.kind === 'VERIFIED');
      const heldBy = (JSON.parse(verified!.detail!) as { heldBy: string }).heldBy;
      expect(firstKeys.has(heldBy)).toBe(true);
    }

    h.simulator.setFaults({ rejectRate: 1 });
    const third = await h.start(items, { maxConcurrency: 4, maxResends: 0 });
    const thirdResult = await third.handle.result();
    expect(thirdResult.rolledBack).toBe(4);
    h.simulator.setFaults({ rejectRate: 0 });
    const held = (await h.targets.get('default').list()).files;
    expect(held).toHaveLength(4);
    expect(held.every((f) => firstKeys.has(f.idempotencyKey))).toBe(true); // the first batch's copies, untouched
    expect((await h.ledger.listRollbacks(third.batchId)).every((r) => r.status === 'DONE')).toBe(true);

    for (const batchId of [first.batchId, second.batchId, third.batchId]) {
      expect((await h.consistency(batchId, 1)).drifts).toEqual([]);
    }
  });
});
