/**
 * The intake's histories replay against the current workflow code: every run of an intake that
 * took submissions (one refused by its validator), was paused and resumed, continued as new, and
 * was cancelled. A change that would break running intakes (non-determinism) fails here.
 */
import { Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { readFileSync } from 'node:fs';
import { describe, expect, inject } from 'vitest';
import { imageSyncDataConverter } from '../../src/codec/encryption';
import { intakeWorkflowIdOf } from '../../src/intake/workflow-api';
import { cancelUpdate, pauseUpdate, progressQuery, resumeUpdate, type BatchStateResult } from '../../src/shared';
import { testEncryptionKeys } from '../helpers/harness';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';
import { intakeOn, submission } from './intake-backend-helpers';

describe('replay of intake histories', () => {
  it('replays every run of an intake: submissions, a refusal, pause, resume, continue-as-new, cancel', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { dropRate: 0.2, seed: 7 } });
    const { backend, batchId } = intakeOn(h, { continueAsNewAfterEvents: 80, maxWaiting: 6 });
    const made = await h.makeFiles(16, 512, 16);
    const items = made.map((i) => ({ ...i, orderId: 'ord-replay' }));
    for (let n = 0; n < 4; n++) {
      const part = items.slice(n * 3, n * 3 + 3);
      expect(await backend.submit(submission('ord-replay', part))).toMatchObject({ kind: 'accepted' });
    }
    expect(await backend.submit(submission('ord-replay', items.slice(0, 7)))).toMatchObject({ kind: 'saturated' });
    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    await waitFor(
      'twelve files counted',
      async () => {
        const p = await handle.query(progressQuery);
        return p.recorded + p.rolledBack + p.rollbackFailed === 12;
      },
      180_000,
    );
    const update = <R>(name: string) => handle.executeUpdate<R, []>(name);
    expect(await update<BatchStateResult>(pauseUpdate.name)).toMatchObject({ state: 'PAUSED' });
    expect(await backend.submit(submission('ord-replay', items.slice(12)))).toMatchObject({ kind: 'accepted' });
    expect(await update<BatchStateResult>(resumeUpdate.name)).toMatchObject({ state: 'RUNNING' });
    await waitFor(
      'sixteen files counted',
      async () => {
        const p = await handle.query(progressQuery);
        return p.recorded + p.rolledBack + p.rollbackFailed === 16;
      },
      180_000,
    );
    await handle.executeUpdate<BatchStateResult, [string]>(cancelUpdate.name, { args: ['replay test'] });
    await handle.result();

    // Every run, from the last back to the first through each run's continued-from link.
    const histories: { workflowId: string; history: temporal.api.history.v1.IHistory }[] = [];
    let runId: string | undefined = (await handle.describe()).runId;
    while (runId) {
      const history = await h.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
      histories.push({ workflowId: `${handle.workflowId}#${histories.length}`, history });
      runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    }
    expect(histories.length).toBeGreaterThan(1);
    const results = Worker.runReplayHistories(
      {
        workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
        dataConverter: imageSyncDataConverter(testEncryptionKeys()),
      },
      histories,
    );
    let replayed = 0;
    for await (const r of results) {
      expect(r.error, `${r.workflowId}: ${String(r.error)}`).toBeUndefined();
      replayed += 1;
    }
    expect(replayed).toBe(histories.length);
  }, 420_000);
});
