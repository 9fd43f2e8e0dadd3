/**
 * What reconcile needs to know about a batch beyond the ledger: its resend threshold and the
 * manifest it was started with (to find files that never started). Both come from the start
 * input of the batch workflow's latest run, when Temporal still has it.
 */
import { access } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { errorText } from '../errors';
import { batchWorkflowId, type SyncBatchInput } from '../shared';
import { workflowStartInput } from '../temporal/start-input';

export interface BatchContext {
  maxResends?: number;
  manifestPath?: string;
  /** Why a part could not be found, for the report's `unchecked` list. */
  problems: string[];
}

export async function batchContextFromTemporal(client: Client, batchId: string): Promise<BatchContext> {
  try {
    const input = await workflowStartInput<SyncBatchInput>(client, batchWorkflowId(batchId));
    const readable = await access(input.manifestPath).then(
      () => true,
      () => false,
    );
    return {
      maxResends: input.policy.maxResends,
      manifestPath: readable ? input.manifestPath : undefined,
      problems: readable ? [] : [`the batch manifest ${input.manifestPath} cannot be read here`],
    };
  } catch (err) {
    return { problems: [`Temporal has no start input of the batch (${errorText(err).split('\n')[0]})`] };
  }
}
