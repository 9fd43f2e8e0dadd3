/**
 * The production topology: the pinned Temporal server on PostgreSQL (not the dev server), the
 * ledger on PostgreSQL, and two worker processes on one task queue. A faulty batch survives one
 * worker SIGKILLed mid-batch with the consistency invariant holding, and the operator actions
 * (pause, resume, retry, cancel) work through the CLI against this server.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatch } from '../../src/batch/start';
import { checkBatchConsistency } from '../../src/consistency/invariant';
import { progressQuery, type BatchPolicy, type SyncItem } from '../../src/shared';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { cliEnv, runCli } from '../cli/helpers';
import { waitFor } from '../helpers/wait';
import { startProductionStack, type ProductionStack, type WorkerProcess } from './helpers';

describe('production topology: Temporal server on PostgreSQL, two worker processes', () => {
  let stack: ProductionStack;
  const taskQueue = `prod-${randomUUID().slice(0, 8)}`;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startProductionStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Files under order ids of their own: the batches of this file share one recording system. */
  async function makeFiles(count: number, size: number, perOrder: number): Promise<SyncItem[]> {
    const tag = randomUUID().slice(0, 8);
    const dir = path.join(stack.workDir, `src-${tag}`);
    await generateBlobFiles(dir, { count, size, filesPerOrder: perOrder });
    const parsed = await scanDirectory(dir);
    if (parsed.errors.length) throw new Error(JSON.stringify(parsed.errors));
    return parsed.items.map((item) => ({ ...item, orderId: `${tag}-${item.orderId}` }));
  }

  /** What the consistency invariant finds wrong with a batch; empty when it holds. */
  async function drifts(batchId: string, maxResends: number) {
    return (await checkBatchConsistency({ ledger: stack.ledger, targets: stack.targets, batchId, maxResends })).drifts;
  }

  function start(items: SyncItem[], policy: Partial<BatchPolicy>) {
    return startBatch(stack.client, items, {
      taskQueue,
      batchId: `prod-${randomUUID().slice(0, 10)}`,
      stateDir: stack.workDir,
      policy: { resendBackoffMs: 50, ...policy },
    });
  }

  async function spawnReadyWorkers(n: number): Promise<WorkerProcess[]> {
    const started = Array.from({ length: n }, () => stack.spawnWorker(taskQueue));
    workers.push(...started);
    await Promise.all(started.map((w) => w.ready));
    return started;
  }

  /** The worker identities (pid@host) that ran workflow tasks of the batch's file workflows. */
  async function identitiesOfFiles(batchId: string, files: number): Promise<Set<string>> {
    const ids = await waitFor(
      'every file workflow in visibility',
      async () => {
        const found: string[] = [];
        for await (const wf of stack.client.workflow.list({ query: `WorkflowId STARTS_WITH "sync-batch/${batchId}/"` }))
          found.push(wf.workflowId);
        return found.length >= files && found;
      },
      30_000,
    );
    const identities = new Set<string>();
    for (const id of ids) {
      const history = await stack.client.workflow.getHandle(id).fetchHistory();
      for (const e of history.events ?? []) {
        const identity =
          e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
        if (identity) identities.add(identity);
      }
    }
    return identities;
  }

  async function cli(...args: string[]) {
    const result = await runCli(args, {
      env: cliEnv(stack.workDir, {
        TEMPORAL_ADDRESS: stack.server.address,
        IMAGE_SYNC_TASK_QUEUE: taskQueue,
        IMAGE_SYNC_LEDGER_URL: stack.ledgerUrl,
      }),
    });
    expect(result.code, `image-sync ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  it('a faulty batch survives one of two workers SIGKILLed mid-batch; the invariant holds', async () => {
    const [first, second] = await spawnReadyWorkers(2);
    stack.simulator.setFaults({ latencyMs: 150, failRate: 0.08, dropRate: 0.05, corruptRate: 0.05, rejectRate: 0.04 });
    const items = await makeFiles(40, 4096, 8);
    const { batchId, handle } = await start(items, { maxConcurrency: 8, maxResends: 4 });

    const recorded = async () => (await stack.ledger.batchCounts(batchId)).files.RECORDED ?? 0;
    await waitFor('eight recorded files', async () => (await recorded()) >= 8, 90_000);
    first!.child.kill('SIGKILL');
    await first!.exited;
    expect(await recorded()).toBeLessThan(40);

    const result = await handle.result();
    expect(['COMPLETED', 'COMPLETED_WITH_FAILURES']).toContain(result.state);
    expect(result.recorded + result.rolledBack + result.rollbackFailed).toBe(40);
    expect(result.cancelled).toBe(0);
    const faults = stack.simulator.stats().faults;
    expect(faults.fail + faults.drop + faults.corrupt + faults.reject).toBeGreaterThan(0);

    // One interaction per file: the killed worker's files were taken over, not started again.
    expect(await stack.ledger.listInteractions(batchId)).toHaveLength(40);
    const report = await checkBatchConsistency({
      ledger: stack.ledger,
      targets: stack.targets,
      batchId,
      maxResends: 4,
    });
    expect(report.files).toBe(40);
    expect(report.drifts).toEqual([]);

    // Both processes served the batch's files.
    const identities = [...(await identitiesOfFiles(batchId, 40))];
    expect(identities.some((i) => i.startsWith(`${first!.pid}@`))).toBe(true);
    expect(identities.some((i) => i.startsWith(`${second!.pid}@`))).toBe(true);
  }, 300_000);

  it('pause, retry, resume and cancel work through the CLI against this server', async () => {
    // Two workers again: the survivor of the first test and a new one.
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    await spawnReadyWorkers(2 - alive.length);

    // Every file is rejected at first, so the batch has failed files to redrive.
    stack.simulator.setFaults({ latencyMs: 500, failRate: 0, dropRate: 0, corruptRate: 0, rejectRate: 1 });
    const a = await start(await makeFiles(20, 1024, 10), { maxConcurrency: 1, maxResends: 1 });
    await waitFor('a rolled-back file', async () => (await a.handle.query(progressQuery)).rolledBack >= 1, 60_000);
    expect(await cli('pause', a.batchId)).toContain(`Batch ${a.batchId} is PAUSED`);
    const paused = await waitFor('the paused batch to drain', async () => {
      const p = await a.handle.query(progressQuery);
      return p.inFlight === 0 && p.paused && p;
    });
    expect(paused.state).toBe('PAUSED');
    expect(paused.started).toBeLessThan(20);
    const failed = paused.rolledBack;
    stack.simulator.setFaults({ latencyMs: 20, rejectRate: 0 });
    expect(await cli('retry', a.batchId)).toContain(`Batch ${a.batchId} requeued ${failed} files`);
    expect(await cli('resume', a.batchId)).toContain(`Batch ${a.batchId} is RUNNING`);
    const resultA = await a.handle.result();
    expect(resultA.state).toBe('COMPLETED');
    expect(resultA.recorded).toBe(20);
    // Each redriven file got a new interaction next to its rolled-back one.
    expect(await stack.ledger.listInteractions(a.batchId)).toHaveLength(20 + failed);
    expect(await drifts(a.batchId, 1)).toEqual([]);

    // Cancel a batch in flight: files in flight are rolled back, the rest never start.
    stack.simulator.setFaults({ latencyMs: 400 });
    // Enough files that the batch is still running when the CLI, slow to start on a loaded
    // machine, sends the cancel: at least 100 rounds of 400 ms.
    const b = await start(await makeFiles(400, 1024, 8), { maxConcurrency: 4, maxResends: 2 });
    await waitFor('four files started', async () => (await b.handle.query(progressQuery)).started >= 4, 60_000);
    expect(await cli('cancel', b.batchId, '--reason', 'operator test')).toContain(`Batch ${b.batchId} is cancelled`);
    const resultB = await b.handle.result();
    expect(resultB.state).toBe('CANCELLED');
    expect(resultB.cancelled).toBeGreaterThan(0);
    expect(resultB.recorded).toBeLessThan(400);
    expect(await drifts(b.batchId, 2)).toEqual([]);
  }, 300_000);
});
