import type { Command } from 'commander';
import { NativeConnection } from '@temporalio/worker';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { temporalSettings } from '../../temporal/connection';
import { installWorkerLogging } from '../../temporal/logging';
import { createSyncWorker } from '../../worker';
import { action, parseIntOption, untilStopped } from '../common';

export interface WorkerFlags {
  logLevel?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  maxActivities?: number;
  maxWorkflowTasks?: number;
}

/** Runs a worker until stopped; shared by `worker` and `demo`. */
export async function runWorker(flags: WorkerFlags = {}, until: Promise<unknown> = untilStopped()): Promise<void> {
  const settings = temporalSettings();
  installWorkerLogging(flags.logLevel);
  const targets = createTargets(loadTargetsConfig());
  const ledgerUrl = ledgerUrlFromEnv();
  const ledger = await openLedger(ledgerUrl);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(settings.connectionOptions);
  } catch (err) {
    await ledger.close();
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
      tuning: {
        ...(flags.maxActivities ? { maxConcurrentActivityTaskExecutions: flags.maxActivities } : {}),
        ...(flags.maxWorkflowTasks ? { maxConcurrentWorkflowTaskExecutions: flags.maxWorkflowTasks } : {}),
      },
    });
    process.stdout.write(
      `Worker polling task queue "${settings.taskQueue}" on ${settings.connectionOptions.address} (namespace ${settings.namespace}); ledger ${ledger.dialect}\n`,
    );
    const running = worker.run();
    await Promise.race([until, running]);
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  } finally {
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
    .action(action(async (flags: WorkerFlags) => runWorker(flags)));
}
