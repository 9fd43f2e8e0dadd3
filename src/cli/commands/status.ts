import type { Command } from 'commander';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { errorText } from '../../errors';
import {
  batchWorkflowId,
  failuresQuery,
  progressQuery,
  SA_FILES_FAILED,
  SA_FILES_TOTAL,
  SA_STATE,
  type BatchResult,
  type FailureInfo,
  type Progress,
} from '../../shared';
import { connectClient } from '../../temporal/connection';
import { action, CliError, ledgerName, printJson, withLedgerToRead } from '../common';
import { doneOf, plainProgressLine, progressDisplay, progressIntervalOption } from '../progress';
import { describeLimits } from '../../workflows/batch-limits';
import { describeBatch } from './batch-handle';

export { doneOf };

/** One line with a text bar: done / total, files per second, ETA, failures (the `status` view). */
export function progressLine(p: Progress, filesPerSecond: number, width = 30): string {
  const done = doneOf(p);
  const share = p.total > 0 ? done / p.total : 1;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${plainProgressLine(p, filesPerSecond)}`;
}

/**
 * Follows a batch until it ends, showing progress on stderr (see ../progress.ts: a bar on a
 * terminal, else a plain line every `progressIntervalSeconds`), and returns its result.
 * `intervalMs` is how often progress is asked of the batch.
 */
export async function watchBatch(
  client: Client,
  batchId: string,
  opts: { quiet?: boolean; intervalMs?: number; progressIntervalSeconds?: number } = {},
): Promise<BatchResult> {
  const handle = client.workflow.getHandle(batchWorkflowId(batchId));
  const display = progressDisplay({ quiet: opts.quiet, intervalSeconds: opts.progressIntervalSeconds });
  const samples: { at: number; done: number }[] = [];
  let finished = false;
  const resultPromise = handle.result().finally(() => {
    finished = true;
  });
  resultPromise.catch(() => undefined);
  while (!finished) {
    try {
      const p = await handle.query(progressQuery);
      samples.push({ at: Date.now(), done: doneOf(p) });
      while (samples.length > 1 && samples[0]!.at < Date.now() - 10_000) samples.shift();
      const first = samples[0]!;
      const last = samples[samples.length - 1]!;
      const rate = last.at > first.at ? ((last.done - first.done) * 1000) / (last.at - first.at) : 0;
      display.update(p, rate);
    } catch {
      // Between runs (continue-as-new) or just ended: the next poll or the result tells.
    }
    await Promise.race([
      resultPromise.catch(() => undefined),
      new Promise((r) => setTimeout(r, opts.intervalMs ?? 1_000)),
    ]);
  }
  display.stop();
  try {
    return await resultPromise;
  } catch (err) {
    if (err instanceof WorkflowFailedError) return resultAfterFailure(client, batchId, err);
    throw err;
  }
}

/** A batch cancelled through Temporal ends without a result value: rebuild it from its queries. */
async function resultAfterFailure(client: Client, batchId: string, err: WorkflowFailedError): Promise<BatchResult> {
  const handle = client.workflow.getHandle(batchWorkflowId(batchId));
  const desc = await handle.describe();
  const state = desc.typedSearchAttributes.get(SA_STATE);
  let p: Progress | undefined;
  let failures: FailureInfo[] = [];
  try {
    p = await handle.query(progressQuery);
    failures = await handle.query(failuresQuery);
  } catch {
    p = undefined;
  }
  if (!p) throw new Error(`batch ${batchId} ended ${desc.status.name}: ${err.cause?.message ?? err.message}`);
  return {
    batchId,
    state: (state as BatchResult['state']) ?? 'FAILED',
    total: p.total,
    recorded: p.recorded,
    rolledBack: p.rolledBack,
    rollbackFailed: p.rollbackFailed,
    cancelled: p.cancelled,
    resends: p.resends,
    failures,
    ledger: { recorded: p.recorded, rolledBack: p.rolledBack, failed: p.rolledBack + p.rollbackFailed },
  };
}

/** Failures `status` lists before "and N more". */
const SHOWN_FAILURES = 20;
/** The window of the recent rate `status` reads from the ledger. */
const RATE_WINDOW_MS = 60_000;

export interface RecentRate {
  filesPerSecond: number;
  /** Files that ended within the window, and the window's length in seconds. */
  files: number;
  seconds: number;
  ledger: string;
  /** Why the ledger could not be read, when it could not. */
  unread?: string;
}

/**
 * Files per second over the last minute (or since the batch began, when that is shorter), from
 * the interactions the ledger saw end. Best effort: a ledger that cannot be read says why.
 */
async function recentRate(batchId: string): Promise<RecentRate> {
  const ledger = ledgerName();
  try {
    return await withLedgerToRead(async (l) => {
      const batch = await l.getBatch(batchId);
      const now = Date.now();
      const began = batch ? Date.parse(batch.created_at) : now - RATE_WINDOW_MS;
      const from = Math.max(now - RATE_WINDOW_MS, began);
      const seconds = Math.max(1, (now - from) / 1000);
      const files = await l.filesEndedSince(batchId, new Date(from).toISOString());
      return { filesPerSecond: files / seconds, files, seconds: Math.round(seconds), ledger };
    });
  } catch (err) {
    return { filesPerSecond: 0, files: 0, seconds: 0, ledger, unread: errorText(err) };
  }
}

function rateWords(r: RecentRate): string {
  if (r.unread) return `rate: unknown (${r.unread})`;
  return `rate: ${r.files} files ended in the last ${r.seconds}s (${r.ledger})`;
}

/** The limits in force: files in flight at most, and the rate limits of the batch and its targets. */
export function limitsWords(p: Progress): string {
  const concurrency =
    p.maxConcurrency !== undefined ? `max concurrency ${p.maxConcurrency}` : 'max concurrency unknown';
  return `${concurrency}; ${describeLimits(p.limits) ?? 'limits: no rate limits'}`;
}

/** Why a paused batch is paused, and what ends it. */
function pauseWords(batchId: string, p: Progress): string | undefined {
  if (!p.paused) return undefined;
  if (p.pause?.by === 'outage')
    return `paused by itself since ${p.pause.since}: target ${p.pause.target} is not answering (last error: ${p.pause.lastError}); it resumes when a probe answers, or now with: image-sync resume ${batchId}`;
  return `paused by an operator; resume with: image-sync resume ${batchId}`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show how far a batch is: done / total, the rate over the last minute and ETA, failures, resends, state, why it is paused',
    )
    .argument('<batch>', 'batch id')
    .option('--watch', 'follow the batch until it ends (exit 4 when it ends other than COMPLETED)')
    .option(...progressIntervalOption('--watch'))
    .option('--json', 'print one JSON document')
    .action(
      action(async (batchId: string, flags: { watch?: boolean; json?: boolean; progressInterval?: number }) => {
        const { client, connection } = await connectClient();
        try {
          const desc = await describeBatch(client, batchId);
          if (flags.watch) {
            // An ended batch answers at once, in the same layout as one followed to its end.
            if (desc.status.name === 'RUNNING') {
              process.stderr.write(`Following batch ${batchId} to its end; Ctrl-C stops following, not the batch.\n`);
            }
            const result = await watchBatch(client, batchId, {
              quiet: flags.json,
              progressIntervalSeconds: flags.progressInterval,
            });
            if (flags.json) printJson(result);
            else process.stdout.write(`Batch ${batchId} ended ${result.state}\n`);
            if (result.state !== 'COMPLETED') process.exitCode = 4;
            return;
          }
          const handle = client.workflow.getHandle(batchWorkflowId(batchId));
          let progress: Progress | undefined;
          let failures: FailureInfo[] = [];
          try {
            progress = await handle.query(progressQuery);
            failures = await handle.query(failuresQuery);
          } catch (err) {
            if (desc.status.name === 'RUNNING')
              throw new CliError(
                `batch ${batchId} did not answer its progress query (is a worker serving task queue ${desc.taskQueue}?): ${errorText(err)}`,
                1,
                { code: 'no_worker' },
              );
          }
          const sa = {
            state: desc.typedSearchAttributes.get(SA_STATE),
            total: desc.typedSearchAttributes.get(SA_FILES_TOTAL),
            failed: desc.typedSearchAttributes.get(SA_FILES_FAILED),
          };
          const rate = progress ? await recentRate(batchId) : undefined;
          if (flags.json) {
            printJson({ batchId, workflowStatus: desc.status.name, progress, failures, searchAttributes: sa, rate });
            return;
          }
          const out = (line: string) => process.stdout.write(`${line}\n`);
          out(`Batch ${batchId}: workflow ${desc.status.name}, state ${progress?.state ?? sa.state}`);
          if (progress) {
            out(progressLine(progress, rate?.filesPerSecond ?? 0));
            out(`  ${rate ? rateWords(rate) : 'rate: unknown'}`);
            out(`  ${limitsWords(progress)}`);
            const why = pauseWords(batchId, progress);
            if (why) out(`  ${why}`);
          }
          for (const f of failures.slice(0, SHOWN_FAILURES))
            out(`  ${f.orderId}/${f.fileName}: ${f.state}: ${f.reason}`);
          const failed = progress ? progress.rolledBack + progress.rollbackFailed : failures.length;
          if (failed > Math.min(failures.length, SHOWN_FAILURES))
            out(`  ... and ${failed - Math.min(failures.length, SHOWN_FAILURES)} more: image-sync report ${batchId}`);
        } finally {
          await connection.close();
        }
      }),
    );
}
