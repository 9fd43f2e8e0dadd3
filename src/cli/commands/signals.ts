import type { Command } from 'commander';
import {
  batchRetrySignal,
  batchWorkflowId,
  cancelSignal,
  pauseSignal,
  resumeSignal,
  setConcurrencySignal,
} from '../../shared';
import { POLICY_BOUNDS } from '../../config/policy-bounds';
import { action, CliError, parsePolicyValue, withClient } from '../common';
import { describeBatch, runningBatch } from './batch-handle';
import { redriveEndedBatch } from './redrive';

const FILE_KEY = /^[^/]+\/[^/]+$/;

export function registerSignals(program: Command): void {
  program
    .command('cancel')
    .description('cancel a batch: no new file starts, files in flight are rolled back')
    .argument('<batch>', 'batch id')
    .option('--reason <text>', 'why, recorded with every rollback')
    .action(
      action(async (batchId: string, flags: { reason?: string }) =>
        withClient(async (client) => {
          await runningBatch(client, batchId);
          await client.workflow
            .getHandle(batchWorkflowId(batchId))
            .signal(cancelSignal, flags.reason ?? 'cancelled by operator');
          process.stdout.write(`Cancel sent to batch ${batchId}\n`);
        }),
      ),
    );

  program
    .command('pause')
    .description('pause a batch: no new file starts; files in flight finish')
    .argument('<batch>', 'batch id')
    .action(
      action(async (batchId: string) =>
        withClient(async (client) => {
          await runningBatch(client, batchId);
          await client.workflow.getHandle(batchWorkflowId(batchId)).signal(pauseSignal);
          process.stdout.write(`Pause sent to batch ${batchId}\n`);
        }),
      ),
    );

  program
    .command('resume')
    .description('resume a paused batch')
    .argument('<batch>', 'batch id')
    .action(
      action(async (batchId: string) =>
        withClient(async (client) => {
          await runningBatch(client, batchId);
          await client.workflow.getHandle(batchWorkflowId(batchId)).signal(resumeSignal);
          process.stdout.write(`Resume sent to batch ${batchId}\n`);
        }),
      ),
    );

  program
    .command('set-concurrency')
    .description('change how many files a running batch has in flight at once')
    .argument('<batch>', 'batch id')
    .argument(
      '<n>',
      `files in flight at once (${POLICY_BOUNDS.maxConcurrency.min} to ${POLICY_BOUNDS.maxConcurrency.max})`,
      parsePolicyValue('maxConcurrency', 'n'),
    )
    .action(
      action(async (batchId: string, n: number) =>
        withClient(async (client) => {
          await runningBatch(client, batchId);
          await client.workflow.getHandle(batchWorkflowId(batchId)).signal(setConcurrencySignal, n);
          process.stdout.write(`Max concurrency of batch ${batchId} set to ${n}\n`);
        }),
      ),
    );

  program
    .command('retry')
    .description('redrive the files that ended ROLLED_BACK or ROLLBACK_FAILED, each as a new interaction')
    .argument('<batch>', 'batch id')
    .option('--file <order/file...>', 'only these files (ORDER/FILE); all failed files when omitted')
    .action(
      action(async (batchId: string, flags: { file?: string[] }) =>
        withClient(async (client) => {
          const bad = (flags.file ?? []).filter((f) => !FILE_KEY.test(f));
          if (bad.length) throw new CliError(`--file takes ORDER/FILE, got: ${bad.join(', ')}`, 2);
          const desc = await describeBatch(client, batchId);
          if (desc.status.name === 'RUNNING') {
            await client.workflow
              .getHandle(batchWorkflowId(batchId))
              .signal(batchRetrySignal, flags.file?.length ? { files: flags.file } : {});
            process.stdout.write(
              `Retry sent to batch ${batchId}${flags.file?.length ? ` for ${flags.file.length} files` : ' for all failed files'}\n`,
            );
            return;
          }
          const redriven = await redriveEndedBatch(client, batchId, flags.file);
          process.stdout.write(`Batch ${batchId} had ended; started a redrive run for ${redriven} files\n`);
        }),
      ),
    );
}
