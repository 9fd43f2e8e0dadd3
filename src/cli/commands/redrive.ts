import type { Client } from '@temporalio/client';
import { InputError } from '../../batch/start';
import { redriveBatch } from '../../batch/redrive';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { temporalSettings } from '../../temporal/connection';
import { CliError } from '../common';

export async function redriveEndedBatch(
  client: Client,
  batchId: string,
  files?: string[],
): Promise<{ files: string[] }> {
  const ledger = await openLedger(ledgerUrlFromEnv());
  try {
    return await redriveBatch(client, ledger, batchId, temporalSettings().taskQueue, files);
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, 2);
    throw err;
  } finally {
    await ledger.close();
  }
}
