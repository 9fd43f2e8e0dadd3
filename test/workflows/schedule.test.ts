/**
 * Schedules: each run of `scheduledSync` sends the files of the folder that no earlier run
 * recorded. Also the `schedule` commands against the real server.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { describe, expect, inject } from 'vitest';
import {
  DEFAULT_POLICY,
  scheduleBatchPrefix,
  type ScheduledSyncInput,
  type ScheduledSyncResult,
} from '../../src/shared';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import { it } from '../helpers/fixture';

async function writeOrderFile(dir: string, order: string, name: string, body: string): Promise<void> {
  await mkdir(path.join(dir, order), { recursive: true });
  await writeFile(path.join(dir, order, name), body);
}

describe('schedules', () => {
  it('each run picks up only the files no earlier run recorded', async ({ harness }) => {
    const h = await harness();
    const dir = path.join(h.workDir, 'inbox');
    await writeOrderFile(dir, 'ORD-1', 'a.png', 'first a');
    await writeOrderFile(dir, 'ORD-1', 'b.png', 'first b');
    await writeOrderFile(dir, 'ORD-2', 'c.png', 'first c');
    const scheduleId = `sched-${Date.now().toString(36)}`;
    const input: ScheduledSyncInput = {
      scheduleId,
      dir,
      stateDir: h.workDir,
      policy: { ...DEFAULT_POLICY, resendBackoffMs: 50 },
      settleMs: 0,
    };
    const schedule = await h.client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'scheduledSync', taskQueue: h.taskQueue, args: [input] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
    try {
      const runOnce = async (previousRuns: number): Promise<ScheduledSyncResult> => {
        await schedule.trigger();
        const deadline = Date.now() + 60_000;
        for (;;) {
          const actions = (await schedule.describe()).info.recentActions;
          if (actions.length > previousRuns) {
            const started = actions[actions.length - 1]!.action;
            return h.client.workflow
              .getHandle<() => Promise<ScheduledSyncResult>>(
                started.workflow.workflowId,
                started.workflow.firstExecutionRunId,
              )
              .result();
          }
          if (Date.now() > deadline) throw new Error('the schedule did not run');
          await new Promise((r) => setTimeout(r, 100));
        }
      };

      const first = await runOnce(0);
      expect(first.files).toBe(3);
      expect(first.result?.state).toBe('COMPLETED');
      expect(first.batchId?.startsWith(scheduleBatchPrefix(scheduleId))).toBe(true);

      await writeOrderFile(dir, 'ORD-2', 'd.png', 'new d');
      await writeOrderFile(dir, 'ORD-3', 'e.png', 'new e');
      const second = await runOnce(1);
      expect(second.files).toBe(2);
      expect(second.batchId).not.toBe(first.batchId); // even when both runs start within one second
      expect(second.result?.recorded).toBe(2);
      const rows = await h.ledger.listInteractions(second.batchId!);
      expect(rows.map((r) => `${r.order_id}/${r.file_name}`).sort()).toEqual(['ORD-2/d.png', 'ORD-3/e.png']);

      const third = await runOnce(2);
      expect(third).toMatchObject({ batchId: null, files: 0 });
      expect(await h.ledger.recordedFilesOfBatches(scheduleBatchPrefix(scheduleId))).toHaveLength(5);
    } finally {
      await schedule.delete();
    }
  });

  it('schedule create, list, trigger and delete work from the command line', async () => {
    const cwd = path.join(PROJECT_ROOT, '.image-sync', 'test');
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      IMAGE_SYNC_TASK_QUEUE: `sched-cli-${Date.now()}`,
    };
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), ...args], {
        env,
        cwd,
        encoding: 'utf8',
      });
    const id = `cli-sched-${Date.now().toString(36)}`;
    await run('schedule', 'create', '--dir', cwd, '--every', '15m', '--id', id);
    const listed = JSON.parse((await run('schedule', 'list', '--json')).stdout) as {
      scheduleId: string;
      dir: string;
    }[];
    expect(listed.find((s) => s.scheduleId === id)?.dir).toBe(cwd);
    await expect(run('schedule', 'create', '--dir', cwd, '--every', '15m', '--id', id)).rejects.toMatchObject({
      code: 3,
    });
    await expect(run('schedule', 'create', '--dir', cwd, '--every', 'often')).rejects.toMatchObject({ code: 2 });
    await run('schedule', 'trigger', id);
    await run('schedule', 'delete', id);
    const after = JSON.parse((await run('schedule', 'list', '--json')).stdout) as { scheduleId: string }[];
    expect(after.some((s) => s.scheduleId === id)).toBe(false);
    await expect(run('schedule', 'delete', id)).rejects.toMatchObject({ code: 3 });
  });
});
