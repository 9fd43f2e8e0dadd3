/**
 * The operator actions on a running batch, as confirmed Workflow Updates: the batch refuses a
 * request that cannot apply (exit 2, with its reason) before it enters history, and answers
 * with a result, printed in words or, with --json, as one document. The signals of the same
 * names stay for the Temporal CLI and Web UI.
 */
import type { Command } from 'commander';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import {
  batchWorkflowId,
  cancelUpdate,
  pauseUpdate,
  resumeUpdate,
  retryUpdate,
  setConcurrencyUpdate,
  setLimitsUpdate,
  type LimitsChange,
} from '../../shared';
import { describeLimits } from '../../workflows/batch-limits';
import { POLICY_BOUNDS } from '../../config/policy-bounds';
import { fileRefs } from '../../activities/redrive';
import { action, CliError, parseLimitOption, parsePolicyValue, printJson, withClient, withLedger } from '../common';
import { describeBatch, runningBatch } from './batch-handle';
import { redriveEndedBatch } from './redrive';

const FILE_KEY = /^[^/]+\/[^/]+$/;

/** Sends one update to a running batch; a refusal becomes exit 2 with the batch's reason. */
async function confirm<Ret, Args extends unknown[]>(
  client: Client,
  batchId: string,
  update: UpdateDefinition<Ret, Args>,
  ...args: Args
): Promise<Ret> {
  await runningBatch(client, batchId);
  try {
    // One call shape for updates with and without arguments.
    const def = update as unknown as UpdateDefinition<Ret, [unknown]>;
    return await client.workflow
      .getHandle(batchWorkflowId(batchId))
      .executeUpdate(def, { args: args as unknown as [unknown] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : err.message;
      throw new CliError(`batch ${batchId} refused ${update.name}: ${why}`, 2);
    }
    throw err;
  }
}

/** The first files of a list, and how many more there are. */
function listed(first: string[], count: number): string {
  return count > first.length ? `${first.join(', ')} and ${count - first.length} more` : first.join(', ');
}

/** Refuses (exit 2) a retry naming files the ledger cannot redrive: not failed, or queued already. */
async function refuseNotRedrivable(batchId: string, files: string[]): Promise<void> {
  const refused = await withLedger((ledger) => ledger.notRedrivable(batchId, fileRefs(files)));
  if (refused.length > 0) {
    const keys = refused.map((f) => `${f.orderId}/${f.fileName}`).join(', ');
    throw new CliError(`batch ${batchId} refused retry: not failed files of this batch: ${keys}`, 2);
  }
}

/** Prints a result: the document with --json, else the sentence. */
function show(json: boolean | undefined, result: object, words: string): void {
  if (json) printJson(result);
  else process.stdout.write(`${words}\n`);
}

export function registerSignals(program: Command): void {
  program
    .command('cancel')
    .description('cancel a batch: no new file starts, files in flight are rolled back')
    .argument('<batch>', 'batch id')
    .option('--reason <text>', 'why, recorded with every rollback')
    .option('--json', 'print the result as one JSON document')
    .action(
      action(async (batchId: string, flags: { reason?: string; json?: boolean }) =>
        withClient(async (client) => {
          const r = await confirm(client, batchId, cancelUpdate, flags.reason ?? 'cancelled by operator');
          show(flags.json, r, `Batch ${batchId} is cancelled: files in flight are being rolled back (${r.state})`);
        }),
      ),
    );

  // Pause and resume: the batch id only, and the state the batch is in after.
  const stateChanges = [
    {
      name: 'pause',
      description: 'pause a batch: no new file starts; files in flight finish',
      update: pauseUpdate,
      after: ': no new file starts until resume',
    },
    { name: 'resume', description: 'resume a paused batch', update: resumeUpdate, after: '' },
  ];
  for (const { name, description, update, after } of stateChanges) {
    program
      .command(name)
      .description(description)
      .argument('<batch>', 'batch id')
      .option('--json', 'print the result as one JSON document')
      .action(
        action(async (batchId: string, flags: { json?: boolean }) =>
          withClient(async (client) => {
            const r = await confirm(client, batchId, update);
            show(flags.json, r, `Batch ${batchId} is ${r.state}${after}`);
          }),
        ),
      );
  }

  program
    .command('set-concurrency')
    .description('change how many files a running batch has in flight at once')
    .argument('<batch>', 'batch id')
    .argument(
      '<n>',
      `files in flight at once (${POLICY_BOUNDS.maxConcurrency.min} to ${POLICY_BOUNDS.maxConcurrency.max})`,
      parsePolicyValue('maxConcurrency', 'n'),
    )
    .option('--json', 'print the result as one JSON document')
    .action(
      action(async (batchId: string, n: number, flags: { json?: boolean }) =>
        withClient(async (client) => {
          const r = await confirm(client, batchId, setConcurrencyUpdate, n);
          show(flags.json, r, `Max concurrency of batch ${batchId} is ${r.maxConcurrency}`);
        }),
      ),
    );

  program
    .command('retry')
    .description('redrive the files that ended ROLLED_BACK or ROLLBACK_FAILED, each as a new interaction')
    .argument('<batch>', 'batch id')
    .option(
      '--file <order/file>',
      'only this file (ORDER/FILE; repeatable: --file A --file B); all failed files when omitted',
      (raw: string, previous: string[] = []) => [...previous, raw],
    )
    .option('--json', 'print the result as one JSON document')
    .action(
      action(async (batchId: string, flags: { file?: string[]; json?: boolean }) =>
        withClient(async (client) => {
          const bad = (flags.file ?? []).filter((f) => !FILE_KEY.test(f));
          if (bad.length) throw new CliError(`--file takes ORDER/FILE, got: ${bad.join(', ')}`, 2);
          const desc = await describeBatch(client, batchId);
          if (desc.status.name === 'RUNNING') {
            // Named files the ledger cannot redrive are refused here, before the update.
            if (flags.file?.length) await refuseNotRedrivable(batchId, flags.file);
            const r = await confirm(client, batchId, retryUpdate, flags.file?.length ? { files: flags.file } : {});
            if (r.requeuedCount === 0) throw new CliError(`batch ${batchId}: nothing to redrive (queued already)`, 2);
            show(
              flags.json,
              r,
              `Batch ${batchId} requeued ${r.requeuedCount} files: ${listed(r.requeued, r.requeuedCount)}`,
            );
            return;
          }
          const redriven = await redriveEndedBatch(client, batchId, flags.file);
          show(
            flags.json,
            { batchId, requeued: redriven.files, requeuedCount: redriven.count, redriveRun: true },
            `Batch ${batchId} had ended; started a redrive run for ${redriven.count} files: ${listed(redriven.files, redriven.count)}`,
          );
        }),
      ),
    );

  program
    .command('set-limits')
    .description("change a running batch's rate limits, or a target's within it, on every worker (0 lifts a limit)")
    .argument('<batch>', 'batch id')
    .option('--target <name>', "change this target's limits within the batch; the batch's own when omitted")
    .option('--max-bytes-per-second <n>', 'upload bytes per second', parseLimitOption('--max-bytes-per-second', true))
    .option(
      '--max-requests-per-second <n>',
      'sends and verifications per second',
      parseLimitOption('--max-requests-per-second', true),
    )
    .option('--json', 'print the result as one JSON document')
    .action(
      action(
        async (
          batchId: string,
          flags: { target?: string; maxBytesPerSecond?: number; maxRequestsPerSecond?: number; json?: boolean },
        ) => {
          if (flags.maxBytesPerSecond === undefined && flags.maxRequestsPerSecond === undefined)
            throw new CliError('give --max-bytes-per-second N or --max-requests-per-second N (0 lifts a limit)', 2);
          const change: LimitsChange = {
            ...(flags.target !== undefined ? { target: flags.target } : {}),
            ...(flags.maxBytesPerSecond !== undefined ? { maxBytesPerSecond: flags.maxBytesPerSecond } : {}),
            ...(flags.maxRequestsPerSecond !== undefined ? { maxRequestsPerSecond: flags.maxRequestsPerSecond } : {}),
          };
          return withClient(async (client) => {
            const r = await confirm(client, batchId, setLimitsUpdate, change);
            show(flags.json, r, `Batch ${batchId}: ${describeLimits(r.limits) ?? 'no limits'}`);
          });
        },
      ),
    );
}
