/**
 * Cancellation mid-transfer, by the `cancel` signal and by Temporal's own cancellation request:
 * no new file starts, files in flight are rolled back, and the ledger says so.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect } from 'vitest';
import { batchWorkflowId, cancelSignal, SA_STATE } from '../../src/shared';
import type { syncFile } from '../../src/workflows/sync-file';
import { TRANSFER_PATHS } from '../helpers/harness';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

describe.each(TRANSFER_PATHS)('cancellation mid-transfer ($path)', ({ localSendMaxBytes }) => {
  it('the cancel signal stops new files and rolls back the files in flight', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 1_500 } });
    const items = await h.makeFiles(8, 4096, 4);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 4 });
    const sim = h.simulator;
    await waitFor('four uploads in flight', () => (sim.stats().requests.PUT ?? 0) >= 4);
    await handle.signal(cancelSignal, 'operator test');
    const result = await handle.result();

    expect(result.state).toBe('CANCELLED');
    expect(result.cancelled).toBe(4);
    expect(result.recorded).toBe(0);
    const rows = await h.ledger.latestInteractions(batchId);
    expect(rows).toHaveLength(4); // the other four never started
    expect(rows.every((r) => r.status === 'CANCELLED')).toBe(true);
    const rollbacks = await h.ledger.listRollbacks(batchId);
    expect(rollbacks).toHaveLength(4);
    expect(rollbacks.every((r) => r.status === 'DONE' && r.reason === 'operator test')).toBe(true);
    expect((await h.targets.get('default').list()).files).toEqual([]);
    expect((await h.ledger.getBatch(batchId))?.state).toBe('CANCELLED');
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('a native cancellation request behaves like the cancel signal and ends the workflow cancelled', async ({
    harness,
  }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 1_500 } });
    const items = await h.makeFiles(6, 4096, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3 });
    const sim = h.simulator;
    await waitFor('three uploads in flight', () => (sim.stats().requests.PUT ?? 0) >= 3);
    await handle.cancel();
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const desc = await h.client.workflow.getHandle(batchWorkflowId(batchId)).describe();
    expect(desc.status.name).toBe('CANCELLED');
    expect(desc.typedSearchAttributes.get(SA_STATE)).toBe('CANCELLED');
    const rows = await h.ledger.latestInteractions(batchId);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.status === 'CANCELLED')).toBe(true);
    expect((await h.targets.get('default').list()).files).toEqual([]);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('a file cancelled before its first byte ends CANCELLED with no rollback', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 0 } });
    const [item] = await h.makeFiles(1, 128, 1);
    await h.stopWorker(); // nothing runs until the cancel is in
    const handle = await h.client.workflow.start<typeof syncFile>('syncFile', {
      workflowId: `solo-${Date.now()}`,
      taskQueue: h.taskQueue,
      args: [
        {
          batchId: 'solo',
          item: item!,
          attempt: 0,
          policy: { maxResends: 1, resendBackoffMs: 10, localSendMaxBytes },
        },
      ],
    });
    await handle.signal(cancelSignal, 'before start');
    await h.startWorker();
    const result = await handle.result();
    expect(result.state).toBe('CANCELLED');
    const row = await h.ledger.getInteraction(result.interactionId!);
    expect(row?.status).toBe('CANCELLED');
    expect(await h.ledger.listRollbacks('solo')).toEqual([]);
    expect(h.simulator.stats().requests.PUT ?? 0).toBe(0);
  });
});
