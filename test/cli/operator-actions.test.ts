/**
 * The operator actions as confirmed updates, driven from the CLI as an operator would: each
 * prints its result (and with --json the documented document); a request that cannot apply is
 * refused with exit 2 and a one-line reason, and never enters the batch's history.
 */
import { temporal } from '@temporalio/proto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { retryUpdate, setConcurrencyUpdate } from '../../src/shared';
import { startHarness, TEST_ENCRYPTION_KEYS_ENV, type Harness } from '../helpers/harness';
import { waitFor } from '../helpers/wait';
import { cliEnv, runCli, stopAllClis, tempDir, type CliResult } from './helpers';

const EventType = temporal.api.enums.v1.EventType;

describe('operator actions, confirmed', () => {
  let h: Harness;
  let home: string;
  const cli = (...args: string[]): Promise<CliResult> =>
    runCli(args, {
      env: cliEnv(home, {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
        IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
        IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV,
      }),
    });
  const json = <T>(r: CliResult): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const refused = (r: CliResult, reason: string) => {
    expect(r.code, r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(reason);
  };

  beforeAll(async () => {
    home = await tempDir('actions');
    h = await startHarness({ simulator: { rejectRate: 1, latencyMs: 300 } });
  });
  afterAll(async () => {
    await stopAllClis();
    await h?.close();
  });

  it('pause, retry, set-concurrency, resume and cancel answer with results; impossible requests are refused', async () => {
    // Enough files that the batch is still running when the first command, slow to start on a
    // busy machine, reaches it.
    const items = await h.makeFiles(1000, 64, 10);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 1, maxResends: 0 });

    expect(json(await cli('pause', batchId, '--json'))).toEqual({ batchId, state: 'PAUSED' });
    refused(await cli('pause', batchId), 'already paused');
    // status says why the batch is paused, and the rate it read from the ledger.
    const status = await cli('status', batchId);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`paused by an operator; resume with: image-sync resume ${batchId}`);
    expect(status.stdout).toMatch(/rate: \d+ files ended in the last \d+s \(SQLite file /);

    // The file in flight when the batch paused is rejected and rolled back.
    await waitFor('a failed file', async () => (await h.ledger.listRollbacks(batchId)).length > 0);
    const [failed] = await h.ledger.listRollbacks(batchId);
    const key = `${failed!.order_id}/${failed!.file_name}`;
    // --file is repeatable; the batch id after it is not taken for a file.
    refused(
      await cli('retry', '--file', 'ORD-NOPE/none.bin', '--file', 'ORD-NOPE/two.bin', batchId),
      'not failed files of this batch: ORD-NOPE/none.bin, ORD-NOPE/two.bin',
    );
    expect(json(await cli('retry', batchId, '--file', key, '--json'))).toEqual({
      batchId,
      requeued: [key],
      requeuedCount: 1,
    });
    refused(await cli('retry', batchId, '--file', key), `not failed files of this batch: ${key}`);

    expect(json(await cli('set-concurrency', batchId, '3', '--json'))).toEqual({ batchId, maxConcurrency: 3 });
    // Out of range: the CLI refuses it itself; the batch refuses it too, for other callers.
    expect((await cli('set-concurrency', batchId, '0')).code).not.toBe(0);
    const direct = await handle.executeUpdate(setConcurrencyUpdate, { args: [0] }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((direct as WorkflowUpdateFailedError).cause?.message ?? '')).toContain('from 1 to 2000');

    // A slow recording system keeps the batch running while the next requests come in.
    h.simulator.setFaults({ latencyMs: 2_000 });
    expect(json(await cli('resume', batchId, '--json'))).toEqual({ batchId, state: 'RUNNING' });
    refused(await cli('resume', batchId), 'not paused');

    const words = await cli('cancel', batchId, '--reason', 'operator test');
    expect(words.code, words.stderr).toBe(0);
    expect(words.stdout).toContain(`Batch ${batchId} is cancelled`);
    // Refused while the rollbacks run; on a busy machine the batch may have ended by the time a
    // command starts (exit 3). retry of an ended batch starts a redrive run: asked in process.
    const cancelledOrEnded = (r: CliResult, reason: string) =>
      r.code === 3 ? expect(r.stderr).toContain(`batch ${batchId} has ended`) : refused(r, reason);
    cancelledOrEnded(await cli('cancel', batchId), 'already cancelled');
    cancelledOrEnded(await cli('pause', batchId), 'cancelled');
    const retried = await handle.executeUpdate(retryUpdate.name, { args: [{}] }).catch((e: unknown) => e);
    expect(retried).toBeInstanceOf(Error);
    if (retried instanceof WorkflowUpdateFailedError) expect(String(retried.cause?.message)).toContain('cancelled');

    const result = await handle.result();
    expect(result.state).toBe('CANCELLED');

    // Five accepted updates in history; the refused ones left no trace.
    const events = (await handle.fetchHistory()).events ?? [];
    const accepted = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
    expect(accepted.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name)).toEqual(
      ['pause', 'retry', 'setMaxConcurrency', 'resume', 'cancel'],
    );
    expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED)).toEqual([]);
  }, 240_000);

  it('status shows the limits in force, the first 20 failures and "and N more" for the rest', async () => {
    h.simulator.setFaults({ rejectRate: 1, latencyMs: 0 });
    const items = await h.makeFiles(24, 256, 6);
    const { batchId, handle } = await h.start(
      items,
      { maxConcurrency: 6, maxResends: 0, toleratedFailurePercent: 100 },
      undefined,
      { limits: { maxRequestsPerSecond: 40 } },
    );
    expect((await handle.result()).rolledBack).toBe(24);

    const status = await cli('status', batchId);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('max concurrency 6; limits: batch 40 requests/s');
    const failureLines = status.stdout.split('\n').filter((l) => /^ {2}\S+\/\S+: ROLLED_BACK: /.test(l));
    expect(failureLines).toHaveLength(20);
    expect(status.stdout).toContain(`  ... and 4 more: image-sync report ${batchId}`);

    const doc = json<{ progress: { maxConcurrency: number; limits: unknown } }>(await cli('status', batchId, '--json'));
    expect(doc.progress).toMatchObject({ maxConcurrency: 6, limits: { batch: { maxRequestsPerSecond: 40 } } });
  }, 180_000);

  it('retry with nothing to redrive is refused with exit 2', async () => {
    h.simulator.setFaults({ rejectRate: 0, latencyMs: 300 });
    try {
      const items = await h.makeFiles(20, 512, 4);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 1 });
      expect(json<{ state: string }>(await cli('pause', batchId, '--json')).state).toBe('PAUSED');
      refused(await cli('retry', batchId), 'nothing to redrive');
      expect(json(await cli('cancel', batchId, '--json'))).toEqual({ batchId, state: 'CANCELLED' });
      expect((await handle.result()).state).toBe('CANCELLED');
    } finally {
      h.simulator.setFaults({ rejectRate: 1 });
    }
  }, 120_000);
});
