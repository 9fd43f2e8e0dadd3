/**
 * The operator actions on a running batch, as confirmed Workflow Updates: the batch refuses a
 * request that cannot apply (exit 2, with its reason) before it enters history, and answers
 * with a result, printed in words or, with --json, as one document. A worker must run the batch
 * to confirm: each action waits at most --timeout seconds, then says no worker answered (exit
 * EXIT_NOT_CONFIRMED) and what to do. The signals of the same names stay for the Temporal CLI and
 * Web UI, and for `--signal`, which needs no worker to be recorded.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import {
  batchRetrySignal,
  batchWorkflowId,
  cancelSignal,
  cancelUpdate,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  retryUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setLimitsUpdate,
  type LimitsChange,
} from '../../shared';
import { describeLimits } from '../../workflows/batch-limits';
import { POLICY_BOUNDS } from '../../config/policy-bounds';
import { fileRefs } from '../../activities/redrive';
import { temporalSettings } from '../../temporal/connection';
import { action, CliError, parseLimitOption, parsePolicyValue, printJson, withClient, withLedger } from '../common';
import { EXIT_NOT_CONFIRMED } from '../exit-codes';
import { describeBatch, runningBatch } from './batch-handle';
import { redriveEndedBatch } from './redrive';

const FILE_KEY = /^[^/]+\/[^/]+$/;

/** How long an operator action waits for a worker to confirm it, unless --timeout says otherwise. */
export const DEFAULT_CONFIRM_TIMEOUT_S = 30;

interface ActionFlags {
  json?: boolean;
  /** Seconds to wait for the batch's confirmation. */
  timeout: number;
  /** Send the signal instead: recorded by Temporal at once, applied when a worker runs the batch. */
  signal?: boolean;
}

function parseTimeout(raw: string): number {
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new InvalidArgumentError('--timeout must be 1 to 3600 seconds');
  return n;
}

/** The options every operator action takes: --timeout, --signal (when it has a signal form) and --json. */
function actionOptions(command: Command, withSignal: boolean): Command {
  command.addOption(
    new Option(
      '--timeout <s>',
      `seconds to wait for a worker to confirm the action; past them, exit ${EXIT_NOT_CONFIRMED} naming the task queue no worker answered on`,
    )
      .argParser(parseTimeout)
      .default(DEFAULT_CONFIRM_TIMEOUT_S),
  );
  if (withSignal)
    command.option(
      '--signal',
      'send the signal of the same name instead, when no worker runs: Temporal records it at once; the batch applies it, unchecked and unconfirmed, when a worker runs it',
    );
  return command.option('--json', 'print the result as one JSON document');
}

/** What to do when an action was not confirmed: start a worker, or (`signalCommand`) send the signal. */
function fallback(taskQueue: string, batchId: string, signalCommand?: string): string {
  const worker = `start a worker on that task queue (IMAGE_SYNC_TASK_QUEUE=${taskQueue} image-sync worker) and run the command again`;
  return signalCommand
    ? `What to do: ${worker}, or send the signal, recorded at once and applied when a worker runs the batch: image-sync ${signalCommand} --signal (check with image-sync status ${batchId}).`
    : `What to do: ${worker} (this action has no signal form).`;
}

/**
 * Sends one update to a running batch and waits at most `timeoutS` seconds for its result. A
 * refusal becomes exit 2 with the batch's reason; no answer in time, EXIT_NOT_CONFIRMED with what
 * happened and what to do.
 */
async function confirm<Ret, Args extends unknown[]>(
  client: Client,
  batchId: string,
  opts: { timeoutS: number; signalCommand?: string },
  update: UpdateDefinition<Ret, Args>,
  ...args: Args
): Promise<Ret> {
  const desc = await runningBatch(client, batchId);
  try {
    // One call shape for updates with and without arguments.
    const def = update as unknown as UpdateDefinition<Ret, [unknown]>;
    return await client.withDeadline(Date.now() + opts.timeoutS * 1000, () =>
      client.workflow.getHandle(batchWorkflowId(batchId)).executeUpdate(def, { args: args as unknown as [unknown] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : err.message;
      throw new CliError(`batch ${batchId} refused ${update.name}: ${why}`, 2, { code: 'refused' });
    }
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      const { namespace, connectionOptions } = temporalSettings();
      throw new CliError(
        `${update.name} of batch ${batchId} was not confirmed: no worker answered within ${opts.timeoutS}s on task queue ${desc.taskQueue} (namespace ${namespace} at ${connectionOptions.address}). It is not in the batch's history; a worker that picks up the batch soon may still apply it. ${fallback(desc.taskQueue, batchId, opts.signalCommand)}`,
        EXIT_NOT_CONFIRMED,
        {
          code: 'not_confirmed',
          details: { action: update.name, taskQueue: desc.taskQueue, timeoutSeconds: opts.timeoutS },
        },
      );
    }
    throw err;
  }
}

/** Sends the signal form of an action to a running batch: recorded by Temporal at once, not confirmed. */
async function sendSignal<Args extends unknown[]>(
  client: Client,
  batchId: string,
  json: boolean | undefined,
  signal: SignalDefinition<Args>,
  ...args: Args
): Promise<void> {
  await runningBatch(client, batchId);
  await client.workflow.getHandle(batchWorkflowId(batchId)).signal(signal, ...args);
  show(
    json,
    { batchId, signal: signal.name, confirmed: false },
    `Sent signal ${signal.name} to batch ${batchId}: recorded, not confirmed; the batch applies it when a worker runs it (image-sync status ${batchId})`,
  );
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
    throw new CliError(`batch ${batchId} refused retry: not failed files of this batch: ${keys}`, 2, {
      code: 'refused',
    });
  }
}

/** Prints a result: the document with --json, else the sentence. */
function show(json: boolean | undefined, result: object, words: string): void {
  if (json) printJson(result);
  else process.stdout.write(`${words}\n`);
}

export function registerSignals(program: Command): void {
  actionOptions(
    program
      .command('cancel')
      .description('cancel a batch: no new file starts, files in flight are rolled back')
      .argument('<batch>', 'batch id')
      .option('--reason <text>', 'why, recorded with every rollback'),
    true,
  ).action(
    action(async (batchId: string, flags: ActionFlags & { reason?: string }) =>
      withClient(async (client) => {
        const reason = flags.reason ?? 'cancelled by operator';
        if (flags.signal) return sendSignal(client, batchId, flags.json, cancelSignal, reason);
        const again = `cancel ${batchId}${flags.reason !== undefined ? ` --reason ${JSON.stringify(flags.reason)}` : ''}`;
        const r = await confirm(
          client,
          batchId,
          { timeoutS: flags.timeout, signalCommand: again },
          cancelUpdate,
          reason,
        );
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
      signal: pauseSignal,
      after: ': no new file starts until resume',
    },
    { name: 'resume', description: 'resume a paused batch', update: resumeUpdate, signal: resumeSignal, after: '' },
  ];
  for (const { name, description, update, signal, after } of stateChanges) {
    actionOptions(program.command(name).description(description).argument('<batch>', 'batch id'), true).action(
      action(async (batchId: string, flags: ActionFlags) =>
        withClient(async (client) => {
          if (flags.signal) return sendSignal(client, batchId, flags.json, signal);
          const r = await confirm(
            client,
            batchId,
            { timeoutS: flags.timeout, signalCommand: `${name} ${batchId}` },
            update,
          );
          show(flags.json, r, `Batch ${batchId} is ${r.state}${after}`);
        }),
      ),
    );
  }

  actionOptions(
    program
      .command('set-concurrency')
      .description('change how many files a running batch has in flight at once')
      .argument('<batch>', 'batch id')
      .argument(
        '<n>',
        `files in flight at once (${POLICY_BOUNDS.maxConcurrency.min} to ${POLICY_BOUNDS.maxConcurrency.max})`,
        parsePolicyValue('maxConcurrency', 'n'),
      ),
    true,
  ).action(
    action(async (batchId: string, n: number, flags: ActionFlags) =>
      withClient(async (client) => {
        if (flags.signal) return sendSignal(client, batchId, flags.json, setConcurrencySignal, n);
        const opts = { timeoutS: flags.timeout, signalCommand: `set-concurrency ${batchId} ${n}` };
        const r = await confirm(client, batchId, opts, setConcurrencyUpdate, n);
        show(flags.json, r, `Max concurrency of batch ${batchId} is ${r.maxConcurrency}`);
      }),
    ),
  );

  actionOptions(
    program
      .command('retry')
      .description('redrive the files that ended ROLLED_BACK or ROLLBACK_FAILED, each as a new interaction')
      .argument('<batch>', 'batch id')
      .option(
        '--file <order/file>',
        'only this file (ORDER/FILE; repeatable: --file A --file B); all failed files when omitted',
        (raw: string, previous: string[] = []) => [...previous, raw],
      ),
    true,
  ).action(
    action(async (batchId: string, flags: ActionFlags & { file?: string[] }) =>
      withClient(async (client) => {
        const bad = (flags.file ?? []).filter((f) => !FILE_KEY.test(f));
        if (bad.length) throw new CliError(`--file takes ORDER/FILE, got: ${bad.join(', ')}`, 2);
        const desc = await describeBatch(client, batchId);
        if (desc.status.name === 'RUNNING') {
          // Named files the ledger cannot redrive are refused here, before the update.
          if (flags.file?.length) await refuseNotRedrivable(batchId, flags.file);
          const args = flags.file?.length ? { files: flags.file } : {};
          if (flags.signal) return sendSignal(client, batchId, flags.json, batchRetrySignal, args);
          const again = `retry ${batchId}${(flags.file ?? []).map((f) => ` --file ${f}`).join('')}`;
          const r = await confirm(
            client,
            batchId,
            { timeoutS: flags.timeout, signalCommand: again },
            retryUpdate,
            args,
          );
          if (r.requeuedCount === 0)
            throw new CliError(`batch ${batchId}: nothing to redrive (queued already)`, 2, { code: 'refused' });
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

  actionOptions(
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
      ),
    false,
  ).action(
    action(
      async (
        batchId: string,
        flags: ActionFlags & { target?: string; maxBytesPerSecond?: number; maxRequestsPerSecond?: number },
      ) => {
        if (flags.maxBytesPerSecond === undefined && flags.maxRequestsPerSecond === undefined)
          throw new CliError('give --max-bytes-per-second N or --max-requests-per-second N (0 lifts a limit)', 2);
        const change: LimitsChange = {
          ...(flags.target !== undefined ? { target: flags.target } : {}),
          ...(flags.maxBytesPerSecond !== undefined ? { maxBytesPerSecond: flags.maxBytesPerSecond } : {}),
          ...(flags.maxRequestsPerSecond !== undefined ? { maxRequestsPerSecond: flags.maxRequestsPerSecond } : {}),
        };
        return withClient(async (client) => {
          const r = await confirm(client, batchId, { timeoutS: flags.timeout }, setLimitsUpdate, change);
          show(flags.json, r, `Batch ${batchId}: ${describeLimits(r.limits) ?? 'no limits'}`);
        });
      },
    ),
  );
}
