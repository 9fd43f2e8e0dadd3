/**
 * The image-sync worker: runs the workflows of src/workflows (syncBatch, syncFile, the schedules'
 * and the real-time intake's) and their activities on one task queue.
 * Several worker processes may serve the same queue.
 */
import { existsSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type ActivityInterceptorsFactory, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type TransferObserver } from './activities';
import { preloadedWorkflowModules, prebuiltBundlePath, workflowsEntry } from './build/workflow-bundle';
import { imageSyncDataConverter } from './codec/encryption';
import { observabilityInterceptors } from './observability/activity-interceptor';
import type { Targets } from './config/targets';
import type { Ledger } from './ledger/port';

/**
 * Where the worker's workflows come from: the given bundle; else, in the compiled build, the
 * bundle `npm run build` wrote next to it (no bundling at start); else src/workflows, bundled now.
 */
export function workflowSource(
  given?: { code: string } | { codePath: string },
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions'> {
  if (given) return { workflowBundle: given };
  const prebuilt = prebuiltBundlePath(__dirname);
  if (__filename.endsWith('.js') && existsSync(prebuilt)) return { workflowBundle: { codePath: prebuilt } };
  const workflowsPath = workflowsEntry();
  return { workflowsPath, bundlerOptions: { preloadModules: preloadedWorkflowModules(workflowsPath) } };
}

export interface SyncWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  ledger: Ledger;
  targets: Targets;
  /** A prebuilt workflow bundle; when absent, the build's bundle or src/workflows (see workflowSource). */
  workflowBundle?: { code: string } | { codePath: string };
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
  /** Payload codec and failure converter (see imageSyncDataConverter); the same as the clients'. */
  dataConverter?: DataConverter;
  /** Activity interceptors; by default the one that adds batch id and target to activity logs. */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Times the send and verify phases of deliveries (the worker's latency metrics). */
  observeTransfer?: TransferObserver;
  /** Signs the batches' notifications (IMAGE_SYNC_NOTIFY_SECRET). */
  notifySecret?: string;
}

export async function createSyncWorker(opts: SyncWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...workflowSource(opts.workflowBundle),
    dataConverter: opts.dataConverter ?? imageSyncDataConverter(undefined),
    interceptors: {
      activity: opts.activityInterceptors ?? [
        observabilityInterceptors({ resolveTarget: (target) => opts.targets.resolveName(target) }),
      ],
    },
    activities: createActivities({
      ledger: opts.ledger,
      targets: opts.targets,
      heartbeatEveryMs: opts.heartbeatEveryMs,
      observeTransfer: opts.observeTransfer,
      notifySecret: opts.notifySecret,
    }),
    maxConcurrentActivityTaskExecutions: 100,
    maxConcurrentLocalActivityExecutions: 100,
    maxConcurrentWorkflowTaskExecutions: 40,
    ...(opts.shutdownGraceMs ? { shutdownGraceTime: opts.shutdownGraceMs } : {}),
    ...opts.tuning,
  });
}
