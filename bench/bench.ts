/**
 * `npm run bench -- --files N --size BYTES --latency-ms L --concurrency C [--target-kind K]`
 *
 * `--target-kind` (default `http`) is the kind of recording system every mode sends to: `http`,
 * the simulator (with L ms of latency), or a real server of kind `s3` (versitygw), `sftp`
 * (OpenSSH sshd) or `webdav` (lighttpd), started for each mode over the same protocol with the
 * same adapter (L is 0 there: the real servers add no latency of their own). The real server's
 * CPU is given per file apart (destinationCpuMsPerFile); it is not in cpuSecondsPerFile.
 *
 * Runs, one after another on the same generated files and with the same verification step
 * (PUT, then GET of the receipt judged by the preset rules):
 *   a. the old way: one file at a time;
 *   b. the ceiling: a plain pool of C concurrent send+verify, without Temporal;
 *   c. image-sync through Temporal with --max-concurrency C;
 *   d. the Temporal floor: the smallest program of image-sync's shape (a parent with a sliding
 *      window of C children, each child one local activity doing the same send + verify; no
 *      ledger, no signals, no search attributes), on a server of its own of the same kind as c's
 *      (`--server dev|postgres`), so that c/d compares programs on the same server.
 * `--pairs N` runs c and d N times in alternating order (c d, d c, c d, ...) and reports the
 * median of the pairs' ratios: the machine's drift during a run then falls on both sides.
 * Prints a table and writes JSON and an SVG chart into bench/results/. CPU is given per file for
 * the Temporal server and for the bench process (worker and simulator) separately.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBatch } from '../src/batch/start';
import { HttpRecordingSystem } from '../src/recording-system/http-adapter';
import { startSimulator } from '../src/devtools/simulator/simulator';
import { SERVER_KINDS, startDestination, type ServerKind } from '../src/devtools/destinations/destination';
import type { RecordingSystem } from '../src/recording-system/port';
import type { SyncItem } from '../src/shared';
import { scanDirectory } from '../src/source/scan';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createFloorWorker, sendAndVerify } from './floor';
import { runMain } from './run-main';
import {
  BENCH_TOKEN,
  cpuOfChangingSet,
  databaseBackendPids,
  historyEvents,
  processCpuSeconds,
  processTreeCpuSeconds,
  startDatabaseMeasure,
  startBenchServer,
  startBenchStack,
  type StackServerKind,
} from './stack';
import { median, percentile } from './stats';

/**
 * Each file workflow's time from start to close, as the server recorded them: the same measure
 * for (c) and (d). It includes the time a file's workflow task waits in the queue, which the
 * ledger's own timestamps (interaction opened to RECORDED) leave out. Visibility may lag the
 * workflows' ends by a moment: the list is read again until it holds every file, for up to 30 s.
 */
async function fileLifetimes(client: Client, query: string, files: number): Promise<number[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const latencies: number[] = [];
    for await (const wf of client.workflow.list({ query })) {
      if (wf.closeTime) latencies.push(wf.closeTime.getTime() - wf.startTime.getTime());
    }
    if (latencies.length >= files || Date.now() > deadline) return latencies.sort((a, b) => a - b);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The figures the two Temporal modes share: speed, latency, CPU by process, history events, per file. */
function temporalFigures(
  mode: 'image-sync' | 'floor',
  files: number,
  wall: number,
  latencies: number[],
  cpu: { total: number; server: number; own: number },
  events: { total: number; parent: number; largestRun: number },
): ModeResult {
  return {
    mode,
    files,
    wallSeconds: round(wall),
    filesPerSecond: round(files / wall),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    cpuSecondsPerFile: round(cpu.total / files, 5),
    serverCpuMsPerFile: round((cpu.server * 1000) / files),
    workerCpuMsPerFile: round((cpu.own * 1000) / files),
    historyEventsPerFile: round(events.total / files),
    fileWorkflowEventsPerFile: round((events.total - events.parent) / files),
    largestRunEvents: events.largestRun,
  };
}

export interface ModeResult {
  mode: 'old-way' | 'ceiling' | 'image-sync' | 'floor';
  files: number;
  wallSeconds: number;
  filesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuSecondsPerFile: number;
  /** CPU of the Temporal server, per file, in milliseconds. */
  serverCpuMsPerFile?: number;
  /** CPU of the bench process (worker and simulator), per file, in milliseconds. */
  workerCpuMsPerFile?: number;
  historyEventsPerFile?: number;
  fileWorkflowEventsPerFile?: number;
  largestRunEvents?: number;
  peakRssMb?: number;
  /** image-sync only: where it ran, and the CPU per file by role (see bench/stack.ts). */
  server?: StackServerKind;
  workerProcesses?: number;
  serverCpuSecondsPerFile?: number;
  workerCpuSecondsPerFile?: number;
  /** This process (client and simulator) when the workers run as processes of their own. */
  benchCpuSecondsPerFile?: number;
  databaseCpuSecondsPerFile?: number;
  /** Temporal's database per file (postgres only): transactions and rows, and rows written by table. */
  databasePerFile?: Record<string, number>;
  databaseTableWritesPerFile?: Record<string, number>;
  databaseIdlePerSecond?: Record<string, number>;
  /** A real server only: its CPU (sessions included) per file, in milliseconds; not in cpuSecondsPerFile. */
  destinationCpuMsPerFile?: number;
}

export type TargetKind = 'http' | ServerKind;

/** A recording system for one mode, and the CPU seconds its server has used so far (0 for the in-process simulator). */
interface ModeSystem {
  system: RecordingSystem;
  /** Another adapter to the same server. */
  make(): RecordingSystem;
  serverCpu(): Promise<number>;
}

/** The mode's recording system: the simulator (`http`) or a real server of the kind, over `dataDir`. */
async function withSystem<T>(
  kind: TargetKind,
  dataDir: string,
  latencyMs: number,
  run: (s: ModeSystem) => Promise<T>,
): Promise<T> {
  if (kind === 'http') {
    const sim = await startSimulator({ dataDir, token: BENCH_TOKEN, port: 0, latencyMs });
    try {
      return await run({
        system: new HttpRecordingSystem({ baseUrl: sim.url, token: BENCH_TOKEN }),
        make: () => new HttpRecordingSystem({ baseUrl: sim.url, token: BENCH_TOKEN }),
        serverCpu: async () => 0,
      });
    } finally {
      await sim.close();
    }
  }
  const dest = await startDestination(kind, dataDir);
  const system = dest.system();
  try {
    return await run({
      system,
      make: () => dest.system(),
      serverCpu: async () => {
        let total = 0;
        for (const pid of dest.pids()) total += await processTreeCpuSeconds(pid);
        return total;
      },
    });
  } finally {
    await system.close?.();
    await dest.close();
  }
}

/** The destination server's CPU per file, for a real server. */
function destinationFigure(kind: TargetKind, seconds: number, files: number): Partial<ModeResult> {
  return kind === 'http' ? {} : { destinationCpuMsPerFile: round((seconds * 1000) / files) };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function plainRun(
  mode: 'old-way' | 'ceiling',
  items: SyncItem[],
  concurrency: number,
  dataDir: string,
  latencyMs: number,
  kind: TargetKind,
): Promise<ModeResult> {
  return withSystem(kind, dataDir, latencyMs, async ({ system, serverCpu }) => {
    const latencies: number[] = [];
    const dest0 = await serverCpu();
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < items.length) {
        const i = next++;
        const s = performance.now();
        await sendAndVerify(system, items[i]!, `${mode}-${i}`);
        latencies.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: mode === 'old-way' ? 1 : concurrency }, lane));
    const wall = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      mode,
      files: items.length,
      wallSeconds: round(wall),
      filesPerSecond: round(items.length / wall),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      cpuSecondsPerFile: round((cpuSeconds() - cpu0) / items.length, 5),
      ...destinationFigure(kind, (await serverCpu()) - dest0, items.length),
    };
  });
}

async function temporalRun(
  items: SyncItem[],
  concurrency: number,
  latencyMs: number,
  where: { server: StackServerKind; workerProcesses: number },
  untuned: boolean,
  kind: TargetKind,
  dataDir: string,
): Promise<ModeResult> {
  if (kind !== 'http') {
    return withSystem(kind, dataDir, latencyMs, ({ make, serverCpu }) =>
      temporalRunOn(items, concurrency, latencyMs, where, untuned, kind, make, serverCpu),
    );
  }
  return temporalRunOn(items, concurrency, latencyMs, where, untuned, kind, null, async () => 0);
}

async function temporalRunOn(
  items: SyncItem[],
  concurrency: number,
  latencyMs: number,
  where: { server: StackServerKind; workerProcesses: number },
  untuned: boolean,
  kind: TargetKind,
  makeSystem: (() => RecordingSystem) | null,
  destinationCpu: () => Promise<number>,
): Promise<ModeResult> {
  const stack = await startBenchStack({
    simulator: { latencyMs },
    ...where,
    untuned,
    // The worker's adapter and the stack's own, to the one server; the stack closes both.
    ...(makeSystem ? { defaultSystem: makeSystem } : {}),
  });
  try {
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 200);
    const database = await startDatabaseMeasure(stack);
    const dest0 = await destinationCpu();
    const cpu0 = await stack.cpu();
    const t0 = performance.now();
    const { batchId, handle } = await startBatch(stack.client, items, {
      taskQueue: stack.taskQueue,
      stateDir: stack.workDir,
      policy: { maxConcurrency: concurrency, maxResends: 3 },
    });
    const result = await handle.result();
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = await stack.cpu();
    const destCpu = (await destinationCpu()) - dest0;
    clearInterval(sampler);
    const db = await database?.finish(items.length);
    const byRole = (role: 'server' | 'workers' | 'bench' | 'database') => cpu1[role] - cpu0[role];
    const serverCpu = byRole('server');
    const ownCpu = byRole('workers') + (where.workerProcesses ? byRole('bench') : 0);
    const cpu =
      byRole('server') + byRole('workers') + (where.workerProcesses ? byRole('bench') : 0) + byRole('database');
    if (result.recorded !== items.length) throw new Error(`image-sync recorded ${result.recorded} of ${items.length}`);
    const latencies = await fileLifetimes(
      stack.client,
      `WorkflowType = "syncFile" AND SyncBatchId = "${batchId}"`,
      items.length,
    );
    const events = await historyEvents(stack.client, handle.workflowId);
    const batchEvents = (await historyEvents(stack.client, handle.workflowId, { filesToo: false })).total;
    return {
      ...temporalFigures(
        'image-sync',
        items.length,
        wall,
        latencies,
        { total: cpu, server: serverCpu, own: ownCpu },
        {
          ...events,
          parent: batchEvents,
        },
      ),
      peakRssMb: Math.round(peakRss / 2 ** 20),
      ...destinationFigure(kind, destCpu, items.length),
      server: where.server,
      workerProcesses: where.workerProcesses,
      serverCpuSecondsPerFile: round(byRole('server') / items.length, 5),
      workerCpuSecondsPerFile: round(byRole('workers') / items.length, 5),
      ...(where.workerProcesses ? { benchCpuSecondsPerFile: round(byRole('bench') / items.length, 5) } : {}),
      ...(db
        ? {
            databaseCpuSecondsPerFile: round(byRole('database') / items.length, 5),
            databasePerFile: db.perFile,
            databaseTableWritesPerFile: db.tableWritesPerFile,
            databaseIdlePerSecond: db.idlePerSecond,
          }
        : {}),
    };
  } finally {
    await stack.close();
  }
}

/**
 * d. The floor: image-sync's shape at its least, on a server of its own of the same kind as
 * image-sync's (c), so that c/d compares two programs, not two servers. Its CPU is the server's,
 * the bench process's (worker and simulator) and, on PostgreSQL, the database backends'.
 */
async function floorRun(
  items: SyncItem[],
  concurrency: number,
  dataDir: string,
  latencyMs: number,
  kind: StackServerKind,
  untuned: boolean,
  targetKind: TargetKind,
): Promise<ModeResult> {
  const server = await startBenchServer(kind, path.join(dataDir, 'temporal'), { untuned });
  const database = server.database;
  const databaseCpu = database ? cpuOfChangingSet(() => databaseBackendPids(database)) : async () => 0;
  try {
    const connection = await Connection.connect({ address: server.address });
    const native = await NativeConnection.connect({ address: server.address });
    try {
      return await withSystem(targetKind, dataDir, latencyMs, async ({ system, serverCpu: destinationCpu }) => {
        const taskQueue = `floor-${Date.now()}`;
        const worker = await createFloorWorker({ connection: native, taskQueue, system });
        const running = worker.run();
        try {
          const client = new Client({ connection });
          const server0 = await processCpuSeconds(server.pid);
          const database0 = await databaseCpu();
          const dest0 = await destinationCpu();
          const own0 = cpuSeconds();
          const t0 = performance.now();
          const workflowId = `floor-${Date.now()}`;
          const done = await client.workflow.execute('floorBatch', {
            workflowId,
            taskQueue,
            args: [
              {
                root: path.dirname(path.dirname(items[0]!.sourcePath)),
                files: items.map((i) => [i.orderId, i.fileName] as [string, string]),
                concurrency,
                prefix: workflowId,
              },
            ],
          });
          const wall = (performance.now() - t0) / 1000;
          const ownCpu = cpuSeconds() - own0;
          const serverCpu = (await processCpuSeconds(server.pid)) - server0;
          const dbCpu = (await databaseCpu()) - database0;
          const destCpu = (await destinationCpu()) - dest0;
          if (done !== items.length) throw new Error(`the floor finished ${String(done)} of ${items.length}`);
          const events = await historyEvents(client, workflowId);
          const parentEvents = (await historyEvents(client, workflowId, { filesToo: false })).total;
          const latencies = await fileLifetimes(client, `WorkflowId STARTS_WITH "${workflowId}/"`, items.length);
          return {
            ...temporalFigures(
              'floor',
              items.length,
              wall,
              latencies,
              { total: ownCpu + serverCpu + dbCpu, server: serverCpu, own: ownCpu },
              { ...events, parent: parentEvents },
            ),
            server: kind,
            ...destinationFigure(targetKind, destCpu, items.length),
            ...(server.database ? { databaseCpuSecondsPerFile: round(dbCpu / items.length, 5) } : {}),
          };
        } finally {
          worker.shutdown();
          await running;
        }
      });
    } finally {
      await native.close();
      await connection.close();
    }
  } finally {
    await server.stop();
  }
}

/** The run of a mode whose files/s is the median of its runs (the lower middle one of an even count). */
export function medianRun(runs: ModeResult[]): ModeResult {
  const sorted = [...runs].sort((a, b) => a.filesPerSecond - b.filesPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** One pair's ratios of image-sync (c) to the floor (d), each pair taken side by side. */
export interface PairRatio {
  order: 'cd' | 'dc';
  cOverD: number;
  cpuCOverD: number;
}

/**
 * The ratios the bench reports. With several pairs, c/d and its CPU ratio are the medians of the
 * pairs' own ratios (each pair ran back to back), and c/a, c/b use the median run of c.
 */
export function pairRatios(
  pairs: { c: ModeResult; d?: ModeResult }[],
  plain: { oldWay?: ModeResult; ceiling: ModeResult },
) {
  const each: PairRatio[] = pairs.flatMap(({ c, d }, i) =>
    d
      ? [
          {
            order: i % 2 === 0 ? 'cd' : 'dc',
            cOverD: round(c.filesPerSecond / d.filesPerSecond),
            cpuCOverD: round(c.cpuSecondsPerFile / d.cpuSecondsPerFile),
          } satisfies PairRatio,
        ]
      : [],
  );
  const c = medianRun(pairs.map((p) => p.c));
  return {
    cOverA: plain.oldWay ? round(c.filesPerSecond / plain.oldWay.filesPerSecond) : null,
    cOverB: round(c.filesPerSecond / plain.ceiling.filesPerSecond),
    cOverD: each.length ? round(median(each.map((r) => r.cOverD))) : null,
    /** CPU per file (server + bench process) of image-sync over the floor's. */
    cpuCOverD: each.length ? round(median(each.map((r) => r.cpuCOverD))) : null,
    /** CPU per file of image-sync (Temporal server, worker, ledger) over the plain pool's. */
    cpuCOverB: round(c.cpuSecondsPerFile / plain.ceiling.cpuSecondsPerFile),
    pairs: each,
  };
}

function round(n: number, digits = 2): number {
  return Number(n.toFixed(digits));
}

export function svgChart(results: ModeResult[], title: string): string {
  const width = 640;
  const barArea = 420;
  const max = Math.max(...results.map((r) => r.filesPerSecond), 1);
  const rows = results
    .map((r, i) => {
      const y = 60 + i * 70;
      const w = Math.max(2, Math.round((r.filesPerSecond / max) * barArea));
      return [
        `<text x="10" y="${y + 22}" font-size="14">${r.mode}</text>`,
        `<rect x="110" y="${y}" width="${w}" height="32" fill="${['#999', '#4a90d9', '#2e8b57', '#c77c02'][i] ?? '#666'}"/>`,
        `<text x="${118 + w}" y="${y + 21}" font-size="13">${r.filesPerSecond} files/s · p50 ${r.p50Ms} ms · p99 ${r.p99Ms} ms</text>`,
      ].join('');
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width + 200}" height="${80 + results.length * 70}" font-family="sans-serif">
<text x="10" y="30" font-size="16" font-weight="bold">${title}</text>
${rows}
</svg>
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '500' },
      size: { type: 'string', default: '102400' },
      /** Default 100 for the simulator, 0 for a real server (which takes no other). */
      'latency-ms': { type: 'string' },
      'target-kind': { type: 'string', default: 'http' },
      concurrency: { type: 'string', default: '64' },
      out: { type: 'string', default: path.join(__dirname, 'results') },
      'skip-old-way': { type: 'boolean', default: false },
      'skip-floor': { type: 'boolean', default: false },
      /** Run the dev servers as the Temporal CLI ships them, without the project's tuning. */
      untuned: { type: 'boolean', default: false },
      server: { type: 'string', default: 'dev' },
      'worker-processes': { type: 'string', default: '0' },
      /** Runs of c and d, in alternating order (c d, d c, ...); the ratios are the pairs' medians. */
      pairs: { type: 'string', default: '1' },
    },
  });
  if (values.server !== 'dev' && values.server !== 'postgres') throw new Error('--server must be dev or postgres');
  const server: StackServerKind = values.server === 'postgres' ? 'postgres' : 'dev';
  const where = { server, workerProcesses: Number(values['worker-processes']) };
  if (!Number.isInteger(where.workerProcesses) || where.workerProcesses < 0)
    throw new Error('--worker-processes must be a whole number');
  const targetKind = values['target-kind'] as TargetKind;
  if (targetKind !== 'http' && !(SERVER_KINDS as readonly string[]).includes(targetKind))
    throw new Error(`--target-kind must be one of http, ${SERVER_KINDS.join(', ')}`);
  const files = Number(values.files);
  const size = Number(values.size);
  const latencyMs = Number(values['latency-ms'] ?? (targetKind === 'http' ? '100' : '0'));
  if (targetKind !== 'http' && latencyMs !== 0)
    throw new Error('--latency-ms: a real server adds no latency of its own; only 0 with --target-kind ' + targetKind);
  if (targetKind !== 'http' && where.workerProcesses)
    throw new Error('--worker-processes: the worker runs in this process with --target-kind ' + targetKind);
  const concurrency = Number(values.concurrency);
  const pairCount = Number(values.pairs);
  const untuned = values.untuned;
  for (const [name, v] of Object.entries({ files, size, latencyMs, concurrency, pairs: pairCount })) {
    if (!Number.isInteger(v) || v < (name === 'latencyMs' ? 0 : 1)) throw new Error(`--${name} must be a whole number`);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const work = path.join(values.out, `work-${stamp}`);
  console.error(`generating ${files} files of ${size} bytes...`);
  await generateBlobFiles(path.join(work, 'src'), { count: files, size });
  const { items } = await scanDirectory(path.join(work, 'src'));

  const results: ModeResult[] = [];
  if (!values['skip-old-way']) {
    console.error('a. the old way: one file at a time...');
    results.push(await plainRun('old-way', items, 1, path.join(work, 'rs-a'), latencyMs, targetKind));
  }
  console.error(`b. the ceiling: a pool of ${concurrency} without Temporal (${targetKind})...`);
  results.push(await plainRun('ceiling', items, concurrency, path.join(work, 'rs-b'), latencyMs, targetKind));
  const cLabel = `c. image-sync through Temporal (${where.server} server, ${where.workerProcesses || 'in-process'} worker${where.workerProcesses === 1 ? '' : 's'}), max concurrency ${concurrency}...`;
  const dLabel = `d. the Temporal floor (${where.server} server): ${concurrency} children in flight, one local activity each...`;
  // Each run has a recording system of its own (a real server keeps what an earlier run sent).
  const runC = async (i: number) => {
    console.error(cLabel);
    return temporalRun(items, concurrency, latencyMs, where, untuned, targetKind, path.join(work, `rs-c${i}`));
  };
  const runD = async (i: number) => {
    console.error(dLabel);
    return floorRun(items, concurrency, path.join(work, `rs-d${i}`), latencyMs, where.server, untuned, targetKind);
  };
  // Pairs alternate their order (c d, d c, c d, ...): a drift of the machine's speed during the
  // run then lands on both sides of the ratio, not always on the one that runs second.
  const pairs: { c: ModeResult; d?: ModeResult }[] = [];
  for (let i = 0; i < pairCount; i++) {
    if (values['skip-floor']) pairs.push({ c: await runC(i) });
    else if (i % 2 === 0) {
      const c = await runC(i);
      pairs.push({ c, d: await runD(i) });
    } else {
      const d = await runD(i);
      pairs.push({ c: await runC(i), d });
    }
  }
  for (const { c, d } of pairs) results.push(c, ...(d ? [d] : []));

  const ratios = pairRatios(pairs, {
    oldWay: results.find((r) => r.mode === 'old-way'),
    ceiling: results.find((r) => r.mode === 'ceiling')!,
  });
  const by = {
    'image-sync': medianRun(pairs.map((p) => p.c)),
    floor: pairs[0]!.d ? medianRun(pairs.map((p) => p.d!)) : undefined,
  };
  const report = {
    at: new Date().toISOString(),
    params: { files, size, latencyMs, concurrency, targetKind, ...where, devServerTuning: !untuned },
    machine: {
      cpus: (await import('node:os')).cpus().length,
      node: process.version,
      loadAverage: (await import('node:os')).loadavg().map((l) => round(l)),
    },
    results,
    ratios,
  };
  await mkdir(values.out, { recursive: true });
  const base = path.join(
    values.out,
    `bench-${stamp}-${targetKind}-n${files}-l${latencyMs}-c${concurrency}-${where.server}-w${where.workerProcesses}`,
  );
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(
    `${base}.svg`,
    svgChart(
      [
        ...results.filter((r) => r.mode === 'old-way' || r.mode === 'ceiling'),
        by['image-sync'],
        ...(by.floor ? [by.floor] : []),
      ],
      `${targetKind}: ${files} files of ${size} B, latency ${latencyMs} ms, concurrency ${concurrency}`,
    ),
  );
  const { rm } = await import('node:fs/promises');
  await rm(work, { recursive: true, force: true });

  console.table(
    results.map(({ databasePerFile: _d, databaseTableWritesPerFile: _t, databaseIdlePerSecond: _i, ...r }) => r),
  );
  const c = by['image-sync'];
  if (c?.databasePerFile) {
    console.log('Temporal database per file (net of idle):', c.databasePerFile);
    console.log('rows written per file by table:', c.databaseTableWritesPerFile);
    console.log('idle, per second:', c.databaseIdlePerSecond);
  }
  console.log(
    `c/a = ${ratios.cOverA ?? 'n/a'}   c/b = ${ratios.cOverB}   c/d = ${ratios.cOverD ?? 'n/a'}   CPU per file c/b = ${ratios.cpuCOverB}   CPU per file c/d = ${ratios.cpuCOverD ?? 'n/a'}`,
  );
  if (ratios.pairs.length > 1) {
    console.log(
      `pairs (order: c/d, CPU per file c/d): ${ratios.pairs.map((r) => `${r.order}: ${r.cOverD}, ${r.cpuCOverD}`).join(';  ')}`,
    );
  }
  console.log(`load average at the end: ${report.machine.loadAverage.join(' ')}`);
  console.log(`wrote ${base}.json and ${base}.svg`);
}

if (require.main === module) runMain(main);
