import type { Command } from 'commander';
import type { LogLevel } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { parseProductionEnv } from '../../config/production-env';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { setUpWorkerObservability, type WorkerObservability } from '../../observability';
import { temporalSettings } from '../../temporal/connection';
import { createSyncWorker } from '../../worker';
import { action, parseIntOption, untilStopped } from '../common';

export interface WorkerFlags {
  logLevel?: LogLevel;
  maxActivities?: number;
  maxWorkflowTasks?: number;
  metricsPort?: number;
}

/** Logs and metrics as the production settings say (IMAGE_SYNC_LOG_FORMAT, IMAGE_SYNC_METRICS_PORT). */
function workerObservability(flags: WorkerFlags): Promise<WorkerObservability> {
  const env = parseProductionEnv();
  return setUpWorkerObservability({
    level: flags.logLevel ?? (process.env.IMAGE_SYNC_LOG_LEVEL as LogLevel | undefined),
    format: env.IMAGE_SYNC_LOG_FORMAT,
    metricsPort: flags.metricsPort ?? env.IMAGE_SYNC_METRICS_PORT,
  });
}

/** Starts /metrics and /health (when configured) and says where, as a log line. */
async function serveObservability(observability: WorkerObservability, worker: Worker): Promise<void> {
  const server = await observability.serve(worker);
  if (server) observability.info('metrics and health served', { metricsUrl: `${server.url}/metrics` });
}

/** Runs a worker until stopped; shared by `worker` and `demo`. */
export async function runWorker(flags: WorkerFlags = {}, until: Promise<unknown> = untilStopped()): Promise<void> {
  const settings = temporalSettings();
  const observability = await workerObservability(flags);
  const targets = createTargets(loadTargetsConfig());
  const ledgerUrl = ledgerUrlFromEnv();
  const ledger = observability.wrapLedger(await openLedger(ledgerUrl));
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(settings.connectionOptions);
  } catch (err) {
    await ledger.close();
    await observability.close();
    throw new Error(`cannot reach Temporal at ${settings.connectionOptions.address}: ${(err as Error).message}`);
  }
  try {
    const worker = await createSyncWorker({
      connection,
      namespace: settings.namespace,
      taskQueue: settings.taskQueue,
      ledger,
      targets,
      dataConverter: settings.dataConverter,
      activityInterceptors: observability.interceptors((target) => targets.resolveName(target)),
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
  } finally {
    await observability.close();
    await connection.close();
    await ledger.close();
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
