import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { formatDryRun, planDryRun } from '../../batch/dry-run';
import { formatInputErrors } from '../../batch/input';
import {
  InputError,
  newBatchId,
  startPreparedBatch,
  validateBatchId,
  validatePolicy,
  writeInputManifest,
} from '../../batch/start';
import { removeNormalizedManifest } from '../../source/normalized';
import { targetNamesFromEnv } from '../../config/target-names';
import { DEFAULT_TARGET } from '../../config/targets';
import { ledgerUrlFromEnv } from '../../ledger';
import { batchWorkflowId, type BatchResult } from '../../shared';
import { connectClient, temporalSettings } from '../../temporal/connection';
import { action, CliError, collectUrl, notifyOptions, parseLimitOption, policyOption, printJson } from '../common';
import { progressIntervalOption } from '../progress';
import { watchBatch } from './status';

interface StartFlags {
  manifest?: string;
  dir?: string;
  batchId?: string;
  maxConcurrency?: number;
  maxResends?: number;
  resendBackoffMs?: number;
  toleratedFailurePercent?: number;
  atomic?: boolean;
  resendRecorded?: boolean;
  outagePauseAfter?: number;
  probeIntervalMs?: number;
  localSendMaxBytes?: number;
  claimPatienceMs?: number;
  skipInvalid?: boolean;
  dryRun?: boolean;
  wait?: boolean;
  progressInterval?: number;
  json?: boolean;
  maxBytesPerSecond?: number;
  maxRequestsPerSecond?: number;
  notify?: string[];
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start a batch from a manifest (NDJSON or CSV) or a folder of <orderId>/<file>')
    .option(
      '--manifest <file>',
      'manifest: orderId, path, fileName?, sha256?, target?, contentType? (required: this or --dir)',
    )
    .option('--dir <dir>', 'folder holding one sub-folder per order (required: this or --manifest)')
    .option('--batch-id <id>', 'business id of the batch (default: time and a random suffix)')
    .option(...policyOption('maxConcurrency', 'n'))
    .option(...policyOption('maxResends', 'n'))
    .option(...policyOption('resendBackoffMs', 'ms'))
    .option(...policyOption('toleratedFailurePercent', 'p'))
    .option('--atomic', 'on failure or cancellation, also roll back the files already recorded')
    .option(
      '--resend-recorded',
      'send a file even when an earlier interaction recorded the same bytes at its target (by default such a file is RECORDED without a second upload)',
    )
    .option(...policyOption('claimPatienceMs', 'ms'))
    .option(...policyOption('outagePauseAfter', 'n'))
    .option(...policyOption('probeIntervalMs', 'ms'))
    .option(
      ...policyOption(
        'localSendMaxBytes',
        'n',
        'files up to this size are sent inside the file workflow task; larger ones by a heartbeating activity',
      ),
    )
    .option(
      '--max-bytes-per-second <n>',
      'upload bytes per second of the whole batch, across all workers (each target may have its own limit too)',
      parseLimitOption('--max-bytes-per-second'),
    )
    .option(
      '--max-requests-per-second <n>',
      'sends and verifications per second of the whole batch, across all workers',
      parseLimitOption('--max-requests-per-second'),
    )
    .option(
      '--notify <url>',
      'POST the batch events (finished, paused, resumed, threshold_exceeded) to this URL; repeatable, adds to IMAGE_SYNC_NOTIFY_URLS',
      collectUrl('--notify'),
    )
    .option('--skip-invalid', 'skip invalid manifest lines (and report them) instead of starting nothing')
    .option(
      '--dry-run',
      'validate the input and print the files and bytes per target, and how many the ledger already holds RECORDED with the same sha256; start nothing, write nothing',
    )
    .option('--wait', 'wait for the batch to end, showing progress (exit 4 when it ends other than COMPLETED)')
    .option(...progressIntervalOption('--wait'))
    .option('--json', 'print one JSON document')
    .action(
      action(async (flags: StartFlags) => {
        // Unknown targets are refused here when the targets configuration is readable; the
        // worker checks again either way.
        const targetNames = targetNamesFromEnv();
        if (!targetNames.ok)
          process.stderr.write(`image-sync: targets not checked before start: ${targetNames.reason}\n`);
        const policy = {
          maxConcurrency: flags.maxConcurrency,
          maxResends: flags.maxResends,
          resendBackoffMs: flags.resendBackoffMs,
          toleratedFailurePercent: flags.toleratedFailurePercent,
          atomic: flags.atomic ?? false,
          ...(flags.resendRecorded ? { resendRecorded: true } : {}),
          outagePauseAfter: flags.outagePauseAfter,
          probeIntervalMs: flags.probeIntervalMs,
          localSendMaxBytes: flags.localSendMaxBytes,
          claimPatienceMs: flags.claimPatienceMs,
        };
        const src = { manifest: flags.manifest, dir: flags.dir };
        const readOptions = {
          skipInvalid: flags.skipInvalid,
          targets: targetNames.ok ? targetNames.targets : undefined,
        };
        // The input is read as a stream: into the dry run's counts, or into the batch's normalised manifest.
        let dryRun: Awaited<ReturnType<typeof planDryRun>> | undefined;
        let prepared: Awaited<ReturnType<typeof writeInputManifest>> | undefined;
        const batchId = flags.batchId ?? newBatchId();
        const settings = flags.dryRun ? undefined : temporalSettings();
        try {
          validatePolicy(policy);
          validateBatchId(batchId);
          if (flags.dryRun) {
            dryRun = await planDryRun(src, {
              ...readOptions,
              defaultTarget: targetNames.ok ? targetNames.targets.defaultTarget : DEFAULT_TARGET,
              ledgerUrl: ledgerUrlFromEnv(),
            });
          } else {
            prepared = await writeInputManifest(src, { ...readOptions, batchId });
          }
        } catch (err) {
          if (!(err instanceof InputError)) throw err;
          // With --json the error document lists the invalid lines, each with its field.
          const notListed = err.errorCount - err.errors.length;
          throw new CliError(err.message, 2, {
            code: 'invalid_input',
            details: { errors: err.errors, ...(notListed > 0 ? { errorsNotListed: notListed } : {}) },
          });
        }
        const input = (dryRun?.input ?? prepared)!;
        if (input.skippedCount > 0 && !flags.json) {
          process.stderr.write(
            `Skipped ${input.skippedCount} invalid entries:\n${formatInputErrors(input.skipped, input.skippedCount)}\n`,
          );
        }
        const skippedJson = {
          skipped: input.skipped,
          ...(input.skippedCount > input.skipped.length
            ? { skippedNotListed: input.skippedCount - input.skipped.length }
            : {}),
        };
        if (dryRun) {
          const { plan } = dryRun;
          if (flags.json) printJson({ dryRun: true, batchId: flags.batchId ?? null, ...plan, ...skippedJson });
          else process.stdout.write(formatDryRun(plan, flags.batchId));
          return;
        }
        const manifest = prepared!;
        const temporal = settings!;
        let connected;
        try {
          connected = await connectClient(temporal);
        } catch (err) {
          await removeNormalizedManifest(manifest.manifestPath);
          throw err;
        }
        const { client, connection } = connected;
        try {
          let started;
          try {
            started = await startPreparedBatch(client, manifest, {
              batchId,
              taskQueue: temporal.taskQueue,
              policy,
              limits: { maxBytesPerSecond: flags.maxBytesPerSecond, maxRequestsPerSecond: flags.maxRequestsPerSecond },
              notify: notifyOptions(flags.notify),
            });
          } catch (err) {
            if (err instanceof WorkflowExecutionAlreadyStartedError) {
              throw new CliError(
                `batch ${batchId} already exists (${batchWorkflowId(batchId)}); nothing was started`,
                3,
                { code: 'already_exists' },
              );
            }
            if (err instanceof InputError) throw new CliError(err.message, 2, { code: 'invalid_input' });
            throw err;
          }
          const summary = {
            batchId: started.batchId,
            workflowId: started.handle.workflowId,
            runId: started.runId,
            files: manifest.total,
            ...skippedJson,
          };
          if (!flags.wait) {
            if (flags.json) printJson(summary);
            else
              process.stdout.write(
                `Started batch ${started.batchId}: ${manifest.total} files (workflow ${started.handle.workflowId})\n`,
              );
            return;
          }
          if (!flags.json) process.stdout.write(`Started batch ${started.batchId}: ${manifest.total} files\n`);
          const result: BatchResult = await watchBatch(client, started.batchId, {
            quiet: flags.json,
            progressIntervalSeconds: flags.progressInterval,
          });
          if (flags.json) printJson({ ...summary, result });
          else process.stdout.write(formatResult(result));
          if (result.state !== 'COMPLETED') process.exitCode = 4;
        } finally {
          await connection.close();
        }
      }),
    );
}

export function formatResult(r: BatchResult): string {
  const lines = [
    `Batch ${r.batchId} ended ${r.state}: ${r.recorded} recorded, ${r.rolledBack} rolled back, ${r.rollbackFailed} rollback failed, ${r.cancelled} cancelled, ${r.resends} resends (of ${r.total} files)`,
  ];
  for (const f of r.failures.slice(0, 20)) lines.push(`  ${f.orderId}/${f.fileName}: ${f.state}: ${f.reason}`);
  if (r.failures.length > 20) lines.push(`  ... and ${r.failures.length - 20} more (image-sync report ${r.batchId})`);
  return `${lines.join('\n')}\n`;
}
