/**
 * A whole image-sync stack in one process tree for benchmarks and measured runs: the pinned dev
 * server, the simulator, a ledger and a worker. Not used by the tests (they share one server).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { fixedTargets, type Targets } from '../src/config/targets';
import { openLedger } from '../src/ledger';
import type { Ledger } from '../src/ledger/port';
import { HttpRecordingSystem } from '../src/recording-system/http-adapter';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../src/recording-system/simulator';
import { startDevServer, type RunningDevServer } from '../src/temporal/dev-server';
import { installWorkerLogging } from '../src/temporal/logging';
import { createSyncWorker, type SyncWorkerOptions } from '../src/worker';

export const BENCH_TOKEN = 'bench-token';

export interface Stack {
  server: RunningDevServer;
  client: Client;
  simulator: RunningSimulator;
  ledger: Ledger;
  ledgerUrl: string;
  targets: Targets;
  taskQueue: string;
  workDir: string;
  worker: Worker;
  close(): Promise<void>;
}

export async function startStack(opts: {
  simulator?: Partial<SimulatorOptions>;
  ledgerUrl?: string;
  tuning?: SyncWorkerOptions['tuning'];
  requestTimeoutMs?: number;
  /** Run the dev server without DEV_SERVER_TUNING (to measure what the tuning gives). */
  untuned?: boolean;
}): Promise<Stack> {
  installWorkerLogging('ERROR');
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-bench-'));
  const server = await startDevServer({
    dbFile: null,
    port: 0,
    uiPort: null,
    logLevel: 'error',
    tuned: !opts.untuned,
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address: server.address });
  const simulator = await startSimulator({
    dataDir: path.join(workDir, 'rs'),
    token: BENCH_TOKEN,
    port: 0,
    ...opts.simulator,
  });
  const ledgerUrl = opts.ledgerUrl ?? `sqlite:${path.join(workDir, 'ledger.db')}`;
  const ledger = await openLedger(ledgerUrl);
  const targets = fixedTargets(
    new Map([
      [
        'default',
        new HttpRecordingSystem({
          baseUrl: simulator.url,
          token: BENCH_TOKEN,
          requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
        }),
      ],
    ]),
  );
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const worker = await createSyncWorker({
    connection: native,
    namespace: 'default',
    taskQueue,
    ledger,
    targets,
    tuning: opts.tuning,
  });
  const running = worker.run();
  return {
    server,
    client,
    simulator,
    ledger,
    ledgerUrl,
    targets,
    taskQueue,
    workDir,
    worker,
    async close() {
      worker.shutdown();
      await running;
      await native.close();
      await connection.close();
      await simulator.close();
      await ledger.close();
      await server.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** Events in every workflow history of a batch: the batch's runs, and its files unless filesToo is false. */
export async function historyEvents(
  client: Client,
  batchWorkflowId: string,
  opts: { filesToo?: boolean } = {},
): Promise<{ total: number; largestRun: number; workflows: number }> {
  let total = 0;
  let largestRun = 0;
  let workflows = 0;
  const ids = new Set<string>([batchWorkflowId]);
  if (opts.filesToo !== false) {
    for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH "${batchWorkflowId}/"` }))
      ids.add(wf.workflowId);
  }
  for (const id of ids) {
    // Every run of the workflow (the batch continues as new).
    for await (const run of client.workflow.list({ query: `WorkflowId = "${id}"` })) {
      const history = await client.workflow.getHandle(id, run.runId).fetchHistory();
      const n = history.events?.length ?? 0;
      total += n;
      largestRun = Math.max(largestRun, n);
      workflows += 1;
    }
  }
  return { total, largestRun, workflows };
}
