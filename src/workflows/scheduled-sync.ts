/**
 * scheduledSync: one run of a schedule ("regularly" in the origin documents). It picks up the
 * files of a folder that no earlier run of the schedule recorded, and syncs them as a batch.
 */
import { ParentClosePolicy, executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  SA_BATCH_ID,
  SA_FILES_TOTAL,
  SA_STATE,
  batchWorkflowId,
  scheduleBatchPrefix,
  type ScheduledSyncInput,
  type ScheduledSyncResult,
} from '../shared';
import { ACTIVITY_OPTIONS } from './options';
import { syncBatch } from './sync-batch';

const { prepareScheduledBatch } = proxyActivities<Activities>(ACTIVITY_OPTIONS.scan);

/**
 * A batch id from the run's start time and run id: deterministic, sorted in time order, and
 * distinct for two runs started within the same second (a trigger right after a scheduled run).
 */
export function scheduledBatchId(scheduleId: string, startTime: Date, runId: string): string {
  const stamp = startTime
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  // Run ids are time-ordered: their last characters are the ones that differ.
  return `${scheduleBatchPrefix(scheduleId)}${stamp}-${runId.replace(/-/g, '').slice(-8)}`;
}

export async function scheduledSync(input: ScheduledSyncInput): Promise<ScheduledSyncResult> {
  const info = workflowInfo();
  const batchId = scheduledBatchId(input.scheduleId, info.startTime, info.runId);
  const prepared = await prepareScheduledBatch({
    scheduleId: input.scheduleId,
    dir: input.dir,
    stateDir: input.stateDir,
    batchId,
    settleMs: input.settleMs,
  });
  if (prepared.total === 0) return { batchId: null, files: 0, skippedInvalid: prepared.skippedInvalid };
  const result = await executeChild(syncBatch, {
    workflowId: batchWorkflowId(batchId),
    args: [
      {
        batchId,
        manifestPath: prepared.manifestPath,
        total: prepared.total,
        policy: input.policy,
        ...(input.limits ? { limits: input.limits } : {}),
        ...(input.notify ? { notify: input.notify } : {}),
      },
    ],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    staticSummary: `image-sync batch ${batchId}: ${prepared.total} new files of ${input.dir} (schedule ${input.scheduleId})`,
    typedSearchAttributes: [
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_STATE, value: 'RUNNING' },
      { key: SA_FILES_TOTAL, value: prepared.total },
    ],
  });
  return { batchId, files: prepared.total, skippedInvalid: prepared.skippedInvalid, result };
}
