/**
 * The intake as operators see it: it continues as new without losing a waiting or in-flight
 * file, a retry redrives its failed files as on a batch, and a cancelled intake ends (its files
 * in flight rolled back or ended) and the next submission starts a new one.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import { intakeWorkflowIdOf, submitUpdate } from '../../src/intake/workflow-api';
import {
  cancelUpdate,
  progressQuery,
  retryUpdate,
  type BatchStateResult,
  type RetryResult,
  type SyncItem,
} from '../../src/shared';
import { it } from '../helpers/fixture';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn, submission } from './intake-backend-helpers';

const asOrder = (orderId: string, items: SyncItem[]) => items.map((i) => ({ ...i, orderId }));

describe('intake operator actions and runs', () => {
  it('continues as new, carrying its waiting and in-flight files and no per-file history', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 150 } });
    const { backend, batchId } = intakeOn(h, {
      continueAsNewAfterEvents: 60,
      policy: { resendBackoffMs: 50, maxConcurrency: 3 },
    });
    const made = await h.makeFiles(30, 2048, 30);
    const items: SyncItem[] = [];
    const firstKey = randomUUID();
    for (let n = 0; n < 10; n++) {
      const part = asOrder('ord-r', made.slice(n * 3, n * 3 + 3));
      items.push(...part);
      const sub = submission('ord-r', part, n === 0 ? firstKey : undefined);
      // As a client does with a 503: a submission answered `unavailable` (an intake run closing
      // under it three times over, or no answer within the submit timeout on a loaded machine)
      // is sent again; its key was released, so it is taken anew.
      const answers = [];
      for (let tries = 0; tries < 3; tries++) {
        answers.push(await backend.submit(sub));
        if (answers.at(-1)!.kind !== 'unavailable') break;
      }
      expect(answers.at(-1), JSON.stringify(answers)).toMatchObject({ kind: 'accepted', replayed: false });
    }
    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    await waitFor(
      'all 30 files recorded and counted by the intake',
      async () => (await handle.query(progressQuery)).recorded === 30,
      240_000,
    );
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // The latest run's input carries counts and keys, not the files it delivered.
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.continuedExecutionRunId).toBeTruthy();
    // A later run still knows the first submission's key: handed over again (as after a lost
    // answer, with the ledger not knowing), it takes nothing.
    const again = await handle.executeUpdate(submitUpdate, {
      updateId: randomUUID(),
      args: [{ idempotencyKey: firstKey, orderId: 'ord-r', files: items.slice(0, 3) }],
    });
    expect(again).toMatchObject({ accepted: 0, replayed: true });
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ started: 30, recorded: 30, inFlight: 0 });
    expect(await h.ledger.listInteractions(batchId)).toHaveLength(30);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 360_000);

  it('retry redrives the intake’s failed files, as on a batch', async ({ harness }) => {
    const h = await harness({ simulator: { rejectRate: 1 } });
    const { backend, batchId } = intakeOn(h);
    const items = asOrder('ord-f', await h.makeFiles(3, 2048, 3));
    expect(await backend.submit(submission('ord-f', items))).toMatchObject({ kind: 'accepted' });
    await waitFor('three files rolled back', async () => {
      const s = await backend.orderStatus('ord-f');
      return s?.files.every((f) => f.state === 'ROLLED_BACK') ? s : undefined;
    });
    const rejected = await backend.orderStatus('ord-f');
    expect(rejected!.files[0]!.reason).toMatch(/422|reject/i);
    h.simulator.setFaults({ rejectRate: 0 });
    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    await waitFor(
      'the intake to count three failures',
      async () => (await handle.query(progressQuery)).rolledBack === 3,
    );
    const retried = await handle.executeUpdate<RetryResult, [object]>(retryUpdate.name, { args: [{}] });
    expect(retried.requeuedCount).toBe(3);
    await waitFor(
      'three files recorded',
      async () => (await backend.orderStatus('ord-f'))?.files.every((f) => f.state === 'RECORDED'),
      120_000,
    );
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 300_000);

  it('a cancelled intake ends, and the next submission starts a new one', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 1_000 } });
    const { backend, batchId } = intakeOn(h, { policy: { resendBackoffMs: 50, maxConcurrency: 2 } });
    const items = asOrder('ord-x', await h.makeFiles(8, 2048, 8));
    expect(await backend.submit(submission('ord-x', items.slice(0, 6)))).toMatchObject({ kind: 'accepted' });
    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    await waitFor('a file under way', async () => (await handle.query(progressQuery)).started >= 1);
    expect(await handle.executeUpdate<BatchStateResult, [string]>(cancelUpdate.name, { args: ['test'] })).toEqual({
      batchId,
      state: 'CANCELLED',
    });
    const result = (await handle.result()) as { state: string; notStarted: number; total: number };
    expect(result.state).toBe('CANCELLED');
    expect(result.total).toBe(6);
    expect((await h.ledger.getBatch(batchId))?.state).toBe('CANCELLED');
    const firstRun = (await handle.describe()).runId;

    // A new intake takes the next submission.
    expect(await backend.submit(submission('ord-x', items.slice(6)))).toMatchObject({ kind: 'accepted' });
    await waitFor(
      'the two new files recorded',
      async () =>
        (await backend.orderStatus('ord-x'))?.files.filter(
          (f) => f.state === 'RECORDED' && items.slice(6).some((i) => i.fileName === f.fileName),
        ).length === 2,
      120_000,
    );
    const second = await h.client.workflow.getHandle(intakeWorkflowIdOf(batchId)).describe();
    expect(second.runId).not.toBe(firstRun);
    expect(second.status.name).toBe('RUNNING');
    const ended = (await backend.orderStatus('ord-x'))!.files;
    expect(ended).toHaveLength(8);
    // Every file ended: recorded, or cancelled (in flight, or dropped before it started).
    for (const f of ended) expect(['RECORDED', 'CANCELLED']).toContain(f.state);
    const dropped = ended.filter((f) => f.state === 'CANCELLED' && f.interactionId === null);
    expect(dropped).toHaveLength(result.notStarted);
    expect(result.notStarted).toBeGreaterThan(0);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 300_000);
});
