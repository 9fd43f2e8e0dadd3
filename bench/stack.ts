/**
 * The image-sync stack of src/devtools/stack.ts for benchmarks and measured runs, on the pinned
 * dev server or the pinned Temporal server on a PostgreSQL database of its own, with the workers
 * inside this process or as separate `image-sync worker` processes. Every process whose CPU a
 * file costs is listed by role, so CPU per file can be summed from /proc.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { startStack, type Stack, type StackServer } from '../src/devtools/stack';
import { mapWithConcurrency } from '../src/source/concurrency';
import type { SimulatorOptions } from '../src/devtools/simulator/options';
import type { RecordingSystem } from '../src/recording-system/port';
import { startDevServer } from '../src/temporal/dev-server';
import { startPostgresServer } from '../src/temporal/postgres-server';
import type { SyncWorkerOptions } from '../src/worker';
import { startClosedOnSignal } from './run-main';

export const BENCH_TOKEN = 'bench-token';

export type StackServerKind = 'dev' | 'postgres';

/** The PostgreSQL server the postgres stack creates its database on (trust auth here). */
export const BENCH_PG_URL =
  process.env.IMAGE_SYNC_BENCH_PG_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchServer extends StackServer {
  kind: StackServerKind;
  pid: number;
  /** The database holding Temporal's persistence and visibility (postgres only). */
  database: string | null;
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

export interface BenchStack extends Stack {
  server: BenchServer;
  /** Every PID whose CPU counts, by role; the database's backends are listed at call time. */
  pids(): Promise<{ server: number[]; workers: number[]; bench: number[]; database: number[] }>;
  cpu(): Promise<StackCpu>;
  /** null on the dev server. */
  databaseCounters(): Promise<DatabaseCounters | null>;
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

/** CPU seconds a process and the children it has waited for have used, from /proc (Linux); 0 when it is gone. */
export async function processTreeCpuSeconds(pid: number): Promise<number> {
  try {
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    // utime + stime + cutime + cstime, in clock ticks of 1/100 s
    return (Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14])) / 100;
  } catch {
    return 0;
  }
}

/**
 * The CPU seconds of a set of processes that changes between readings (a PostgreSQL database's
 * backends, which end as connections close), as a total that never falls: a process that has
 * ended keeps the CPU of its last reading in the total. A plain sum of the processes present at
 * each reading lost the CPU of every backend that ended between two readings, and gave negative
 * figures. What a process used between its last reading and its end is not counted.
 */
export function cpuOfChangingSet(
  list: () => Promise<number[]>,
  read: (pid: number) => Promise<number> = processCpuSeconds,
): () => Promise<number> {
  let last = new Map<number, number>();
  let ended = 0;
  return async () => {
    const now = new Map<number, number>();
    for (const pid of await list()) {
      // A process gone between the listing and its reading reads 0: its last reading stands.
      now.set(pid, Math.max(await read(pid), last.get(pid) ?? 0));
    }
    for (const [pid, cpu] of last) if (!now.has(pid)) ended += cpu;
    last = now;
    let total = ended;
    for (const cpu of now.values()) total += cpu;
    return total;
  };
}

/** CPU seconds the processes have used, summed. */
export async function sumCpu(pids: number[]): Promise<number> {
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

/** The PIDs of the PostgreSQL backends serving a database (those whose CPU a run costs there). */
export async function databaseBackendPids(database: string): Promise<number[]> {
  return withPg(database, async (pg) =>
    (
      await pg.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [database],
      )
    ).rows.map((r) => r.pid),
  );
}

/**
 * A Temporal server of the given kind, on its own, started the way the bench stack starts it:
 * the dev server (tuned unless asked otherwise), or the Temporal server on a PostgreSQL database
 * made for it. The floor (bench mode d) runs on it, so that it is measured on the same kind of
 * server as image-sync.
 */
export async function startBenchServer(
  kind: StackServerKind,
  workDir: string,
  opts: { untuned?: boolean } = {},
): Promise<StackServer & { pid: number; database: string | null }> {
  const { started: server, close } = await startClosedOnSignal<
    StackServer & { pid: number; database: string | null },
    void
  >(
    kind === 'postgres'
      ? startPostgresStackServer(workDir)
      : startDevServer({ dbFile: null, port: 0, uiPort: null, logLevel: 'error', tuned: !opts.untuned }).then(
          (dev) => ({ address: dev.address, uiUrl: null, pid: dev.pid, database: null, stop: () => dev.stop() }),
        ),
    (started) => () => started.stop(),
  );
  return { ...server, stop: close };
}

/** The pinned Temporal server on a PostgreSQL database made for it, dropped when it stops. */
async function startPostgresStackServer(workDir: string): Promise<StackServer & { pid: number; database: string }> {
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
      address: server.address,
      uiUrl: null,
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

export interface BenchStackOptions {
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
  /** The default target's adapter instead of the simulator's (a real server of another kind). */
  defaultSystem?: () => RecordingSystem;
}

/** The stack of src/devtools/stack.ts, with the bench's server choice and its CPU and database readings. */
export async function startBenchStack(opts: BenchStackOptions = {}): Promise<BenchStack> {
  const kind = opts.server ?? 'dev';
  let database: string | null = null;
  const workerProcesses = opts.workerProcesses ?? 0;
  const { started: stack, close } = await startClosedOnSignal(
    startStack({
      temporal:
        kind === 'dev'
          ? { devServer: { tuned: !opts.untuned } }
          : {
              start: async (workDir) => {
                const server = await startPostgresStackServer(workDir);
                database = server.database;
                return server;
              },
            },
      tempDirPrefix: 'image-sync-bench-',
      taskQueue: `bench-${randomUUID().slice(0, 8)}`,
      token: BENCH_TOKEN,
      ledgerUrl: opts.ledgerUrl,
      simulator: opts.simulator,
      ...(opts.defaultSystem ? { defaultSystem: opts.defaultSystem } : {}),
      requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
      worker:
        workerProcesses === 0
          ? { kind: 'in-process', tuning: opts.tuning }
          : { kind: 'processes', count: workerProcesses, tuning: opts.tuning },
    }),
    // Bound now: the returned stack's close is the one this returns.
    (started) => started.close.bind(started),
  );
  const databasePids = async (): Promise<number[]> => (database ? databaseBackendPids(database) : []);
  const databaseCpu = cpuOfChangingSet(databasePids);
  const pids = async () => ({
    server: [stack.server.pid ?? -1],
    workers: stack.workerPids.length ? stack.workerPids : [process.pid],
    bench: [process.pid],
    database: await databasePids(),
  });
  return Object.assign(stack, {
    close,
    server: { ...stack.server, pid: stack.server.pid ?? -1, kind, database },
    pids,
    async cpu() {
      const p = await pids();
      const own = process.cpuUsage();
      const bench = (own.user + own.system) / 1e6;
      return {
        server: await sumCpu(p.server),
        workers: stack.workerPids.length ? await sumCpu(p.workers) : bench,
        bench,
        database: await databaseCpu(),
      };
    },
    databaseCounters: () => (database ? readDatabaseCounters(database) : Promise.resolve(null)),
  });
}

async function readDatabaseCounters(database: string): Promise<DatabaseCounters> {
  return withPg(database, async (pg) => {
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

/**
 * Events in every workflow history of a batch: the batch's runs, and its files unless filesToo is
 * false. Every run is listed once from visibility (the batch's by its id, the files' by their id
 * prefix; each listed execution is one run) and the histories are read a few at a time: read one
 * by one with a listing per file, a 3,000-file batch on the PostgreSQL server took minutes.
 */
export async function historyEvents(
  client: Client,
  batchWorkflowId: string,
  opts: { filesToo?: boolean } = {},
): Promise<{ total: number; largestRun: number; workflows: number }> {
  const runs: { workflowId: string; runId: string }[] = [];
  const queries = [`WorkflowId = "${batchWorkflowId}"`];
  if (opts.filesToo !== false) queries.push(`WorkflowId STARTS_WITH "${batchWorkflowId}/"`);
  for (const query of queries)
    for await (const wf of client.workflow.list({ query })) runs.push({ workflowId: wf.workflowId, runId: wf.runId });
  const lengths = await mapWithConcurrency(runs, 8, async (run) => {
    const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    return history.events?.length ?? 0;
  });
  const total = lengths.reduce((sum, n) => sum + n, 0);
  const largestRun = lengths.reduce((most, n) => Math.max(most, n), 0);
  return { total, largestRun, workflows: runs.length };
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
  stack: BenchStack,
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
