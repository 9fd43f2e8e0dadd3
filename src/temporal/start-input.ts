/**
 * The input a workflow was started with, read from the first event of its history through the
 * client's codecs (the input may be encrypted). Redrive and reconcile read a batch's policy and
 * manifest this way.
 */
import type { Client } from '@temporalio/client';

export async function workflowStartInput<T>(client: Client, workflowId: string): Promise<T> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`workflow ${workflowId}: its start event has no input`);
  // Through the client's codecs, last first, as the SDK decodes.
  const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
  let decoded = [payload];
  for (const codec of [...payloadCodecs].reverse()) decoded = await codec.decode(decoded);
  return payloadConverter.fromPayload<T>(decoded[0]!);
}
