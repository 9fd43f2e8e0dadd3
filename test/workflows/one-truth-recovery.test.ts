/**
 * Claims that outlive their holder: a worker SIGKILLed while it holds claims (its workflows go on
 * on another worker, with the same interactions and claims), and claims whose interaction's
 * workflow run is closed or unknown to the server (taken over), or still running (waited for).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect } from 'vitest';
import { sha256File } from '../../src/source/files';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import { it } from '../helpers/fixture';
import type { Harness } from '../helpers/harness';
import { eventDetail, eventKinds, expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';

function spawnWorker(h: Harness): ChildProcess {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), 'worker'], {
    env: { ...process.env, ...h.env, IMAGE_SYNC_LOG_LEVEL: 'WARN' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

describe('claims that outlive their holder', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('a worker SIGKILLed while it holds claims: the batches finish on another worker, each file sent once', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { latencyMs: 100, failRate: 0.05, seed: 31 } });
    await h.stopWorker();
    const first = spawnWorker(h);
    children.push(first);
    const items = await h.makeFiles(24, 4096, 6);
    const policy = { maxConcurrency: 8, maxResends: 3 };
    const [a, b] = await Promise.all([h.start(items, policy), h.start(items, policy)]);
    // Killed once files are recorded and others are being waited for: claims are held then.
    const recorded = async () =>
      ((await h.ledger.batchCounts(a.batchId)).files.RECORDED ?? 0) +
      ((await h.ledger.batchCounts(b.batchId)).files.RECORDED ?? 0);
    await waitFor('files recorded with more in flight', async () => (await recorded()) >= 6);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await recorded()).toBeLessThan(48);

    children.push(spawnWorker(h));
    const [ra, rb] = await Promise.all([a.handle.result(), b.handle.result()]);
    expect(ra).toMatchObject({ state: 'COMPLETED', recorded: 24 });
    expect(rb).toMatchObject({ state: 'COMPLETED', recorded: 24 });
    // One interaction per file and batch: the restart opened none twice.
    expect(await h.ledger.listInteractions(a.batchId)).toHaveLength(24);
    expect(await h.ledger.listInteractions(b.batchId)).toHaveLength(24);
    await expectOneTruth(h, [a.batchId, b.batchId], items, policy);
  }, 180_000);

  it('takes over a claim whose workflow run is closed or unknown, and waits for one whose run still runs', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(3, 512, 3);
    const [closed, unknown, running] = items as [(typeof items)[0], (typeof items)[0], (typeof items)[0]];
    // Holders: interactions of another batch, left SENDING, each claiming one file.
    const idle = `idle-${randomUUID()}`; // a task queue no worker polls: its workflows never progress
    const startIdle = (id: string) =>
      h.client.workflow.start('syncFile', { workflowId: id, taskQueue: idle, args: [] as never[] });
    const closedRun = await startIdle(`holder-closed-${randomUUID()}`);
    await closedRun.terminate('the holder died');
    const runningRun = await startIdle(`holder-running-${randomUUID()}`);
    const holders = [
      { item: closed, workflowId: closedRun.workflowId, runId: closedRun.firstExecutionRunId },
      { item: unknown, workflowId: `holder-never-${randomUUID()}`, runId: undefined },
      { item: running, workflowId: runningRun.workflowId, runId: runningRun.firstExecutionRunId },
    ];
    const holderIds: string[] = [];
    for (const [n, holder] of holders.entries()) {
      const interactionId = `ix-holder-${n}-${randomUUID().slice(0, 8)}`;
      holderIds.push(interactionId);
      const digest = await sha256File(holder.item.sourcePath);
      const file = { orderId: holder.item.orderId, fileName: holder.item.fileName, target: 'default' };
      await h.ledger.openInteraction({
        ...file,
        interactionId,
        batchId: 'holders',
        sourcePath: holder.item.sourcePath,
        sha256: digest.sha256,
        sizeBytes: digest.size,
        status: 'SENDING',
      });
      const claim = { ...file, interactionId, batchId: 'holders', workflowId: holder.workflowId, runId: holder.runId };
      expect((await h.ledger.claimFile(claim)).taken).toBe(true);
    }

    const batch = await h.start(items, { maxConcurrency: 3 });
    const ofFile = async (item: (typeof items)[0]) =>
      (await h.ledger.latestInteractions(batch.batchId)).find(
        (r) => r.order_id === item.orderId && r.file_name === item.fileName,
      );
    await waitFor('the file held by a running workflow to wait', async () => {
      const row = await ofFile(running);
      return row !== undefined && (await eventKinds(h, row.interaction_id)).includes('CLAIM_WAIT');
    });
    expect((await ofFile(running))!.status).toBe('SENDING');
    // The running holder ends: its claim is free, and the waiting file is sent.
    await h.ledger.updateInteraction(holderIds[2]!, { status: 'ROLLED_BACK' });
    expect(await batch.handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 3 });
    await runningRun.terminate('test over');

    for (const [n, item] of [closed, unknown].entries()) {
      const row = (await ofFile(item))!;
      expect(await eventDetail(h, row.interaction_id, 'CLAIM_TAKEN_OVER')).toMatchObject({
        from: holderIds[n],
        reason: 'its workflow run is closed',
      });
      expect(await eventKinds(h, row.interaction_id)).not.toContain('CLAIM_WAIT');
    }
    const waited = (await ofFile(running))!;
    expect(await eventDetail(h, waited.interaction_id, 'CLAIM_WAIT')).toMatchObject({ holder: holderIds[2] });
    expect(await eventKinds(h, waited.interaction_id)).not.toContain('CLAIM_TAKEN_OVER');
    await expectOneTruth(h, [batch.batchId], items, { maxResends: 3 });
  });
});
