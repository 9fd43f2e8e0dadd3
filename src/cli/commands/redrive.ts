import type { Client } from '@temporalio/client';
import { InputError } from '../../batch/start';
import { redriveBatch, type EndedBatchRedrive } from '../../batch/redrive';
import { temporalSettings } from '../../temporal/connection';
import { CliError, noLedgerText, withExistingLedger } from '../common';

export async function redriveEndedBatch(client: Client, batchId: string, files?: string[]): Promise<EndedBatchRedrive> {
  try {
    return await withExistingLedger(
      (ledger) => redriveBatch(client, ledger, batchId, temporalSettings().taskQueue, files),
      () => new CliError(`batch ${batchId} cannot be redriven: ${noLedgerText()}`, 3, { code: 'no_ledger' }),
    );
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, 2);
    throw err;
  }
}
