/**
 * Operator actions when no worker runs the batch: on the run's real dev server, a batch on a task
 * queue nobody polls. Each action waits --timeout seconds at most, then exits 5 saying the action
 * was not confirmed, on which task queue no worker answered, and what to do; nothing entered the
 * batch's history. `--signal` records the signal at once, without a worker.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchWorkflowId, BATCH_WORKFLOW_TYPE } from '../../src/shared';
import { cliEnv, runCli, stopAllClis, tempDir, type CliResult } from './helpers';

const EventType = temporal.api.enums.v1.EventType;

describe('operator actions with no worker polling the task queue', () => {
  let connection: Connection;
  let client: Client;
  let home: string;
  let handle: WorkflowHandle;
  const batchId = `no-worker-${randomUUID().slice(0, 8)}`;
  const taskQueue = `nobody-polls-${randomUUID()}`;
  const cli = (...args: string[]): Promise<CliResult> =>
    runCli(args, {
      env: cliEnv(home, { TEMPORAL_ADDRESS: inject('temporalAddress'), IMAGE_SYNC_TASK_QUEUE: taskQueue }),
      timeoutMs: 120_000,
    });

  beforeAll(async () => {
    home = await tempDir('unconfirmed');
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    // Started on a task queue no worker polls: the batch exists and runs, and nothing answers for it.
    handle = await client.workflow.start(BATCH_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: batchWorkflowId(batchId),
      args: [{}],
    });
  });
  afterAll(async () => {
    await stopAllClis();
    await handle?.terminate('test done').catch(() => undefined);
    await connection?.close();
  });

  const notConfirmed = (r: CliResult, name: string, timeout: number) => {
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(5);
    const reason = r.stderr.trim().split('\n');
    expect(reason).toHaveLength(1);
    expect(reason[0]).toContain(
      `${name} of batch ${batchId} was not confirmed: no worker answered within ${timeout}s on task queue ${taskQueue}`,
    );
    expect(reason[0]).toContain(`IMAGE_SYNC_TASK_QUEUE=${taskQueue} image-sync worker`);
    return reason[0]!;
  };

  it('pause, cancel and set-concurrency give up after --timeout with exit 5, naming the task queue and the --signal fallback', async () => {
    const pause = notConfirmed(await cli('pause', batchId, '--timeout', '2'), 'pause', 2);
    expect(pause).toContain(`image-sync pause ${batchId} --signal`);
    const cancel = notConfirmed(await cli('cancel', batchId, '--timeout', '2', '--reason', 'gone'), 'cancel', 2);
    expect(cancel).toContain(`image-sync cancel ${batchId} --reason "gone" --signal`);

    const json = await cli('set-concurrency', batchId, '4', '--timeout', '3', '--json');
    expect(json.code).toBe(5);
    expect(JSON.parse(json.stdout)).toMatchObject({
      error: { code: 'not_confirmed', exitCode: 5, action: 'setMaxConcurrency', taskQueue, timeoutSeconds: 3 },
    });
  }, 240_000);

  it('set-limits, which has no signal form, says to start a worker', async () => {
    const r = notConfirmed(
      await cli('set-limits', batchId, '--max-requests-per-second', '5', '--timeout', '2'),
      'setLimits',
      2,
    );
    expect(r).toContain('this action has no signal form');
    expect(r).not.toContain('--signal');
  }, 120_000);

  it('without --timeout the wait is bounded by the default (30 s)', async () => {
    notConfirmed(await cli('resume', batchId), 'resume', 30);
  }, 120_000);

  it('--signal records the signal at once; no update entered the history', async () => {
    const r = await cli('pause', batchId, '--signal', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ batchId, signal: 'pause', confirmed: false });
    const words = await cli('set-concurrency', batchId, '3', '--signal');
    expect(words.code, words.stderr).toBe(0);
    expect(words.stdout).toContain(`Sent signal setMaxConcurrency to batch ${batchId}: recorded, not confirmed`);

    const events = (await handle.fetchHistory()).events ?? [];
    const signals = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
    expect(signals.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName)).toEqual([
      'pause',
      'setMaxConcurrency',
    ]);
    expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)).toEqual([]);
  }, 120_000);
});
