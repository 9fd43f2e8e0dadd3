import type { Command } from 'commander';
import type { LogLevel } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { appEnv } from '../../config/env';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { errorText } from '../../errors';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { setUpWorkerObservability, type WorkerObservability } from '../../observability';
import { temporalSettings } from '../../temporal/connection';
import { createSyncWorker } from '../../worker';
import { action, parseIntOption } from '../common';

export interface WorkerFlags {
  logLevel?: LogLevel;
  maxActivities?: number;
  maxWorkflowTasks?: number;
  metricsPort?: number;
}

/** Logs and metrics as the production settings say (IMAGE_SYNC_LOG_FORMAT, IMAGE_SYNC_METRICS_PORT). */
function workerObservability(flags: WorkerFlags): Promise<WorkerObservability> {
  const env = appEnv();
  return setUpWorkerObservability({
    level: flags.logLevel ?? env.IMAGE_SYNC_LOG_LEVEL,
    format: env.IMAGE_SYNC_LOG_FORMAT,
    metricsPort: flags.metricsPort ?? env.IMAGE_SYNC_METRICS_PORT,
  });
}

/** Starts /metrics and /health (when configured) and says where, as a log line. */
async function serveObservability(observability: WorkerObservability, worker: Worker): Promise<void> {
  const server = await observability.serve(worker);
  if (server) observability.info('metrics and health served', { metricsUrl: `${server.url}/metrics` });
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
 * Installed before the worker is made, so a signal during start-up stops it too.
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
 * gracefully on SIGTERM or SIGINT (see {@link stopGracefullyOnSignals}); with it, it stops when
 * `until` settles, with the same grace.
 */
export async function runWorker(flags: WorkerFlags = {}, until?: Promise<unknown>): Promise<void> {
  const graceMs = appEnv().IMAGE_SYNC_SHUTDOWN_GRACE_MS;
  const signals = until ? undefined : stopGracefullyOnSignals(graceMs);
  // From here on a stop signal is handled: say so, for whoever supervises the process.
  if (signals) process.stdout.write('Worker starting: stop signals are handled from now on\n');
  const stopWhen = until ?? signals!.requested;
  try {
    await runWorkerUntil(flags, stopWhen, graceMs);
  } finally {
    signals?.remove();
  }
}

async function runWorkerUntil(flags: WorkerFlags, until: Promise<unknown>, graceMs: number): Promise<void> {
  const settings = temporalSettings();
  // The targets first: a bad targets file ends the worker before anything is opened.
  const targets = createTargets(loadTargetsConfig());
  const observability = await workerObservability(flags);
  const ledgerUrl = ledgerUrlFromEnv();
  const ledger = observability.wrapLedger(await openLedger(ledgerUrl));
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(settings.connectionOptions);
  } catch (err) {
    await ledger.close();
    await observability.close();
    await targets.close();
    throw new Error(`cannot reach Temporal at ${settings.connectionOptions.address}: ${errorText(err)}`);
  }
  try {
    const worker = await createSyncWorker({
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
    });
    process.stdout.write(
      `Worker polling task queue "${settings.taskQueue}" on ${settings.connectionOptions.address} (namespace ${settings.namespace}); ledger ${ledger.dialect}\n`,
    );
    await serveObservability(observability, worker);
    const running = worker.run();
    await Promise.race([until, running]);
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    process.stdout.write('Worker stopped\n');
  } finally {
    await observability.close();
    await connection.close();
    await ledger.close();
    await targets.close();
  }
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
    .action(action(async (flags: WorkerFlags) => runWorker(flags)));
}
