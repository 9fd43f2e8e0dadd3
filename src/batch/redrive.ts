/**
 * Redriving an ended batch: its failed files (ROLLED_BACK or ROLLBACK_FAILED in the ledger) are
 * queued in the ledger's redrive queue and run again in a new run of the same batch workflow,
 * each as a new interaction, under the policy, limits and notifications the batch was started
 * with. A running batch takes the `retry` update (or signal) instead, and queues them itself.
 */
import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { queueRedrives } from '../activities/redrive';
import type { Ledger } from '../ledger/port';
import { BATCH_WORKFLOW_TYPE, batchWorkflowId, SA_BATCH_ID, SA_STATE, type SyncBatchInput } from '../shared';
import { workflowStartInput } from '../temporal/start-input';
import { InputError } from './start';
import type { syncBatch } from '../workflows/sync-batch';

/** The input the batch was started with: its policy, manifest and options. */
export function previousInput(client: Client, batchId: string): Promise<SyncBatchInput> {
  return workflowStartInput<SyncBatchInput>(client, batchWorkflowId(batchId));
}

export interface EndedBatchRedrive {
  /** The files queued, as ORDER/FILE: the first MAX_FAILURES_KEPT of them. */
  files: string[];
  /** How many files the redrive run starts. */
  count: number;
}

export async function redriveBatch(
  client: Client,
  ledger: Ledger,
  batchId: string,
  taskQueue: string,
  only?: string[],
): Promise<EndedBatchRedrive> {
  const previous = await previousInput(client, batchId);
  // The batch has ended: rows of its queue that never ran (a cancelled batch's, or a redrive
  // whose run did not start) are dropped, so their files are candidates again.
  await ledger.clearRedriveQueue(batchId);
  const from = (await ledger.redriveTally(batchId, 0)).end;
  const queued = await queueRedrives(ledger, { batchId, from, ...(only?.length ? { files: only } : {}) });
  if ('refused' in queued) throw new InputError(`not failed files of batch ${batchId}: ${queued.refused.join(', ')}`);
  if (queued.count === 0) throw new InputError(`batch ${batchId} has no failed files to redrive`);
  const input: SyncBatchInput = {
    batchId,
    manifestPath: previous.manifestPath,
    total: queued.count,
    policy: previous.policy,
    redrive: { from, to: queued.end },
  };
  for (const key of ['continueAsNewAfterEvents', 'pageSize', 'failuresKept', 'limits', 'notify'] as const) {
    if (previous[key] !== undefined) Object.assign(input, { [key]: previous[key] });
  }
  await client.workflow.start<typeof syncBatch>(BATCH_WORKFLOW_TYPE, {
    workflowId: batchWorkflowId(batchId),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: `image-sync batch ${batchId}: redrive of ${queued.count} failed files`,
    typedSearchAttributes: [
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_STATE, value: 'RUNNING' },
    ],
  });
  return { files: queued.keys, count: queued.count };
}
