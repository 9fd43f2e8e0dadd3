/**
 * The operators' signals and queries, and what each does to the recording system and the
 * ledger: pause / resume, retry (redrive), max concurrency, the automatic pause when the
 * recording system looks down, and the file workflow's own retry.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject } from 'vitest';
import {
  batchRetrySignal,
  failuresQuery,
  fileKey,
  fileRetrySignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  SA_STATE,
  setConcurrencySignal,
} from '../../src/shared';
import type { syncFile } from '../../src/workflows/sync-file';
import { TRANSFER_PATHS } from '../helpers/harness';
import { TEST_CODEC_TOKEN } from '../helpers/keys';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

describe.each(TRANSFER_PATHS)('signals and queries ($path)', ({ localSendMaxBytes }) => {
  it('pause stops new files while in-flight ones finish; resume carries on', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 300 } });
    const items = await h.makeFiles(10, 512, 5);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2 });
    await waitFor('two files started', async () => (await handle.query(progressQuery)).started >= 2);
    await handle.signal(pauseSignal);
    const paused = await waitFor('in-flight files to finish', async () => {
      const p = await handle.query(progressQuery);
      return p.inFlight === 0 && p;
    });
    expect(paused.paused).toBe(true);
    expect(paused.state).toBe('PAUSED');
    expect((await handle.describe()).typedSearchAttributes.get(SA_STATE)).toBe('PAUSED');
    await new Promise((r) => setTimeout(r, 1_500));
    const still = await handle.query(progressQuery);
    expect(still.started).toBe(paused.started); // nothing new started while paused
    expect((await h.targets.get('default').list({ limit: 100 })).files).toHaveLength(paused.recorded);

    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(10);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('retry redrives the failed files of a running batch, each as a new interaction', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { rejectRate: 1, latencyMs: 200 } });
    const items = await h.makeFiles(6, 512, 6);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, maxResends: 1 });
    await waitFor('two rolled-back files', async () => (await handle.query(progressQuery)).rolledBack >= 2);
    await handle.signal(pauseSignal); // hold the batch open while the recording system recovers
    h.simulator.setFaults({ rejectRate: 0 });
    await waitFor('in-flight files to finish', async () => (await handle.query(progressQuery)).inFlight === 0);
    const failures = await handle.query(failuresQuery);
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.every((f) => f.state === 'ROLLED_BACK' && f.reason.startsWith('Rejected'))).toBe(true);
    const failedKeys = failures.map((f) => fileKey(f.orderId, f.fileName));

    await handle.signal(batchRetrySignal, {});
    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(6);
    expect(result.rolledBack).toBe(0);

    const all = await h.ledger.listInteractions(batchId);
    expect(all).toHaveLength(6 + failedKeys.length); // one new interaction per redriven file
    for (const key of failedKeys) {
      const rows = all.filter((r) => fileKey(r.order_id, r.file_name) === key);
      expect(rows.map((r) => r.status)).toEqual(['ROLLED_BACK', 'RECORDED']);
      expect(rows[1]!.seq).toBeGreaterThan(rows[0]!.seq);
    }
    expect((await h.consistency(batchId, 1)).drifts).toEqual([]);
  });

  it('retry with named files redrives only those', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { rejectRate: 1 } });
    const items = await h.makeFiles(3, 256, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3, maxResends: 0 });
    await waitFor('all rolled back', async () => (await handle.query(progressQuery)).rolledBack === 3).catch(
      () => undefined,
    );
    // The batch ends once all three are rolled back; a named retry then goes to a redrive run.
    const result = await handle.result();
    expect(result.rolledBack).toBe(3);
    h.simulator.setFaults({ rejectRate: 0 });
    const { redriveBatch } = await import('../../src/batch/redrive');
    const only = fileKey(items[1]!.orderId, items[1]!.fileName);
    expect(await redriveBatch(h.client, h.ledger, batchId, h.taskQueue, [only])).toEqual({ files: [only], count: 1 });
    const second = await h.client.workflow.getHandle(handle.workflowId).result();
    expect(second.recorded).toBe(1);
    const latest = await h.ledger.latestInteractions(batchId);
    expect(latest.filter((r) => r.status === 'RECORDED').map((r) => fileKey(r.order_id, r.file_name))).toEqual([only]);
    expect((await h.ledger.getBatch(batchId))?.recorded).toBe(1);
    expect((await h.consistency(batchId, 0)).drifts).toEqual([]);
  });

  it('max concurrency can be raised while the batch runs', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 400 } });
    const items = await h.makeFiles(24, 256, 6);
    const { handle } = await h.start(items, { maxConcurrency: 2 });
    await waitFor('two in flight', async () => (await handle.query(progressQuery)).inFlight === 2);
    await handle.signal(setConcurrencySignal, 8);
    const wider = await waitFor('more than two in flight', async () => {
      const p = await handle.query(progressQuery);
      return p.inFlight > 2 && p;
    });
    expect(wider.inFlight).toBeLessThanOrEqual(8);
    expect((await handle.result()).recorded).toBe(24);
  });

  it('pauses by itself when the recording system looks down, and resumes when a probe succeeds', async ({
    harness,
  }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { failRate: 1 } });
    const items = await h.makeFiles(6, 256, 6);
    const { batchId, handle } = await h.start(items, {
      maxConcurrency: 2,
      maxResends: 20,
      outagePauseAfter: 2,
      probeIntervalMs: 300,
    });
    const paused = await waitFor('the automatic pause', async () => {
      const p = await handle.query(progressQuery);
      return p.paused && p;
    });
    expect(paused.state).toBe('PAUSED');
    expect((await handle.describe()).typedSearchAttributes.get(SA_STATE)).toBe('PAUSED');
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await handle.query(progressQuery)).started).toBe(paused.started); // probes fail: still paused

    h.simulator.setFaults({ failRate: 0 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(6);
    expect((await h.consistency(batchId, 20)).drifts).toEqual([]);
  }, 180_000);

  it("a file's retry signal resends at once and resets its resend count", async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { dropRate: 1 } });
    const [item] = await h.makeFiles(1, 256, 1);
    const handle = await h.client.workflow.start<typeof syncFile>('syncFile', {
      workflowId: `solo-retry-${Date.now()}`,
      taskQueue: h.taskQueue,
      args: [
        {
          batchId: 'solo-retry',
          item: item!,
          attempt: 0,
          policy: { maxResends: 3, resendBackoffMs: 600_000, localSendMaxBytes },
        },
      ],
    });
    await waitFor('the file waiting to resend', async () => (await handle.query(progressQuery)).state === 'RESENDING');
    expect((await handle.query(progressQuery)).resends).toBe(1);
    h.simulator.setFaults({ dropRate: 0 });
    await handle.signal(fileRetrySignal);
    const result = await handle.result();
    expect(result.state).toBe('RECORDED');
    expect(result.resends).toBe(0);
  });

  it('the Temporal CLI drives the same signals and queries, and finds the batch by SyncBatchId', async ({
    harness,
  }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { latencyMs: 200 } });
    const items = await h.makeFiles(6, 256, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 1 });
    const cli = inject('temporalCliPath');
    const address = inject('temporalAddress');
    // Asynchronous: the worker answering the queries runs in this process.
    // The test stacks encrypt payloads: the CLI reads query results through the run's codec server.
    const codec = inject('codecServerUrl');
    const temporal = async (...args: string[]) =>
      (
        await promisify(execFile)(
          cli,
          [...args, '--address', address, '--codec-endpoint', codec, '--codec-auth', `Bearer ${TEST_CODEC_TOKEN}`],
          {
            encoding: 'utf8',
          },
        )
      ).stdout;

    await temporal('workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'pause');
    const progress = await waitFor('the pause via the CLI', async () => {
      const out = JSON.parse(
        await temporal(
          'workflow',
          'query',
          '--workflow-id',
          handle.workflowId,
          '--name',
          'progress',
          '--output',
          'json',
        ),
      ) as {
        queryResult: { paused: boolean; state: string; total: number }[];
      };
      const p = out.queryResult[0]!;
      return p.paused && p;
    });
    expect(progress).toMatchObject({ state: 'PAUSED', total: 6 });

    const listed = await waitFor('the batch in visibility', async () => {
      const out = await temporal('workflow', 'list', '--query', `SyncBatchId="${batchId}"`, '--output', 'json');
      const rows = JSON.parse(out) as { execution: { workflowId: string }; type: { name: string } }[];
      return rows.some((r) => r.type.name === 'syncBatch') && rows.some((r) => r.type.name === 'syncFile') && rows;
    });
    expect(listed.find((r) => r.type.name === 'syncBatch')?.execution.workflowId).toBe(`sync-batch/${batchId}`);

    await temporal('workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'resume');
    expect((await handle.result()).recorded).toBe(6);
    const done = JSON.parse(
      await temporal('workflow', 'query', '--workflow-id', handle.workflowId, '--name', 'progress', '--output', 'json'),
    ) as { queryResult: { state: string; recorded: number; paused: boolean }[] };
    expect(done.queryResult[0]).toMatchObject({ state: 'COMPLETED', recorded: 6, paused: false });
  });
});
