/**
 * The production topology for tests: a PostgreSQL database of its own (unique name, dropped at
 * the end), the pinned Temporal server on it (`startPostgresServer`, every port free), the
 * ledger in a schema of the same database, the recording-system simulator over HTTP, and worker
 * processes started the way an operator starts them (`node bin/image-sync.js worker`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { fixedTargets, type Targets } from '../../src/config/targets';
import { openLedger } from '../../src/ledger';
import type { Ledger } from '../../src/ledger/port';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import type { SimulatorOptions } from '../../src/devtools/simulator/options';
import { startSimulator, type RunningSimulator } from '../../src/devtools/simulator/simulator';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import { startPostgresServer, type RunningPostgresServer } from '../../src/temporal/postgres-server';
import { ensureServerPart } from '../../src/temporal/server-binary';
import { TEST_PG_URL } from '../ledger/backends';

export const PROD_TOKEN = 'prod-test-token-7c1e';

/** The PostgreSQL server of the test URL, with another database name. */
export function pgUrlFor(database: string, base = TEST_PG_URL): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  url.search = '';
  return url.toString();
}

export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

async function admin<T>(fn: (pg: PgClient) => Promise<T>): Promise<T> {
  const pg = new PgClient({ connectionString: pgUrlFor('postgres') });
  await pg.connect();
  try {
    return await fn(pg);
  } finally {
    await pg.end();
  }
}

export async function createDatabase(name: string): Promise<void> {
  await admin((pg) => pg.query(`CREATE DATABASE ${name}`));
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((pg) => pg.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

export async function databaseExists(name: string): Promise<boolean> {
  return admin(async (pg) => (await pg.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** stderr so far, for failure messages. */
  output(): string;
  /** Resolves once the worker says it polls; rejects when it exits first. */
  ready: Promise<void>;
  exited: Promise<void>;
}

export interface ProductionStack {
  database: string;
  server: RunningPostgresServer;
  client: Client;
  simulator: RunningSimulator;
  ledger: Ledger;
  ledgerUrl: string;
  targets: Targets;
  workDir: string;
  /** Starts `image-sync worker` on the task queue, configured by environment only. */
  spawnWorker(taskQueue: string): WorkerProcess;
  close(): Promise<void>;
}

export async function startProductionStack(
  opts: { simulator?: Partial<SimulatorOptions> } = {},
): Promise<ProductionStack> {
  // Installs (or finds) the pinned server parts with the real environment before anything else.
  await ensureServerPart('server');
  await ensureServerPart('sql-tool');
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-prod-'));
  const database = uniqueDatabaseName('image_sync_prod');
  await createDatabase(database);
  const workers = new Set<WorkerProcess>();
  let server: RunningPostgresServer | undefined;
  let connection: Connection | undefined;
  let simulator: RunningSimulator | undefined;
  let ledger: Ledger | undefined;
  const close = async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all([...workers].map((w) => w.exited));
    await ledger?.close();
    await simulator?.close();
    await connection?.close();
    await server?.stop();
    await dropDatabase(database);
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    server = await startPostgresServer({
      postgresUrl: pgUrlFor(database),
      port: 0,
      uiPort: null,
      stateDir: path.join(workDir, 'temporal-server'),
    });
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    simulator = await startSimulator({
      dataDir: path.join(workDir, 'recording-system'),
      token: PROD_TOKEN,
      port: 0,
      ...opts.simulator,
    });
    const ledgerUrl = `${pgUrlFor(database)}?schema=ledger`;
    ledger = await openLedger(ledgerUrl);
    const targets = fixedTargets(
      new Map([['default', new HttpRecordingSystem({ baseUrl: simulator.url, token: PROD_TOKEN })]]),
    );
    const sim = simulator;
    const address = server.address;
    return {
      database,
      server,
      client,
      simulator,
      ledger,
      ledgerUrl,
      targets,
      workDir,
      spawnWorker(taskQueue) {
        const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), 'worker'], {
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            TEMPORAL_ADDRESS: address,
            IMAGE_SYNC_TASK_QUEUE: taskQueue,
            IMAGE_SYNC_LEDGER_URL: ledgerUrl,
            RECORDING_SYSTEM_URL: sim.url,
            RECORDING_SYSTEM_TOKEN: PROD_TOKEN,
            IMAGE_SYNC_LOG_LEVEL: 'WARN',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
        const ready = new Promise<void>((resolve, reject) => {
          let out = '';
          child.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('Worker polling')) resolve();
          });
          child.once('exit', (code, signal) =>
            reject(new Error(`worker ${child.pid} exited (${code ?? signal}) before polling: ${err}`)),
          );
        });
        ready.catch(() => undefined);
        const worker: WorkerProcess = {
          child,
          pid: child.pid ?? -1,
          output: () => err,
          ready,
          exited: new Promise((resolve) => child.once('exit', () => resolve())),
        };
        workers.add(worker);
        return worker;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
