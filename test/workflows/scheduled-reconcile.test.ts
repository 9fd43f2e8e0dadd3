/**
 * Scheduled reconcile: `image-sync schedule create --reconcile BATCH_OR_DIR --every 1h` creates a
 * Temporal Schedule whose runs (`scheduledReconcile`) check the batch; drift planted through the
 * recording system's HTTP API is kept in the ledger and shown in the run's current details.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ScheduleHandle } from '@temporalio/client';
import { afterAll, describe, expect, inject } from 'vitest';
import type { ScheduledReconcileResult } from '../../src/consistency/scheduled-types';
import type { SyncItem } from '../../src/shared';
import { cliEnv, runCli, stopAllClis } from '../cli/helpers';
import { TEST_TOKEN, type Harness } from '../helpers/harness';
import { it } from '../helpers/fixture';

const schedules: ScheduleHandle[] = [];

/** The command line's environment for the file's shared stack. */
function cliEnvOf(h: Harness): NodeJS.ProcessEnv {
  return cliEnv(h.workDir, {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
    IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
    RECORDING_SYSTEM_URL: h.simulator.url,
    RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
  });
}

afterAll(async () => {
  for (const schedule of schedules) await schedule.delete().catch(() => undefined);
  await stopAllClis();
});

async function makeItems(dir: string, count: number): Promise<SyncItem[]> {
  const tag = randomUUID().slice(0, 8);
  const items: SyncItem[] = [];
  for (let i = 0; i < count; i++) {
    const orderId = `ORD-${tag}`;
    const fileName = `scan-${i}.png`;
    const sourcePath = path.join(dir, orderId, fileName);
    await mkdir(path.dirname(sourcePath), { recursive: true });
    await writeFile(sourcePath, `scheduled reconcile ${tag} ${i}`);
    items.push({ orderId, fileName, sourcePath });
  }
  return items;
}

/** Triggers the schedule once and waits for that run's result. */
async function runOnce(
  h: Harness,
  schedule: ScheduleHandle,
): Promise<{ result: ScheduledReconcileResult; workflowId: string; runId: string }> {
  const previous = (await schedule.describe()).info.recentActions.length;
  await schedule.trigger();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const actions = (await schedule.describe()).info.recentActions;
    if (actions.length > previous) {
      const { workflowId, firstExecutionRunId: runId } = actions[actions.length - 1]!.action.workflow;
      const result = await h.client.workflow
        .getHandle<() => Promise<ScheduledReconcileResult>>(workflowId, runId)
        .result();
      return { result, workflowId, runId };
    }
    if (Date.now() > deadline) throw new Error('the schedule did not run');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function currentDetails(h: Harness, workflowId: string, runId: string): Promise<string> {
  const metadata = await h.client.workflow
    .getHandle(workflowId, runId)
    .query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

describe('schedule create --reconcile', () => {
  it('reconciles a batch on a schedule; drift found is kept in the ledger and shown in the run details', async ({
    sharedHarness: h,
  }) => {
    const env = cliEnvOf(h);
    const dir = path.join(h.workDir, `inbox-${randomUUID().slice(0, 6)}`);
    const items = await makeItems(dir, 3);
    const { batchId, handle } = await h.start(items);
    expect((await handle.result()).state).toBe('COMPLETED');

    const scheduleId = `reconcile-${randomUUID().slice(0, 8)}`;
    const created = await runCli(
      ['schedule', 'create', '--reconcile', batchId, '--every', '1h', '--id', scheduleId, '--json'],
      { env, cwd: h.workDir },
    );
    expect(created.code, created.stderr).toBe(0);
    const schedule = h.client.schedule.getHandle(scheduleId);
    schedules.push(schedule);
    expect(JSON.parse(created.stdout)).toEqual({ scheduleId, every: '1h', reconcile: { batchId } });
    expect((await schedule.describe()).action).toMatchObject({ workflowType: 'scheduledReconcile' });

    const clean = await runOnce(h, schedule);
    expect(clean.result).toMatchObject({ drifts: 0, batches: [{ batchId, files: 3, drifts: 0 }] });
    expect(await currentDetails(h, clean.workflowId, clean.runId)).toContain('no drift');

    const gone = items[1]!;
    expect(await h.targets.get('default').remove(gone.orderId, gone.fileName)).toBe('removed');
    const drifted = await runOnce(h, schedule);
    expect(drifted.result.drifts).toBe(1);
    expect(drifted.result.batches[0]).toMatchObject({ batchId, drifts: 1, byKind: { missing: 1 } });
    const details = await currentDetails(h, drifted.workflowId, drifted.runId);
    expect(details).toContain('**1 drifts**');
    expect(details).toContain(`missing ${gone.orderId}/${gone.fileName}`);

    const findings = await h.ledger.listReconcileFindings(batchId);
    expect(findings.map((f) => [f.run_id, f.kind, `${f.order_id}/${f.file_name}`])).toEqual([
      [drifted.runId, 'missing', `${gone.orderId}/${gone.fileName}`],
    ]);

    const listed = await runCli(['schedule', 'list', '--json'], { env, cwd: h.workDir });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ scheduleId, dir: `reconcile ${batchId}` })]),
    );
  });

  it('with a folder, each run reconciles every batch whose files came from it', async ({ sharedHarness: h }) => {
    const env = cliEnvOf(h);
    const dir = path.join(h.workDir, `inbox-${randomUUID().slice(0, 6)}`);
    const first = await h.start(await makeItems(dir, 2));
    await first.handle.result();
    const second = await h.start(await makeItems(dir, 2));
    await second.handle.result();

    const scheduleId = `reconcile-dir-${randomUUID().slice(0, 8)}`;
    const created = await runCli(['schedule', 'create', '--reconcile', dir, '--every', '1h', '--id', scheduleId], {
      env,
      cwd: h.workDir,
    });
    expect(created.code, created.stderr).toBe(0);
    const schedule = h.client.schedule.getHandle(scheduleId);
    schedules.push(schedule);
    expect(created.stdout).toContain(`reconcile the batches of ${dir}`);
    const run = await runOnce(h, schedule);
    expect(run.result.batches.map((b) => [b.batchId, b.files, b.drifts])).toEqual([
      [first.batchId, 2, 0],
      [second.batchId, 2, 0],
    ]);
  });

  it('refuses both --dir and --reconcile, and neither, with exit 2', async ({ sharedHarness: h }) => {
    const env = cliEnvOf(h);
    const both = await runCli(['schedule', 'create', '--dir', h.workDir, '--reconcile', 'b', '--every', '1h'], {
      env,
      cwd: h.workDir,
    });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give exactly one of --dir DIR or --reconcile BATCH_OR_DIR');
    const neither = await runCli(['schedule', 'create', '--every', '1h'], { env, cwd: h.workDir });
    expect(neither.code).toBe(2);
  });
});
