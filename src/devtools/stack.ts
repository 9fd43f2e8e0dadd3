/**
 * A whole image-sync stack on this machine: a Temporal server, the recording-system simulator
 * (one more per extra target), a ledger, a client, and the worker. `image-sync demo`, the
 * benchmarks (bench/stack.ts) and the workflow tests (test/helpers/harness.ts) all start their
 * stack here and add only what is their own.
 *
 * The Temporal server is an existing one (its address), the pinned dev server started with the
 * stack, or one the caller starts. The worker runs in this process, as `image-sync worker`
 * processes configured by environment only (as in production), or is the caller's own runner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { imageSyncDataConverter } from '../codec/encryption';
import type { EncryptionKey } from '../config/production-env';
import { fixedTargets, type Targets } from '../config/targets';
import { openLedger } from '../ledger';
import type { Ledger } from '../ledger/port';
import { HttpRecordingSystem } from '../recording-system/http-adapter';
import type { RecordingSystem } from '../recording-system/port';
import type { SimulatorOptions } from '../devtools/simulator/options';
import { startSimulator, type RunningSimulator } from '../devtools/simulator/simulator';
import { PROJECT_ROOT } from '../temporal/cli-binary';
import { startDevServer, type DevServerOptions } from '../temporal/dev-server';
import { installWorkerLogging } from '../temporal/logging';
import type { RateLimit } from '../shared';
import { createSyncWorker, type SyncWorkerOptions } from '../worker';

/** A running Temporal server, as the stack sees it. */
export interface StackServer {
  address: string;
  /** The Web UI, when the server serves one. */
  uiUrl: string | null;
  /** The server's process; null for a server the stack did not start. */
  pid: number | null;
  stop(): Promise<void>;
}

export type StackTemporal =
  /** A server already running (the tests' shared dev server); left running on close. */
  | { address: string }
  /** The pinned dev server, started with the stack: in memory, headless, on free ports unless told otherwise. */
  | { devServer: Partial<DevServerOptions> }
  /** A server the caller starts (the bench's Temporal server on PostgreSQL); stopped on close. */
  | { start(workDir: string): Promise<StackServer> };

export type StackWorker =
  /** A worker in this process, with the stack's ledger and targets. */
  | {
      kind: 'in-process';
      tuning?: SyncWorkerOptions['tuning'];
      heartbeatEveryMs?: number;
    }
  /** `image-sync worker` processes configured by the stack's environment only. */
  | { kind: 'processes'; count: number; tuning?: SyncWorkerOptions['tuning'] }
  /** The caller's own runner, which runs until `until` resolves. */
  | { kind: 'custom'; run(until: Promise<void>): Promise<void> };

export interface StackOptions {
  /** Default: the dev server, in memory, headless, on a free port. */
  temporal?: StackTemporal;
  /** Where the ledger, the simulators' files and the server's own files go; kept on close. Default: a fresh temporary folder, removed on close. */
  workDir?: string;
  /** Name start of the temporary folder made when no workDir is given. */
  tempDirPrefix?: string;
  /** Default: SQLite in workDir. */
  ledgerUrl?: string;
  /** The bearer token the simulators expect (default: random). */
  token?: string;
  /** The token the worker sends, when it is not `token` (to see a refused token). */
  workerToken?: string;
  simulator?: Partial<SimulatorOptions>;
  /** More recording systems, each a simulator of its own, by target name. */
  extraTargets?: string[];
  /** Request timeout of the stack's own recording-system clients (the in-process worker's too). */
  requestTimeoutMs?: number;
  /** Where the in-process worker sends the default target's requests (a proxy in front of the simulator). */
  workerUrl?: string;
  /**
   * The default target's recording system instead of the simulator's HTTP client: an adapter for
   * another kind of target (S3, SFTP, HTTPS). Called once for the stack's own checks ('stack')
   * and once for the in-process worker ('worker').
   */
  defaultSystem?: (use: 'stack' | 'worker') => RecordingSystem;
  /** The targets' rate limits, as a targets file gives them. */
  targetLimits?: Record<string, RateLimit>;
  /** The key the in-process worker signs notifications with. */
  notifySecret?: string;
  /** Default: a fresh `stack-<uuid>`. */
  taskQueue?: string;
  /** Payload keys of the client and the worker (IMAGE_SYNC_ENCRYPTION_KEYS); plain payloads without. */
  encryptionKeys?: readonly EncryptionKey[];
  /** A prebuilt workflow bundle for the in-process worker (see workflowSource in src/worker.ts). */
  workflowBundle?: SyncWorkerOptions['workflowBundle'];
  /** Default: in process. */
  worker?: StackWorker;
  /** Start no worker yet: the caller calls startWorker() when it wants one. */
  deferWorker?: boolean;
}

export interface Stack {
  server: StackServer;
  client: Client;
  taskQueue: string;
  ledger: Ledger;
  ledgerUrl: string;
  /** The default target's simulator. */
  simulator: RunningSimulator;
  /** The extra targets' simulators, by name. */
  extraSimulators: ReadonlyMap<string, RunningSimulator>;
  /** Every target, with the token the simulators expect (whatever the worker sends). */
  targets: Targets;
  token: string;
  workDir: string;
  /** What an `image-sync` process needs to use this stack (TEMPORAL_ADDRESS, the ledger, the recording system, ...). */
  env: Record<string, string>;
  /** The in-process worker while it runs; null otherwise. */
  readonly worker: Worker | null;
  /** The worker processes while they run. */
  readonly workerPids: number[];
  /** Starts the worker the options describe (again after stopWorker()). */
  startWorker(): Promise<void>;
  /** Stops it; the worker processes with SIGTERM, so they finish what is in flight. */
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** The IMAGE_SYNC_ENCRYPTION_KEYS form of some keys. */
export function encryptionKeysEnv(keys: readonly EncryptionKey[]): string {
  return keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');
}

async function startServer(temporal: StackTemporal, workDir: string): Promise<StackServer> {
  if ('address' in temporal) return { address: temporal.address, uiUrl: null, pid: null, stop: async () => {} };
  if ('start' in temporal) return temporal.start(workDir);
  const dev = await startDevServer({ dbFile: null, port: 0, uiPort: null, logLevel: 'error', ...temporal.devServer });
  return { address: dev.address, uiUrl: dev.uiUrl, pid: dev.pid, stop: () => dev.stop() };
}

/** Starts `image-sync worker` with the given environment only, and waits until it polls. */
export async function spawnWorkerProcess(
  env: Record<string, string>,
  tuning?: SyncWorkerOptions['tuning'],
): Promise<ChildProcess> {
  const args = [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), 'worker'];
  if (tuning?.maxConcurrentActivityTaskExecutions)
    args.push('--max-activities', String(tuning.maxConcurrentActivityTaskExecutions));
  if (tuning?.maxConcurrentWorkflowTaskExecutions)
    args.push('--max-workflow-tasks', String(tuning.maxConcurrentWorkflowTaskExecutions));
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, IMAGE_SYNC_LOG_LEVEL: 'ERROR', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Worker polling')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker process exited (${code}) before polling: ${err}`)));
  });
  child.stdout?.resume();
  return child;
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const workerSpec: StackWorker = opts.worker ?? { kind: 'in-process' };
  // The SDK's own logs go through the project's logger; the CLI's worker sets up its own.
  if (workerSpec.kind === 'in-process') installWorkerLogging('ERROR');
  const ownDir = !opts.workDir;
  const workDir = opts.workDir ?? (await mkdtemp(path.join(os.tmpdir(), opts.tempDirPrefix ?? 'image-sync-stack-')));
  await mkdir(workDir, { recursive: true });
  // Whatever was opened, closed in reverse order, on close or on a failed start.
  const closers: (() => Promise<void>)[] = [];
  if (ownDir) closers.push(() => rm(workDir, { recursive: true, force: true }));
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const server = await startServer(opts.temporal ?? { devServer: {} }, workDir);
    closers.push(() => server.stop());
    const token = opts.token ?? randomBytes(24).toString('hex');
    const simulatorAt = async (dir: string, extra: Partial<SimulatorOptions>) => {
      const sim = await startSimulator({ dataDir: path.join(workDir, dir), token, port: 0, ...extra });
      closers.push(() => sim.close());
      return sim;
    };
    const simulator = await simulatorAt('recording-system', opts.simulator ?? {});
    const extraSimulators = new Map<string, RunningSimulator>();
    for (const name of opts.extraTargets ?? []) {
      extraSimulators.set(name, await simulatorAt(`recording-system-${name}`, {}));
    }
    const ledgerUrl = opts.ledgerUrl ?? `sqlite:${path.join(workDir, 'ledger.db')}`;
    const ledger = await openLedger(ledgerUrl);
    closers.push(() => ledger.close());
    const connection = await Connection.connect({ address: server.address });
    closers.push(() => connection.close());
    const dataConverter = imageSyncDataConverter(opts.encryptionKeys);
    const client = new Client({ connection, dataConverter });
    const targetsWith = (bearer: string, defaultUrl = simulator.url, use: 'stack' | 'worker' = 'stack') => {
      const http = (url: string) =>
        new HttpRecordingSystem({ baseUrl: url, token: bearer, requestTimeoutMs: opts.requestTimeoutMs ?? 5_000 });
      return fixedTargets(
        new Map([
          ['default', opts.defaultSystem ? opts.defaultSystem(use) : http(defaultUrl)],
          ...[...extraSimulators].map(([name, sim]) => [name, http(sim.url)] as const),
        ]),
        'default',
        opts.targetLimits,
      );
    };
    const targets = targetsWith(token);
    const taskQueue = opts.taskQueue ?? `stack-${randomUUID()}`;
    const env: Record<string, string> = {
      TEMPORAL_ADDRESS: server.address,
      IMAGE_SYNC_TASK_QUEUE: taskQueue,
      IMAGE_SYNC_LEDGER_URL: ledgerUrl,
      RECORDING_SYSTEM_URL: simulator.url,
      RECORDING_SYSTEM_TOKEN: token,
      ...(opts.encryptionKeys?.length ? { IMAGE_SYNC_ENCRYPTION_KEYS: encryptionKeysEnv(opts.encryptionKeys) } : {}),
    };

    let native: NativeConnection | null = null;
    if (workerSpec.kind === 'in-process') {
      native = await NativeConnection.connect({ address: server.address });
      const opened = native;
      closers.push(() => opened.close());
    }
    const workerTargets =
      opts.workerToken || opts.workerUrl || opts.defaultSystem
        ? targetsWith(opts.workerToken ?? token, opts.workerUrl, 'worker')
        : targets;
    if (workerTargets !== targets) closers.push(() => workerTargets.close());
    closers.push(() => targets.close());
    let worker: Worker | null = null;
    let children: ChildProcess[] = [];
    let running: Promise<void> | null = null;
    let stopCustom: (() => void) | null = null;

    const stopWorker = async () => {
      if (worker && running) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      }
      if (stopCustom) {
        stopCustom();
        await running;
      }
      await Promise.all(children.map(stopProcess));
      worker = null;
      children = [];
      running = null;
      stopCustom = null;
    };
    const startWorker = async () => {
      if (running || children.length) throw new Error('the stack already runs its worker');
      if (workerSpec.kind === 'in-process') {
        worker = await createSyncWorker({
          connection: native!,
          namespace: 'default',
          taskQueue,
          ledger,
          targets: workerTargets,
          workflowBundle: opts.workflowBundle,
          dataConverter,
          heartbeatEveryMs: workerSpec.heartbeatEveryMs,
          tuning: workerSpec.tuning,
          notifySecret: opts.notifySecret,
        });
        running = worker.run();
      } else if (workerSpec.kind === 'processes') {
        const workerEnv = opts.workerToken ? { ...env, RECORDING_SYSTEM_TOKEN: opts.workerToken } : env;
        const started = await Promise.allSettled(
          Array.from({ length: workerSpec.count }, () => spawnWorkerProcess(workerEnv, workerSpec.tuning)),
        );
        children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        const failed = started.find((s) => s.status === 'rejected');
        if (failed) {
          await stopWorker();
          throw failed.reason;
        }
      } else {
        const until = new Promise<void>((resolve) => (stopCustom = resolve));
        running = workerSpec.run(until);
      }
    };
    closers.push(stopWorker);
    if (!opts.deferWorker) await startWorker();

    return {
      server,
      client,
      taskQueue,
      ledger,
      ledgerUrl,
      simulator,
      extraSimulators,
      targets,
      token,
      workDir,
      env,
      get worker() {
        return worker;
      },
      get workerPids() {
        return children.map((c) => c.pid ?? -1);
      },
      startWorker,
      stopWorker,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
