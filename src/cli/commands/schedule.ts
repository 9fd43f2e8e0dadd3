import { statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleHandle,
} from '@temporalio/client';
import { DEFAULT_STATE_DIR, InputError, validatePolicy } from '../../batch/start';
import { SCHEDULED_WORKFLOW_TYPE, type ScheduledSyncInput } from '../../shared';
import { temporalSettings } from '../../temporal/connection';
import type { scheduledSync } from '../../workflows/scheduled-sync';
import {
  action,
  CliError,
  collectUrl,
  notifyOptions,
  parseIntOption,
  parseLimitOption,
  policyOption,
  printJson,
  withClient,
} from '../common';
import {
  reconcileScheduleWorkflowId,
  SCHEDULED_RECONCILE_WORKFLOW_TYPE,
  type ScheduledReconcileInput,
} from '../../consistency/scheduled-types';
import type { scheduledReconcile } from '../../workflows/scheduled-reconcile';

const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$/;
const INTERVAL = /^(\d+)(s|m|h|d)$/;

export function parseInterval(raw: string): string {
  const m = INTERVAL.exec(raw);
  if (!m) throw new CliError(`--every takes a number and a unit, like 30s, 15m, 2h or 1d; got "${raw}"`, 2);
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds < 10) throw new CliError('--every must be at least 10s', 2);
  return raw;
}

interface CreateFlags {
  dir?: string;
  reconcile?: string;
  every: string;
  id?: string;
  maxConcurrency?: number;
  maxResends?: number;
  settleMs: number;
  json?: boolean;
  maxBytesPerSecond?: number;
  notify?: string[];
}

export function registerSchedule(program: Command): void {
  const schedule = program
    .command('schedule')
    .description(
      'sync a folder regularly, on Temporal Schedules: each run sends the files no earlier run recorded; ' +
        'or reconcile a batch (or the batches of a folder) regularly',
    );

  schedule
    .command('create')
    .description('create a schedule that syncs the new files of a folder, or reconciles, every interval')
    .option(
      '--dir <dir>',
      'folder holding one sub-folder per order: sync its new files (required: this or --reconcile)',
    )
    .option(
      '--reconcile <batch-or-dir>',
      'instead of syncing, reconcile this batch, or every batch whose files came from this folder (required: this or --dir)',
    )
    .requiredOption('--every <interval>', 'how often: 30s, 15m, 2h, 1d')
    .option('--id <id>', 'schedule id (default: image-sync-<folder name>)')
    .option(...policyOption('maxConcurrency', 'n', 'files in flight at once in each run'))
    .option(...policyOption('maxResends', 'n'))
    .option(
      '--settle-ms <ms>',
      'leave files modified this recently for the next run (default 10000)',
      parseIntOption('--settle-ms', 0, 86_400_000),
      10_000,
    )
    .option(
      '--max-bytes-per-second <n>',
      'upload bytes per second of each run, across all workers',
      parseLimitOption('--max-bytes-per-second'),
    )
    .option(
      '--notify <url>',
      "POST each run's events (batch.*, or reconcile.drift) to this URL; repeatable, adds to IMAGE_SYNC_NOTIFY_URLS",
      collectUrl('--notify'),
    )
    .option('--json', 'print one JSON document')
    .action(
      action(async (flags: CreateFlags) => {
        if (!flags.dir === !flags.reconcile)
          throw new CliError('give exactly one of --dir DIR or --reconcile BATCH_OR_DIR', 2);
        if (flags.reconcile !== undefined) return createReconcileSchedule(flags.reconcile, flags);
        const every = parseInterval(flags.every);
        const dir = path.resolve(flags.dir!);
        const id = scheduleId(flags.id, `image-sync-${path.basename(dir)}`);
        let policy;
        try {
          policy = validatePolicy({ maxConcurrency: flags.maxConcurrency, maxResends: flags.maxResends });
        } catch (err) {
          throw err instanceof InputError ? new CliError(err.message, 2) : err;
        }
        const input: ScheduledSyncInput = {
          scheduleId: id,
          dir,
          stateDir: path.resolve(DEFAULT_STATE_DIR),
          policy,
          settleMs: flags.settleMs,
        };
        if (flags.maxBytesPerSecond) input.limits = { maxBytesPerSecond: flags.maxBytesPerSecond };
        const notify = notifyOptions(flags.notify);
        if (notify) input.notify = notify;
        await withClient(async (client) => {
          await createSchedule(client, id, every, {
            workflowType: SCHEDULED_WORKFLOW_TYPE,
            workflowId: `sync-schedule/${id}`,
            args: [input] as Parameters<typeof scheduledSync>,
            staticSummary: `image-sync schedule ${id}: new files of ${dir}`,
            memo: { dir },
          });
          if (flags.json) printJson({ scheduleId: id, every, dir });
          else process.stdout.write(`Created schedule ${id}: every ${every}, new files of ${dir}\n`);
        });
      }),
    );

  schedule
    .command('list')
    .description("list image-sync's schedules")
    .option('--json', 'print one JSON document')
    .action(
      action(async (flags: { json?: boolean }) =>
        withClient(async (client) => {
          const rows: { scheduleId: string; dir: unknown; paused: boolean; nextRun?: string; lastRun?: string }[] = [];
          for await (const s of client.schedule.list()) {
            if (
              s.action?.type !== 'startWorkflow' ||
              (s.action.workflowType !== SCHEDULED_WORKFLOW_TYPE &&
                s.action.workflowType !== SCHEDULED_RECONCILE_WORKFLOW_TYPE)
            )
              continue;
            rows.push({
              scheduleId: s.scheduleId,
              dir: s.memo?.dir ?? `reconcile ${String(s.memo?.reconcile)}`,
              paused: s.state.paused,
              nextRun: s.info.nextActionTimes[0]?.toISOString(),
              lastRun: s.info.recentActions.at(-1)?.takenAt.toISOString(),
            });
          }
          if (flags.json) printJson(rows);
          else if (rows.length === 0) process.stdout.write('No schedules.\n');
          else
            for (const r of rows) {
              process.stdout.write(
                `${r.scheduleId}  ${String(r.dir)}  next ${r.nextRun ?? '-'}  last ${r.lastRun ?? '-'}${r.paused ? '  (paused)' : ''}\n`,
              );
            }
        }),
      ),
    );

  schedule
    .command('trigger')
    .description('run a schedule now, once')
    .argument('<id>', 'schedule id')
    .action(
      action((id: string) =>
        onSchedule(id, (handle) => handle.trigger(ScheduleOverlapPolicy.SKIP), `Triggered schedule ${id}`),
      ),
    );

  schedule
    .command('delete')
    .description('delete a schedule (batches it started go on)')
    .argument('<id>', 'schedule id')
    .action(action((id: string) => onSchedule(id, (handle) => handle.delete(), `Deleted schedule ${id}`)));
}

/**
 * A schedule whose runs reconcile a batch, or every batch whose sources lie under a folder (an
 * existing folder is read as one; anything else as a batch id). Drift found is kept in the
 * ledger and shown in each run's details.
 */
async function createReconcileSchedule(target: string, flags: CreateFlags): Promise<void> {
  const every = parseInterval(flags.every);
  const isDir = statSync(target, { throwIfNoEntry: false })?.isDirectory() ?? false;
  const name = isDir ? path.basename(path.resolve(target)) : target;
  const id = scheduleId(flags.id, `image-sync-reconcile-${name}`);
  if (!isDir && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(target))
    throw new CliError(`--reconcile: "${target}" is neither a folder nor a batch id`, 2);
  const notify = notifyOptions(flags.notify);
  const input: ScheduledReconcileInput = {
    ...(isDir ? { scheduleId: id, dir: path.resolve(target) } : { scheduleId: id, batchId: target }),
    ...(notify ? { notify } : {}),
  };
  const what = isDir ? `the batches of ${path.resolve(target)}` : `batch ${target}`;
  await withClient(async (client) => {
    await createSchedule(client, id, every, {
      workflowType: SCHEDULED_RECONCILE_WORKFLOW_TYPE,
      workflowId: reconcileScheduleWorkflowId(id),
      args: [input] as Parameters<typeof scheduledReconcile>,
      staticSummary: `image-sync reconcile schedule ${id}: ${what}`,
      memo: { reconcile: isDir ? path.resolve(target) : target },
    });
    if (flags.json)
      printJson({ scheduleId: id, every, reconcile: 'batchId' in input ? { batchId: target } : { dir: input.dir } });
    else process.stdout.write(`Created schedule ${id}: every ${every}, reconcile ${what}\n`);
  });
}

/** The schedule id given, or one made from `fallback`; exit code 2 when it breaks the id rules. */
function scheduleId(given: string | undefined, fallback: string): string {
  const id = given ?? fallback.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60);
  if (!SCHEDULE_ID.test(id)) throw new CliError(`schedule id "${id}" must be 1-60 letters, digits, '.', '_' or '-'`, 2);
  return id;
}

/** Creates a schedule that starts one workflow every interval, skipping a run while the last goes on. */
async function createSchedule(
  client: Client,
  id: string,
  every: string,
  run: {
    workflowType: string;
    workflowId: string;
    args: unknown[];
    staticSummary: string;
    memo: Record<string, unknown>;
  },
): Promise<void> {
  const { memo, ...workflow } = run;
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { intervals: [{ every: every as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
      action: { type: 'startWorkflow', taskQueue: temporalSettings().taskQueue, ...workflow },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo,
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning)
      throw new CliError(`schedule ${id} already exists`, 3, { code: 'already_exists' });
    throw err;
  }
}

/** Runs an operation on an existing schedule and says it is done; exit code 3 when there is none. */
async function onSchedule(id: string, op: (handle: ScheduleHandle) => Promise<unknown>, done: string): Promise<void> {
  await withClient(async (client) => {
    try {
      await op(client.schedule.getHandle(id));
    } catch (err) {
      if (err instanceof ScheduleNotFoundError)
        throw new CliError(`no schedule ${id}`, 3, { code: 'unknown_schedule' });
      throw err;
    }
    process.stdout.write(`${done}\n`);
  });
}
