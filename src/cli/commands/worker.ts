import type { Command } from 'commander';
import type { LogLevel } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { appEnv } from '../../config/env';
import { createTargets, loadTargetsConfig, type Targets } from '../../config/targets';
import { errorText } from '../../errors';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import type { Ledger } from '../../ledger/port';
import { describeLedgerLocation, parseLedgerUrl } from '../../ledger/url';
import { setUpWorkerObservability, type WorkerObservability } from '../../observability';
import { defaultLogFormat, type LogFormat } from '../../observability/logger';
import { temporalSettings } from '../../temporal/connection';
import { createSyncWorker } from '../../worker';
import { parseIntOption } from '../common';
import {
  exitCodeOf,
  serviceLog,
  Startup,
  StartupAborted,
  StartupConfigError,
  untilSettledOrLedgerLost,
  type ServiceLog,
} from '../service';

export interface WorkerFlags {
  logLevel?: LogLevel;
  maxActivities?: number;
  maxWorkflowTasks?: number;
  metricsPort?: number;
}

/** Logs and metrics as the production settings say (IMAGE_SYNC_LOG_FORMAT, IMAGE_SYNC_METRICS_PORT). */
function workerObservability(flags: WorkerFlags, format: LogFormat): Promise<WorkerObservability> {
  const env = appEnv();
  return setUpWorkerObservability({
    level: flags.logLevel ?? env.IMAGE_SYNC_LOG_LEVEL,
    format,
    metricsPort: flags.metricsPort ?? env.IMAGE_SYNC_METRICS_PORT,
  });
}

/** The log format of this process: IMAGE_SYNC_LOG_FORMAT, else by whether stderr is a terminal. */
export function processLogFormat(): LogFormat {
  return appEnv().IMAGE_SYNC_LOG_FORMAT ?? defaultLogFormat();
}

/** Exit code of a worker stopped at once by a second signal: 128 + the signal's number. */
export const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** How long past the grace period a stopping worker may take before the process ends anyway. */
export const FORCE_AFTER_GRACE_MS = 15_000;

/**
 * Graceful stop on SIGTERM or SIGINT. The first signal resolves `requested`: the worker then
 * stops polling for new tasks and lets the activities and workflow tasks in flight (sends,
 * verifications, rollbacks, ledger writes) finish within the grace period given to the worker
 * (`graceMs`), and exits 0. Anything still running after `graceMs` is cancelled by the SDK, and
 * its attempt is retried by whichever worker polls next; a worker not stopped
 * {@link FORCE_AFTER_GRACE_MS} after that ends with exit code 1. A second signal ends the
 * process at once with 128 + the signal's number (130 SIGINT, 143 SIGTERM).
 *
 * Installed before anything else of the worker, so a signal during start-up stops it too.
 */
export function stopGracefullyOnSignals(
  graceMs: number,
  say: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): { requested: Promise<NodeJS.Signals>; remove: () => void } {
  let stopping = false;
  let resolve!: (signal: NodeJS.Signals) => void;
  const requested = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      const code = SIGNAL_EXIT_CODES[signal] ?? 1;
      say(`Worker: second ${signal}, stopping at once (exit code ${code}); work in flight is retried elsewhere`);
      process.exit(code);
    }
    stopping = true;
    say(
      `Worker: ${signal}, stopping: no new tasks; work in flight may finish within ${graceMs} ms (a second signal stops at once)`,
    );
    resolve(signal);
    // Work still running after the grace is cancelled by the SDK; should anything ignore that,
    // the process still ends, later.
    setTimeout(() => {
      say(`Worker: not stopped ${FORCE_AFTER_GRACE_MS} ms after the grace period, stopping at once (exit code 1)`);
      process.exit(1);
    }, graceMs + FORCE_AFTER_GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested,
    remove: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Runs a worker until stopped; shared by `worker` and `demo`. Without `until`, the worker stops
 * gracefully on SIGTERM or SIGINT (see {@link stopGracefullyOnSignals}), at any point of its
 * start-up too; with it, it stops when `until` settles, with the same grace. The start-up
 * retries the ledger and Temporal until IMAGE_SYNC_STARTUP_TIMEOUT_MS (see ../service.ts).
 */
export async function runWorker(flags: WorkerFlags = {}, until?: Promise<unknown>): Promise<void> {
  const env = appEnv();
  const log = serviceLog(processLogFormat());
  const say = (line: string) => log.line('info', line);
  const graceMs = env.IMAGE_SYNC_SHUTDOWN_GRACE_MS;
  const startup = new Startup(env.IMAGE_SYNC_STARTUP_TIMEOUT_MS, log);
  const signals = until ? undefined : stopGracefullyOnSignals(graceMs, say);
  // From here on a stop signal is handled: say so, for whoever supervises the process.
  if (signals) say('Worker starting: stop signals are handled from now on');
  const stopWhen = until ?? signals!.requested;
  void stopWhen.then(
    () => startup.stop('stop requested'),
    () => startup.stop('stop requested'),
  );
  try {
    await runWorkerUntil(flags, stopWhen, graceMs, startup, log);
  } catch (err) {
    if (err instanceof StartupAborted) {
      say('Worker stopped');
      return;
    }
    throw err;
  } finally {
    signals?.remove();
  }
}

/** The targets, or the configuration error (exit 2) that says why there are none. */
function workerTargets(): Targets {
  try {
    return createTargets(loadTargetsConfig());
  } catch (err) {
    throw new StartupConfigError(errorText(err));
  }
}

async function runWorkerUntil(
  flags: WorkerFlags,
  until: Promise<unknown>,
  graceMs: number,
  startup: Startup,
  log: ServiceLog,
): Promise<void> {
  const settings = temporalSettings();
  // The targets first: a bad targets file ends the worker before anything is opened.
  const targets = workerTargets();
  const cleanups: (() => Promise<void>)[] = [() => targets.close()];
  const observability = await workerObservability(flags, log.format);
  cleanups.unshift(() => observability.close());
  let worker: Worker | undefined;
  try {
    await serveObservability(observability, () =>
      worker && startup.status === 'serving'
        ? worker.getState() === 'RUNNING'
          ? { ok: true, status: 'polling' }
          : { ok: false, status: 'not polling' }
        : { ok: false, status: startup.status },
    );
    const ledgerUrl = ledgerUrlFromEnv();
    const ledger = observability.wrapLedger(
      await startup.reach(
        `the ledger (${describeLedgerLocation(parseLedgerUrl(ledgerUrl))})`,
        () => openLedger(ledgerUrl),
        {
          dispose: (l) => l.close(),
        },
      ),
    );
    cleanups.unshift(() => ledger.close());
    const address = settings.connectionOptions.address;
    const connection = await startup.reach(
      `Temporal at ${address}`,
      () => NativeConnection.connect(settings.connectionOptions),
      {
        dispose: (c) => c.close(),
      },
    );
    cleanups.unshift(() => connection.close());
    worker = await startup.step('creating the worker', () =>
      createSyncWorker({
        connection,
        namespace: settings.namespace,
        taskQueue: settings.taskQueue,
        ledger,
        targets,
        shutdownGraceMs: graceMs,
        dataConverter: settings.dataConverter,
        activityInterceptors: observability.interceptors((target) => targets.resolveName(target)),
        observeTransfer: observability.transferObserver(),
        notifySecret: appEnv().IMAGE_SYNC_NOTIFY_SECRET,
        tuning: {
          ...(flags.maxActivities ? { maxConcurrentActivityTaskExecutions: flags.maxActivities } : {}),
          ...(flags.maxWorkflowTasks ? { maxConcurrentWorkflowTaskExecutions: flags.maxWorkflowTasks } : {}),
        },
      }),
    );
    const running = worker.run();
    startup.serving();
    log.line(
      'info',
      `Worker polling task queue ${settings.taskQueue} on ${address} (namespace ${settings.namespace}); ledger ${ledger.dialect}`,
      { taskQueue: settings.taskQueue, address, namespace: settings.namespace, ledger: ledger.dialect },
    );
    await runUntil(worker, running, until, ledger, log);
    log.line('info', 'Worker stopped');
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

/**
 * Waits for the worker's run to end, for `until`, or for the ledger to be lost (Ledger.lost: it
 * can no longer vouch for its writes), then stops the worker with its grace period. A lost ledger
 * ends the run with the ledger's error, so the process exits 1 and its supervisor starts it again
 * on what the disk holds; the activities it could not finish are retried by Temporal meanwhile.
 */
async function runUntil(
  worker: Pick<Worker, 'getState' | 'shutdown'>,
  running: Promise<void>,
  until: Promise<unknown>,
  ledger: Pick<Ledger, 'lost'>,
  log: ServiceLog,
): Promise<void> {
  const { lost } = await untilSettledOrLedgerLost(ledger, [until, running]);
  if (lost) log.line('error', `Worker stopping: ${lost.message}`);
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await running;
  if (lost) throw lost;
}

/** Starts /metrics and /health (when configured) and says where, as a log line. */
async function serveObservability(
  observability: WorkerObservability,
  health: () => { ok: boolean; status: string },
): Promise<void> {
  const server = await observability.serve(health);
  if (server) observability.info('metrics and health served', { metricsUrl: `${server.url}/metrics` });
}

/**
 * The `worker` command: runs the worker, then ends the process with its exit code (0 stopped,
 * 1 failed or not started in time, 2 bad configuration) and, on failure, one line saying why,
 * JSON in JSON mode. The process ends even when something the failure left behind would keep it.
 */
async function workerCommand(flags: WorkerFlags): Promise<void> {
  let code = 0;
  try {
    await runWorker(flags);
  } catch (err) {
    code = exitCodeOf(err);
    serviceLog(processLogFormat()).line('error', errorText(err), { exitCode: code });
  }
  process.exit(code);
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker for syncBatch and syncFile (several may serve one task queue)')
    .option('--max-activities <n>', 'activities run at once', parseIntOption('--max-activities', 1, 10_000))
    .option('--max-workflow-tasks <n>', 'workflow tasks run at once', parseIntOption('--max-workflow-tasks', 1, 10_000))
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics and /health on this port (default: $IMAGE_SYNC_METRICS_PORT)',
      parseIntOption('--metrics-port', 0, 65535),
    )
    .action(workerCommand);
}
