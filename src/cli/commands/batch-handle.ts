import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { batchWorkflowId } from '../../shared';
import { temporalSettings } from '../../temporal/connection';
import { CliError } from '../common';

/** Describes a batch's workflow, or fails with a clear "no such batch". */
export async function describeBatch(client: Client, batchId: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(batchWorkflowId(batchId)).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      const { connectionOptions, namespace } = temporalSettings();
      throw new CliError(
        `no batch ${batchId}: workflow ${batchWorkflowId(batchId)} not found in namespace ${namespace} at ${connectionOptions.address} (ended batches are kept for the namespace's retention; the ledger keeps them longer: image-sync report ${batchId})`,
        3,
        { code: 'unknown_batch' },
      );
    }
    throw err;
  }
}

/** Describes a batch that must still be running to take a signal. */
export async function runningBatch(client: Client, batchId: string): Promise<WorkflowExecutionDescription> {
  const desc = await describeBatch(client, batchId);
  if (desc.status.name !== 'RUNNING')
    throw new CliError(`batch ${batchId} has ended (${desc.status.name}); it takes no signals`, 3, {
      code: 'batch_ended',
    });
  return desc;
}
