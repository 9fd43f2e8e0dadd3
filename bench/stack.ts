/**
 * A whole image-sync stack for benchmarks and measured runs: a Temporal server (the pinned dev
 * server, or the pinned Temporal server on a PostgreSQL database of its own), the simulator, a
 * ledger and the workers (inside this process, or as separate `image-sync worker` processes).
 * Every process whose CPU a file costs is listed by role, so CPU per file can be summed from
 * /proc. Not used by the tests (they share one server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { fixedTargets, type Targets } from '../src/config/targets';
import { openLedger } from '../src/ledger';
import type { Ledger } from '../src/ledger/port';
import { HttpRecordingSystem } from '../src/recording-system/http-adapter';
import type { SimulatorOptions } from '../src/devtools/simulator/options';
import { startSimulator, type RunningSimulator } from '../src/devtools/simulator/simulator';
import { PROJECT_ROOT } from '../src/temporal/cli-binary';
import { startDevServer } from '../src/temporal/dev-server';
import { installWorkerLogging } from '../src/temporal/logging';
import { startPostgresServer } from '../src/temporal/postgres-server';
import { createSyncWorker, type SyncWorkerOptions } from '../src/worker';

export const BENCH_TOKEN = 'bench-token';

export type StackServerKind = 'dev' | 'postgres';

/** The PostgreSQL server the postgres stack creates its database on (trust auth here). */
export const BENCH_PG_URL =
  process.env.IMAGE_SYNC_BENCH_PG_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface StackServer {
  kind: StackServerKind;
  address: string;
  pid: number;
  /** The database holding Temporal's persistence and visibility (postgres only). */
  database: string | null;
  stop(): Promise<void>;
}

/** CPU seconds used so far, by role. */
export interface StackCpu {
  server: number;
  /** The worker processes; with the worker inside this process, this process (simulator included). */
  workers: number;
  /** This process (client, simulator, and the worker when it runs here). */
  bench: number;
  /** PostgreSQL backends serving Temporal's database (postgres only; 0 for dev). */
  database: number;
}

/** Counters of Temporal's PostgreSQL database (pg_stat_database and pg_stat_user_tables). */
export interface DatabaseCounters {
  transactions: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsDeleted: number;
  rowsReturned: number;
  rowsFetched: number;
  blocksRead: number;
  blocksHit: number;
  /** Rows written (inserted + updated + deleted) by table. */
  tableWrites: Record<string, number>;
}

export interface Stack {
  server: StackServer;
  client: Client;
  simulator: RunningSimulator;
  ledger: Ledger;
  ledgerUrl: string;
  targets: Targets;
  taskQueue: string;
  workDir: string;
  /** The worker in this process; null when the workers run as processes. */
  worker: Worker | null;
  /** PIDs of the worker processes (empty when the worker runs in this process). */
  workerPids: number[];
  /** Every PID whose CPU counts, by role; the database's backends are listed at call time. */
  pids(): Promise<{ server: number[]; workers: number[]; bench: number[]; database: number[] }>;
  cpu(): Promise<StackCpu>;
  /** null on the dev server. */
  databaseCounters(): Promise<DatabaseCounters | null>;
  close(): Promise<void>;
}

/** CPU seconds a process has used, from /proc (Linux); 0 when it is gone. */
export async function processCpuSeconds(pid: number): Promise<number> {
  try {
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(stat[11]) + Number(stat[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return 0;
  }
}

async function sumCpu(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await processCpuSeconds(pid);
  return total;
}

function pgUrl(database: string): string {
  const url = new URL(BENCH_PG_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withPg<T>(database: string, fn: (pg: PgClient) => Promise<T>): Promise<T> {
  const pg = new PgClient({ connectionString: pgUrl(database) });
  await pg.connect();
  try {
    return await fn(pg);
  } finally {
    await pg.end();
  }
}

async function startServer(
  kind: StackServerKind,
  workDir: string,
  opts: { untuned?: boolean } = {},
): Promise<StackServer> {
  if (kind === 'dev') {
    const dev = await startDevServer({ dbFile: null, port: 0, uiPort: null, logLevel: 'error', tuned: !opts.untuned });
    return { kind, address: dev.address, pid: dev.pid, database: null, stop: () => dev.stop() };
  }
  const database = `image_sync_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new URL(BENCH_PG_URL).pathname.slice(1) || 'postgres';
  await withPg(admin, (pg) => pg.query(`CREATE DATABASE ${database}`));
  const drop = () => withPg(admin, (pg) => pg.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  try {
    const server = await startPostgresServer({
      postgresUrl: pgUrl(database),
      port: 0,
      uiPort: null,
      stateDir: path.join(workDir, 'temporal-server'),
      logLevel: 'error',
    });
    return {
      kind,
      address: server.address,
      pid: server.pid,
      database,
      async stop() {
        await server.stop();
        await drop();
      },
    };
  } catch (err) {
    await drop();
    throw err;
  }
}

/** Starts `image-sync worker` configured by environment only, and waits until it polls. */
async function spawnWorkerProcess(
  env: Record<string, string>,
  tuning: SyncWorkerOptions['tuning'],
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

export async function startStack(opts: {
  simulator?: Partial<SimulatorOptions>;
  ledgerUrl?: string;
  tuning?: SyncWorkerOptions['tuning'];
  requestTimeoutMs?: number;
  /** Run the dev server without DEV_SERVER_TUNING (to measure what the tuning gives). */
  untuned?: boolean;
  /** Which Temporal server: the dev server (default) or the Temporal server on PostgreSQL. */
  server?: StackServerKind;
  /** 0 (default): the worker runs in this process; N: N separate `image-sync worker` processes. */
  workerProcesses?: number;
}): Promise<Stack> {
  installWorkerLogging('ERROR');
  const workerProcesses = opts.workerProcesses ?? 0;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-bench-'));
  const server = await startServer(opts.server ?? 'dev', workDir, { untuned: opts.untuned });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const simulator = await startSimulator({
    dataDir: path.join(workDir, 'rs'),
    token: BENCH_TOKEN,
    port: 0,
    ...opts.simulator,
  });
  const ledgerUrl = opts.ledgerUrl ?? `sqlite:${path.join(workDir, 'ledger.db')}`;
  const ledger = await openLedger(ledgerUrl);
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;
  const targets = fixedTargets(
    new Map([['default', new HttpRecordingSystem({ baseUrl: simulator.url, token: BENCH_TOKEN, requestTimeoutMs })]]),
  );
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  let native: NativeConnection | null = null;
  let worker: Worker | null = null;
  let running: Promise<void> | null = null;
  const children: ChildProcess[] = [];
  if (workerProcesses === 0) {
    native = await NativeConnection.connect({ address: server.address });
    worker = await createSyncWorker({
      connection: native,
      namespace: 'default',
      taskQueue,
      ledger,
      targets,
      tuning: opts.tuning,
    });
    running = worker.run();
  } else {
    const env = {
      TEMPORAL_ADDRESS: server.address,
      IMAGE_SYNC_TASK_QUEUE: taskQueue,
      IMAGE_SYNC_LEDGER_URL: ledgerUrl,
      RECORDING_SYSTEM_URL: simulator.url,
      RECORDING_SYSTEM_TOKEN: BENCH_TOKEN,
    };
    children.push(
      ...(await Promise.all(Array.from({ length: workerProcesses }, () => spawnWorkerProcess(env, opts.tuning)))),
    );
  }
  const workerPids = children.map((c) => c.pid ?? -1);
  const databasePids = async (): Promise<number[]> =>
    server.database
      ? withPg(server.database, async (pg) =>
          (
            await pg.query<{ pid: number }>(
              'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
              [server.database],
            )
          ).rows.map((r) => r.pid),
        )
      : [];
  const pids = async () => ({
    server: [server.pid],
    workers: workerPids.length ? workerPids : [process.pid],
    bench: [process.pid],
    database: await databasePids(),
  });
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
    workerPids,
    pids,
    async cpu() {
      const p = await pids();
      const own = process.cpuUsage();
      const bench = (own.user + own.system) / 1e6;
      return {
        server: await sumCpu(p.server),
        workers: workerPids.length ? await sumCpu(p.workers) : bench,
        bench,
        database: await sumCpu(p.database),
      };
    },
    async databaseCounters() {
      if (!server.database) return null;
      return withPg(server.database, async (pg) => {
        const db = (
          await pg.query<Record<string, string>>(
            `SELECT xact_commit + xact_rollback AS transactions, tup_inserted, tup_updated, tup_deleted,
                    tup_returned, tup_fetched, blks_read, blks_hit
               FROM pg_stat_database WHERE datname = current_database()`,
          )
        ).rows[0]!;
        const tables = await pg.query<{ name: string; writes: string }>(
          `SELECT schemaname || '.' || relname AS name, n_tup_ins + n_tup_upd + n_tup_del AS writes
             FROM pg_stat_user_tables`,
        );
        return {
          transactions: Number(db.transactions),
          rowsInserted: Number(db.tup_inserted),
          rowsUpdated: Number(db.tup_updated),
          rowsDeleted: Number(db.tup_deleted),
          rowsReturned: Number(db.tup_returned),
          rowsFetched: Number(db.tup_fetched),
          blocksRead: Number(db.blks_read),
          blocksHit: Number(db.blks_hit),
          tableWrites: Object.fromEntries(tables.rows.map((r) => [r.name, Number(r.writes)])),
        };
      });
    },
    async close() {
      if (worker && running) {
        worker.shutdown();
        await running;
      }
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
            }),
        ),
      );
      await native?.close();
      await connection.close();
      await simulator.close();
      await ledger.close();
      await server.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** The difference of two counter readings (after - before). */
export function counterDelta(before: DatabaseCounters, after: DatabaseCounters): DatabaseCounters {
  const tableWrites: Record<string, number> = {};
  for (const [name, n] of Object.entries(after.tableWrites)) {
    const d = n - (before.tableWrites[name] ?? 0);
    if (d > 0) tableWrites[name] = d;
  }
  return {
    transactions: after.transactions - before.transactions,
    rowsInserted: after.rowsInserted - before.rowsInserted,
    rowsUpdated: after.rowsUpdated - before.rowsUpdated,
    rowsDeleted: after.rowsDeleted - before.rowsDeleted,
    rowsReturned: after.rowsReturned - before.rowsReturned,
    rowsFetched: after.rowsFetched - before.rowsFetched,
    blocksRead: after.blocksRead - before.blocksRead,
    blocksHit: after.blocksHit - before.blocksHit,
    tableWrites,
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

export interface DatabaseMeasure {
  /** Transactions and rows per file, net of the database's idle activity over the same time. */
  perFile: Record<string, number>;
  /** Rows written per file, by table (largest first, not net of idle activity). */
  tableWritesPerFile: Record<string, number>;
  /** What the database does per second with the stack idle (timers, queue and membership reads). */
  idlePerSecond: Record<string, number>;
}

function totalsOf(c: DatabaseCounters): Record<string, number> {
  const { tableWrites: _ignored, ...totals } = c;
  return totals;
}

/**
 * Starts measuring Temporal's database for a run (postgres only; null on the dev server): first
 * its idle activity over idleMs, so that finish() can report a file's own share. finish() waits
 * for the backends to flush their statistics (they do when idle, within about ten seconds).
 */
export async function startDatabaseMeasure(
  stack: Stack,
  idleMs = 10_000,
): Promise<{ finish(files: number): Promise<DatabaseMeasure> } | null> {
  const idle0 = await stack.databaseCounters();
  if (!idle0) return null;
  const tIdle = Date.now();
  await new Promise((r) => setTimeout(r, idleMs));
  const start = (await stack.databaseCounters())!;
  const t0 = Date.now();
  const idleSeconds = (t0 - tIdle) / 1000;
  const idlePerSecond = Object.fromEntries(
    Object.entries(totalsOf(counterDelta(idle0, start))).map(([k, v]) => [k, v / idleSeconds]),
  );
  const r2 = (n: number) => Number(n.toFixed(2));
  return {
    async finish(files) {
      await new Promise((r) => setTimeout(r, 11_000));
      const end = (await stack.databaseCounters())!;
      const seconds = (Date.now() - t0) / 1000;
      const delta = counterDelta(start, end);
      return {
        perFile: Object.fromEntries(
          Object.entries(totalsOf(delta)).map(([k, v]) => [k, r2((v - (idlePerSecond[k] ?? 0) * seconds) / files)]),
        ),
        tableWritesPerFile: Object.fromEntries(
          Object.entries(delta.tableWrites)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, r2(v / files)]),
        ),
        idlePerSecond: Object.fromEntries(Object.entries(idlePerSecond).map(([k, v]) => [k, r2(v)])),
      };
    },
  };
}
