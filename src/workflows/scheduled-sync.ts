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

const { prepareScheduledBatch } = proxyActivities<Activities>(ACTIVITY_OPTIONS.batch);

/** A batch id from the run's start time: deterministic, and sorted in time order. */
export function scheduledBatchId(scheduleId: string, startTime: Date): string {
  return `${scheduleBatchPrefix(scheduleId)}${startTime
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

export async function scheduledSync(input: ScheduledSyncInput): Promise<ScheduledSyncResult> {
  const batchId = scheduledBatchId(input.scheduleId, workflowInfo().startTime);
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
    args: [{ batchId, manifestPath: prepared.manifestPath, total: prepared.total, policy: input.policy }],
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
