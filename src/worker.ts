/**
 * The image-sync worker: runs syncBatch and syncFile and their activities on one task queue.
 * Several worker processes may serve the same queue.
 */
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import type { Targets } from './config/targets';
import type { Ledger } from './ledger/port';

export const WORKFLOWS_PATH = path.join(__dirname, 'workflows', 'index.ts');

export interface SyncWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  ledger: Ledger;
  targets: Targets;
  /** A prebuilt workflow bundle; the worker bundles src/workflows when absent. */
  workflowBundle?: { code: string };
  tuning?: Partial<
    Pick<
      WorkerOptions,
      | 'maxConcurrentActivityTaskExecutions'
      | 'maxConcurrentWorkflowTaskExecutions'
      | 'maxConcurrentLocalActivityExecutions'
      | 'maxCachedWorkflows'
    >
  >;
  /** How often long activities heartbeat. */
  heartbeatEveryMs?: number;
  /**
   * After shutdown is asked for, how long activities and workflow tasks in flight may run
   * before they are cancelled (default 0: at once).
   */
  shutdownGraceMs?: number;
}

export async function createSyncWorker(opts: SyncWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({
      ledger: opts.ledger,
      targets: opts.targets,
      heartbeatEveryMs: opts.heartbeatEveryMs,
    }),
    maxConcurrentActivityTaskExecutions: 100,
    maxConcurrentLocalActivityExecutions: 100,
    maxConcurrentWorkflowTaskExecutions: 40,
    ...(opts.shutdownGraceMs ? { shutdownGraceTime: opts.shutdownGraceMs } : {}),
    ...opts.tuning,
  });
}
