/**
 * reconcile --repair sends under the file's claim: a resend waits for a batch that is delivering
 * the same file, sends nothing when that batch delivered the bytes meanwhile, and gives up
 * without sending when the wait outlasts its patience.
 */
import { describe, expect } from 'vitest';
import type { ReconcileProgress } from '../../src/consistency/invariant';
import { repairBatch } from '../../src/consistency/repair';
import { it } from '../helpers/fixture';
import type { Harness } from '../helpers/harness';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';

/**
 * A batch A that recorded the files, one of which is then lost at the target, and a batch B over
 * that file whose uploads time out for now: B holds the file's claim, live, while nothing is held.
 */
async function lostFileWithBatchDelivering(h: Harness) {
  const items = await h.makeFiles(3, 1024, 3);
  const a = await h.start(items, { maxConcurrency: 3 });
  expect(await a.handle.result()).toMatchObject({ recorded: 3 });
  const lost = items[0]!;
  const key = `${lost.orderId}/${lost.fileName}`;
  expect(await h.targets.get('default').remove(lost.orderId, lost.fileName)).toBe('removed');
  h.simulator.setFaults({ timeoutRate: 1, faultMethods: ['PUT'] });
  const b = await h.start([lost], { maxResends: 20 });
  const file = { target: 'default', orderId: lost.orderId, fileName: lost.fileName };
  await waitFor('batch B to claim the file', async () => (await h.ledger.claimOf(file))?.batchId === b.batchId);
  const received = () => h.simulator.uploadsByFile().get(key)?.received ?? 0;
  return { items, a, b, lost, key, file, received };
}

describe('reconcile --repair under the file claim', () => {
  it('a resend waits for the batch delivering the file, then sends nothing: that batch recorded the bytes', async ({
    harness,
  }) => {
    const h = await harness();
    const { items, a, b, key, file } = await lostFileWithBatchDelivering(h);
    let checked = false;
    const repairing = repairBatch({
      ledger: h.ledger,
      targets: h.targets,
      batchId: a.batchId,
      claimPatienceMs: 300_000,
      onProgress: (p: ReconcileProgress) => {
        if (p.phase === 'check' && p.done === p.total) checked = true;
      },
    });
    // The repair found the file missing while B still held its claim; now B's uploads go through.
    await waitFor('the repair to check the batch', () => checked);
    expect((await h.ledger.claimOf(file))?.batchId).toBe(b.batchId);
    const putsBefore = h.simulator.uploadsByFile().get(key)?.received ?? 0;
    h.simulator.setFaults({ timeoutRate: 0 });
    const repaired = await repairing;
    expect(repaired.before.drifts.map((d) => d.kind)).toEqual(['missing']);
    expect(repaired.repairs).toMatchObject([{ kind: 'missing', action: 'skipped', ok: true, interactionId: null }]);
    expect(repaired.repairs[0]!.detail).toContain(`of batch ${b.batchId} recorded them`);
    expect(repaired.after.drifts).toEqual([]);
    expect(await b.handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 1 });
    // Stored once by B; the repair sent nothing and opened no interaction.
    expect(h.simulator.uploadsByFile().get(key)).toMatchObject({ received: putsBefore + 1, stored: 2, senders: 2 });
    expect((await h.ledger.listInteractions(a.batchId)).length).toBe(3);
    await expectOneTruth(h, [a.batchId, b.batchId], items, { maxResends: 20, sentTwice: new Set([key]) });
  });

  it('a resend whose wait outlasts its patience sends nothing, and the batch delivers the file', async ({
    harness,
  }) => {
    const h = await harness();
    const { items, a, b, key, file, received } = await lostFileWithBatchDelivering(h);
    const putsBefore = received();
    const repaired = await repairBatch({
      ledger: h.ledger,
      targets: h.targets,
      batchId: a.batchId,
      claimPatienceMs: 500,
    });
    expect(repaired.repairs).toMatchObject([{ kind: 'missing', action: 'skipped', ok: false, interactionId: null }]);
    expect(repaired.repairs[0]!.detail).toContain(`of batch ${b.batchId} is delivering this file`);
    expect((await h.ledger.claimOf(file))?.batchId).toBe(b.batchId);
    // Only B's timed-out uploads reached the target; the repair opened no interaction.
    const bKeys = new Set((await h.ledger.listInteractions(b.batchId)).map((r) => r.interaction_id));
    expect(bKeys.size).toBe(1);
    expect((await h.ledger.listInteractions(a.batchId)).length).toBe(3);
    expect(received()).toBeGreaterThanOrEqual(putsBefore);
    h.simulator.setFaults({ timeoutRate: 0 });
    expect(await b.handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 1 });
    expect(h.simulator.uploadsByFile().get(key)).toMatchObject({ stored: 2, senders: 2 });
    await expectOneTruth(h, [a.batchId, b.batchId], items, { maxResends: 20, sentTwice: new Set([key]) });
  });
});
