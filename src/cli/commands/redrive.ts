import type { Client } from '@temporalio/client';
import { InputError } from '../../batch/start';
import { redriveBatch, type EndedBatchRedrive } from '../../batch/redrive';
import { temporalSettings } from '../../temporal/connection';
import { CliError, withLedger } from '../common';

export async function redriveEndedBatch(client: Client, batchId: string, files?: string[]): Promise<EndedBatchRedrive> {
  try {
    return await withLedger((ledger) => redriveBatch(client, ledger, batchId, temporalSettings().taskQueue, files));
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, 2);
    throw err;
  }
}
