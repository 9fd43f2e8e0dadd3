/**
 * Redriving an ended batch: its failed files (ROLLED_BACK or ROLLBACK_FAILED in the ledger) run
 * again in a new run of the same batch workflow, each as a new interaction, under the policy the
 * batch was started with. A running batch takes the `retry` signal instead.
 */
import path from 'node:path';
import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { Ledger } from '../ledger/port';
import {
  BATCH_WORKFLOW_TYPE,
  batchWorkflowId,
  fileKey,
  SA_BATCH_ID,
  SA_STATE,
  type SyncBatchInput,
  type SyncItem,
} from '../shared';
import { writeNormalizedManifest } from '../source/normalized';
import { workflowStartInput } from '../temporal/start-input';
import { InputError } from './start';
import type { syncBatch } from '../workflows/sync-batch';

/** The input the batch was started with: its policy, manifest and options. */
export function previousInput(client: Client, batchId: string): Promise<SyncBatchInput> {
  return workflowStartInput<SyncBatchInput>(client, batchWorkflowId(batchId));
}

export async function failedItems(ledger: Ledger, batchId: string, only?: string[]): Promise<SyncItem[]> {
  const rows = await ledger.latestInteractions(batchId, { status: ['ROLLED_BACK', 'ROLLBACK_FAILED'] });
  const wanted = only?.length ? new Set(only) : undefined;
  if (wanted) {
    const known = new Set(rows.map((r) => fileKey(r.order_id, r.file_name)));
    const unknown = [...wanted].filter((k) => !known.has(k));
    if (unknown.length) throw new InputError(`not failed files of batch ${batchId}: ${unknown.join(', ')}`);
  }
  return rows
    .filter((r) => !wanted || wanted.has(fileKey(r.order_id, r.file_name)))
    .map((r) => ({ orderId: r.order_id, fileName: r.file_name, sourcePath: r.source_path, target: r.target }));
}

export async function redriveBatch(
  client: Client,
  ledger: Ledger,
  batchId: string,
  taskQueue: string,
  only?: string[],
): Promise<{ files: string[] }> {
  const items = await failedItems(ledger, batchId, only);
  if (items.length === 0) throw new InputError(`batch ${batchId} has no failed files to redrive`);
  const previous = await previousInput(client, batchId);
  const manifestPath = path.join(path.dirname(previous.manifestPath), `${batchId}.redrive-${Date.now()}.ndjson`);
  await writeNormalizedManifest(items, manifestPath);
  const input: SyncBatchInput = { batchId, manifestPath, total: items.length, policy: previous.policy, redrive: true };
  await client.workflow.start<typeof syncBatch>(BATCH_WORKFLOW_TYPE, {
    workflowId: batchWorkflowId(batchId),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: `image-sync batch ${batchId}: redrive of ${items.length} failed files`,
    typedSearchAttributes: [
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_STATE, value: 'RUNNING' },
    ],
  });
  return { files: items.map((i) => fileKey(i.orderId, i.fileName)) };
}
