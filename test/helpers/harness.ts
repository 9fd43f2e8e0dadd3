/**
 * A full image-sync stack for workflow tests: the run's shared dev server, a fresh task queue,
 * a real ledger, a real simulator over HTTP and a worker running the bundled workflows.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { installWorkerLogging } from '../../src/temporal/logging';
import { inject } from 'vitest';
import { fixedTargets, type Targets } from '../../src/config/targets';
import { checkBatchConsistency, type ConsistencyReport } from '../../src/consistency/invariant';
import { openLedger } from '../../src/ledger';
import type { Ledger } from '../../src/ledger/port';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import type { SimulatorOptions } from '../../src/devtools/simulator/options';
import { startSimulator } from '../../src/devtools/simulator/simulator';
import { startBatch, type StartBatchOptions } from '../../src/batch/start';
import { DEFAULT_POLICY, type BatchPolicy, type RateLimit, type SyncItem } from '../../src/shared';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { createSyncWorker } from '../../src/worker';
import { imageSyncDataConverter } from '../../src/codec/encryption';
import { testEncryptionKeys } from './keys';

export { TEST_ENCRYPTION_KEYS_ENV, testEncryptionKeys } from './keys';

export const TEST_TOKEN = 'test-token-do-not-log-3f9a';

/**
 * The two ways a file is sent: inside its workflow task by a local activity (files up to the
 * local-send limit), or by a regular, heartbeating activity (every file, with a limit of 0).
 */
export const TRANSFER_PATHS = [
  { path: 'local activity', localSendMaxBytes: DEFAULT_POLICY.localSendMaxBytes },
  { path: 'regular activity', localSendMaxBytes: 0 },
] as const;

/** Keeps the worker's own logs to errors, so a test run's output stays readable. */
export function quietRuntime(): void {
  installWorkerLogging('ERROR');
}

export type SimulatorHandle = Awaited<ReturnType<typeof startSimulator>>;

export interface Harness {
  client: Client;
  taskQueue: string;
  ledger: Ledger;
  ledgerUrl: string;
  simulator: SimulatorHandle;
  targets: Targets;
  workDir: string;
  worker: Worker;
  /** Starts a fresh worker after stopWorker(). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /** Writes `count` files of `size` bytes under workDir/src and returns their items. */
  makeFiles(count: number, size?: number, ordersOf?: number): Promise<SyncItem[]>;
  start(
    items: SyncItem[],
    policy?: Partial<BatchPolicy>,
    batchId?: string,
    more?: Pick<StartBatchOptions, 'limits' | 'notify'>,
  ): ReturnType<typeof startBatch>;
  consistency(batchId: string, maxResends?: number): Promise<ConsistencyReport>;
  close(): Promise<void>;
}

export async function startHarness(
  opts: {
    ledgerUrl?: string;
    simulator?: Partial<SimulatorOptions>;
    /** More recording systems, each a simulator of its own, by target name. */
    extraTargets?: string[];
    /** The token the worker sends (the simulators expect TEST_TOKEN). */
    workerToken?: string;
    /** Policy every batch of this harness starts with, under what start() is given. */
    policy?: Partial<BatchPolicy>;
    /** Where the worker sends the default target's requests (a proxy in front of the simulator). */
    workerUrl?: string;
    /** Rate limits of the targets, as a targets file gives them. */
    targetLimits?: Record<string, RateLimit>;
    /** The key the workers sign notifications with. */
    notifySecret?: string;
  } = {},
): Promise<Harness> {
  quietRuntime();
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-test-'));
  const address = inject('temporalAddress');
  const connection = await Connection.connect({ address });
  const dataConverter = imageSyncDataConverter(testEncryptionKeys());
  const client = new Client({ connection, dataConverter });
  const nativeConnection = await NativeConnection.connect({ address });
  const taskQueue = `test-${randomUUID()}`;
  const ledgerUrl = opts.ledgerUrl ?? `sqlite:${path.join(workDir, 'ledger.db')}`;
  const ledger = await openLedger(ledgerUrl);
  const simulator = await startSimulator({
    dataDir: path.join(workDir, 'recording-system'),
    token: TEST_TOKEN,
    port: 0,
    ...opts.simulator,
  });
  const extraSimulators = new Map<string, SimulatorHandle>();
  for (const name of opts.extraTargets ?? []) {
    extraSimulators.set(
      name,
      await startSimulator({ dataDir: path.join(workDir, `recording-system-${name}`), token: TEST_TOKEN, port: 0 }),
    );
  }
  const targetsWith = (token: string, defaultUrl = simulator.url) => {
    const client = (url: string) => new HttpRecordingSystem({ baseUrl: url, token, requestTimeoutMs: 2_000 });
    return fixedTargets(
      new Map([
        ['default', client(defaultUrl)],
        ...[...extraSimulators].map(([n, sim]) => [n, client(sim.url)] as const),
      ]),
      'default',
      opts.targetLimits,
    );
  };
  // The tests look at the recording systems with the right token, whatever the worker sends.
  const targets = targetsWith(TEST_TOKEN);
  const workerTargets =
    opts.workerToken || opts.workerUrl ? targetsWith(opts.workerToken ?? TEST_TOKEN, opts.workerUrl) : targets;

  const workflowBundle = { code: await readFile(inject('workflowBundlePath'), 'utf8') };
  let worker!: Worker;
  let running: Promise<void> | undefined;
  const harness: Harness = {
    client,
    taskQueue,
    ledger,
    ledgerUrl,
    simulator,
    targets,
    workDir,
    get worker() {
      return worker;
    },
    async startWorker() {
      worker = await createSyncWorker({
        connection: nativeConnection,
        namespace: 'default',
        taskQueue,
        ledger,
        targets: workerTargets,
        workflowBundle,
        dataConverter,
        heartbeatEveryMs: 500,
        notifySecret: opts.notifySecret,
      });
      running = worker.run();
    },
    async stopWorker() {
      if (!running) return;
      worker.shutdown();
      await running;
      running = undefined;
    },
    async makeFiles(count, size = 2048, ordersOf = 10) {
      const dir = path.join(workDir, `src-${randomUUID().slice(0, 8)}`);
      await generateBlobFiles(dir, { count, size, filesPerOrder: ordersOf });
      const parsed = await scanDirectory(dir);
      if (parsed.errors.length) throw new Error(JSON.stringify(parsed.errors));
      return parsed.items;
    },
    start(items, policy, batchId, more) {
      return startBatch(client, items, {
        ...more,
        taskQueue,
        batchId: batchId ?? `t-${randomUUID().slice(0, 12)}`,
        stateDir: workDir,
        policy: { resendBackoffMs: 50, ...opts.policy, ...policy },
      });
    },
    consistency(batchId, maxResends) {
      return checkBatchConsistency({ ledger, targets, batchId, maxResends });
    },
    async close() {
      await harness.stopWorker();
      await simulator.close();
      for (const sim of extraSimulators.values()) await sim.close();
      await ledger.close();
      await nativeConnection.close();
      await connection.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
  await harness.startWorker();
  return harness;
}
