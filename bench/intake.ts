/**
 * `npm run bench:intake -- [--rates 10,50,100] [--seconds 20] [--batch-files 10000]
 *   [--saturation-files 2000] [--per-submission 100] [--concurrency 64] [--repeat 3]
 *   [--size 1024] [--latency-ms 0] [--drain-timeout-s 300] [--worker-processes 1] [--skip-latency]
 *   [--skip-saturation] [--out DIR]`
 *
 * The real-time intake measured over HTTP, on the pinned dev server, with the intake server, its
 * clients and the simulator in this process and the worker in `--worker-processes` processes of
 * its own (0: in this process too, where the clients' requests compete with it) (docs/intake.md).
 *
 * 1. Latency: for each rate R, files are submitted one per request (`POST
 *    /v1/orders/{orderId}/files`, the way a platform hands over each file as it appears) at R
 *    requests per second for `--seconds`, open loop: a request is sent at its time whatever the
 *    earlier ones are doing. A file's latency runs from its request being sent to its ledger row
 *    turning RECORDED. Measured twice, each time on a stack of its own: alone, and with a batch of
 *    `--batch-files` files running to the same target at `--concurrency` (started first, measured
 *    once it is under way). A 429 is retried after its Retry-After and counted; the latency still
 *    runs from the first attempt. A window whose files are not all RECORDED within
 *    `--drain-timeout-s` of its last request ends there, with the count it reached, and the
 *    higher rates are not run on that stack.
 * 2. Saturation: the same `--saturation-files` files delivered by a batch (the batch path's c of
 *    `npm run bench`) and by the intake (submissions of `--per-submission` files, as many as it
 *    takes, retried after each 429), each on a fresh stack, back to back, `--repeat` times. Both run
 *    with max concurrency `--concurrency`. Their files/s, CPU per file and history events per
 *    file, and intake/c with the median over the repeats.
 *
 * Prints tables and writes JSON into bench/results/.
 */
import { setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBatch } from '../src/batch/start';
import { createCodecAuthenticator } from '../src/codec/auth';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';
import { resolveSourceRoots } from '../src/intake/http/confine';
import { startIntakeServer, type IntakeServer } from '../src/intake/http/server';
import { createIntakeBackend } from '../src/intake/temporal-backend';
import type { IntakeBackend } from '../src/intake/backend';
import { intakeBatchId, intakeWorkflowIdOf } from '../src/intake/workflow-api';
import type { SyncItem } from '../src/shared';
import { scanDirectory } from '../src/source/scan';
import { historyEvents, startBenchStack, type BenchStack } from './stack';
import { runMain } from './run-main';
import { median, percentile } from './stats';

const TOKEN = 'bench-intake-token-0123456789abcdef';
const TARGET = 'default';
/** How long a saturation run's files may take to be RECORDED before the run gives up. */
const DRAIN_TIMEOUT_MS = 15 * 60_000;

interface Options {
  rates: number[];
  seconds: number;
  batchFiles: number;
  saturationFiles: number;
  perSubmission: number;
  concurrency: number;
  repeat: number;
  size: number;
  latencyMs: number;
  /** How long a latency window's files may take to be accepted and RECORDED after its last request. */
  drainTimeoutMs: number;
  /** `image-sync worker` processes (0: the worker in this process, beside the intake server and the clients). */
  workerProcesses: number;
}

interface LatencyRow {
  rate: number;
  withBatch: boolean;
  files: number;
  /** Requests per second actually sent (the machine may fall behind the schedule). */
  sentPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The 202's own time: the submission durable in Temporal. */
  acceptP50Ms: number;
  acceptP99Ms: number;
  /** 429 answers (each retried after its Retry-After). */
  saturated: number;
  /** Batch files recorded per second over the window (with a batch only). */
  batchFilesPerSecond?: number;
  /** Whether the batch was still running when the window's last file was RECORDED. */
  batchRanThroughout?: boolean;
  /** Files RECORDED within the drain timeout; the percentiles are of these only when it is short of `files`. */
  recorded: number;
}

interface SaturationRun {
  mode: 'batch' | 'intake';
  files: number;
  wallSeconds: number;
  filesPerSecond: number;
  cpuMsPerFile: number;
  historyEventsPerFile: number;
  saturated?: number;
}

function numberList(text: string, name: string): number[] {
  const values = text.split(',').map(Number);
  if (values.some((v) => !(v > 0))) throw new Error(`--${name} takes positive numbers, comma-separated`);
  return values;
}

function positive(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
  return n;
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An intake server in front of the stack's intake backend, confined to `root`. */
async function intakeOn(
  stack: BenchStack,
  root: string,
  concurrency: number,
): Promise<{ server: IntakeServer; backend: IntakeBackend }> {
  const backend = createIntakeBackend({
    client: stack.client,
    ledger: stack.ledger,
    taskQueue: stack.taskQueue,
    policy: { maxConcurrency: concurrency, maxResends: 3 },
  });
  const server = await startIntakeServer({
    backend,
    authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
    roots: await resolveSourceRoots([root]),
    port: 0,
    host: '127.0.0.1',
    targets: { defaultTarget: TARGET, names: [TARGET] },
  });
  return { server, backend };
}

/**
 * One submission, retried after each 429 (and each 503) until it is accepted; returns how many
 * times it was refused and when the 202 came.
 */
async function submit(
  base: string,
  orderId: string,
  key: string,
  files: { fileName: string; path: string }[],
  signal?: AbortSignal,
): Promise<{ saturated: number; acceptedAt: number }> {
  let saturated = 0;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${base}/v1/orders/${orderId}/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ files }),
        signal,
      });
      text = await res.text();
    } catch (err) {
      // Given up by the run (the window's drain timeout): not accepted.
      if (signal?.aborted) return { saturated, acceptedAt: NaN };
      throw err;
    }
    if (res.status === 202) return { saturated, acceptedAt: Date.now() };
    if (signal?.aborted) return { saturated, acceptedAt: NaN };
    if ((res.status === 429 || res.status === 503) && attempt < 100) {
      if (res.status === 429) saturated += 1;
      await sleep(Number(res.headers.get('retry-after') ?? '1') * 1000);
      continue;
    }
    throw new Error(`submission ${key} answered ${res.status}: ${text}`);
  }
}

/** Files of the root as a request names them: by name and by path relative to the root. */
function requestFiles(items: SyncItem[], root: string) {
  return items.map((i) => ({ fileName: i.fileName, path: path.relative(root, i.sourcePath) }));
}

/**
 * Waits until `count` files of the ledger batch are RECORDED (read by a count, once a second, to
 * cost the measured process little), then returns the RECORDED rows whose order starts with `orderPrefix`.
 */
async function recordedRows(
  stack: BenchStack,
  batchId: string,
  orderPrefix: string,
  count: number,
  before = 0,
  timeout: { ms: number; partial: boolean } = { ms: DRAIN_TIMEOUT_MS, partial: false },
) {
  const deadline = Date.now() + timeout.ms;
  for (;;) {
    const recorded = await recordedCount(stack, batchId);
    if (recorded - before >= count) break;
    if (Date.now() > deadline) {
      if (timeout.partial) break;
      throw new Error(`${orderPrefix}: ${recorded - before} of ${count} files RECORDED after ${timeout.ms / 1000} s`);
    }
    await sleep(1000);
  }
  return (await stack.ledger.latestInteractions(batchId, { status: 'RECORDED' })).filter((r) =>
    r.order_id.startsWith(orderPrefix),
  );
}

async function recordedCount(stack: BenchStack, batchId: string): Promise<number> {
  return (await stack.ledger.batchCounts(batchId)).files.RECORDED ?? 0;
}

/** When the last of the rows turned RECORDED (the ledger's clock is this process's). */
function lastUpdate(rows: { updated_at: string }[]): number {
  // A loop, not Math.max(...): spreading more than about 100,000 arguments overflows the stack.
  let last = -Infinity;
  for (const r of rows) last = Math.max(last, Date.parse(r.updated_at));
  return last;
}

async function latencyRuns(opts: Options, withBatch: boolean, onRow: (row: LatencyRow) => void): Promise<LatencyRow[]> {
  const stack = await startBenchStack({
    simulator: { latencyMs: opts.latencyMs },
    workerProcesses: opts.workerProcesses,
  });
  const rows: LatencyRow[] = [];
  try {
    const root = path.join(stack.workDir, 'realtime');
    const perRate = opts.rates.map((r) => Math.round(r * opts.seconds));
    await generateBlobFiles(root, {
      count: perRate.reduce((a, b) => a + b, 0),
      size: opts.size,
      filesPerOrder: 1,
      seed: 7,
    });
    const { items } = await scanDirectory(root);
    const { server, backend } = await intakeOn(stack, root, opts.concurrency);
    try {
      let batch: { batchId: string; done: Promise<unknown>; finished: boolean; end(): Promise<void> } | null = null;
      if (withBatch) {
        const dir = path.join(stack.workDir, 'bulk');
        await generateBlobFiles(dir, { count: opts.batchFiles, size: opts.size, filesPerOrder: 100 });
        const bulk = (await scanDirectory(dir)).items;
        const { batchId, handle } = await startBatch(stack.client, bulk, {
          taskQueue: stack.taskQueue,
          stateDir: stack.workDir,
          policy: { maxConcurrency: opts.concurrency, maxResends: 3 },
        });
        const b = {
          batchId,
          done: handle.result(),
          finished: false,
          // Ended before the stack closes, so that nothing waits on its result over a closed connection.
          async end() {
            if (!this.finished)
              await handle.terminate('the intake bench is done with this stack').catch(() => undefined);
            await this.done.catch(() => undefined);
          },
        };
        void b.done.then(
          () => (b.finished = true),
          () => (b.finished = true),
        );
        batch = b;
        // Under way: its window full and files being recorded.
        while ((await recordedCount(stack, batchId)) < Math.min(200, opts.batchFiles / 10)) await sleep(500);
      }
      let next = 0;
      for (const [index, rate] of opts.rates.entries()) {
        const mine = items.slice(next, next + perRate[index]!);
        next += mine.length;
        const prefix = `rt${rate}${withBatch ? 'b' : 'a'}-`;
        console.error(`intake at ${rate} files/s for ${opts.seconds} s${withBatch ? ', beside the batch' : ''}...`);
        const batchAt0 = batch ? await recordedCount(stack, batch.batchId) : 0;
        const intakeAt0 = await recordedCount(stack, intakeBatchId(TARGET));
        const sentAt = new Map<string, number>();
        const answers: Promise<{ saturated: number; acceptedAt: number }>[] = [];
        const giveUp = new AbortController();
        // Every request of the window listens to it.
        setMaxListeners(0, giveUp.signal);
        const t0 = Date.now();
        for (const [i, item] of mine.entries()) {
          const due = t0 + (i * 1000) / rate;
          if (due > Date.now()) await sleep(due - Date.now());
          const orderId = `${prefix}${String(i).padStart(6, '0')}`;
          sentAt.set(orderId, Date.now());
          answers.push(submit(server.url, orderId, `${orderId}-k`, requestFiles([item], root), giveUp.signal));
        }
        // The schedule's span: n requests at R/s take n/R seconds when the machine keeps up.
        const sentSeconds = (Date.now() - t0) / 1000 + 1 / rate;
        // Bounded: a server that stops answering ends the window with what was RECORDED by then.
        const giveUpAt = setTimeout(() => giveUp.abort(), opts.drainTimeoutMs);
        const recorded = await recordedRows(stack, intakeBatchId(TARGET), prefix, mine.length, intakeAt0, {
          ms: opts.drainTimeoutMs,
          partial: true,
        });
        giveUp.abort();
        clearTimeout(giveUpAt);
        const accepted = await Promise.all(answers);
        const lastRecorded = lastUpdate(recorded);
        const latencies = recorded.map((r) => Date.parse(r.updated_at) - sentAt.get(r.order_id)!);
        const acceptTimes = [...sentAt.values()]
          .map((s, i) => accepted[i]!.acceptedAt - s)
          .filter((t) => Number.isFinite(t));
        const row: LatencyRow = {
          rate,
          withBatch,
          files: mine.length,
          sentPerSecond: round(mine.length / Math.max(sentSeconds, 1e-3), 1),
          p50Ms: Math.round(percentile(latencies, 50)),
          p99Ms: Math.round(percentile(latencies, 99)),
          maxMs: Math.round(percentile(latencies, 100)),
          acceptP50Ms: Math.round(percentile(acceptTimes, 50)),
          acceptP99Ms: Math.round(percentile(acceptTimes, 99)),
          saturated: accepted.reduce((n, a) => n + a.saturated, 0),
          recorded: recorded.length,
        };
        if (batch) {
          const batchRows = await stack.ledger.latestInteractions(batch.batchId, { status: 'RECORDED' });
          row.batchFilesPerSecond = round((batchRows.length - batchAt0) / Math.max((Date.now() - t0) / 1000, 1e-3), 1);
          row.batchRanThroughout = !batch.finished || lastUpdate(batchRows) >= lastRecorded;
        }
        rows.push(row);
        onRow(row);
        if (recorded.length < mine.length) {
          console.error(
            `only ${recorded.length} of ${mine.length} files RECORDED within ${opts.drainTimeoutMs / 1000} s: the higher rates are not run on this stack`,
          );
          break;
        }
      }
      await batch?.end();
    } finally {
      // Requests still taking a submission end by their submit timeout (20 s): let them.
      await server.stop(30_000);
      await backend.close();
    }
  } finally {
    // A server that stopped answering may not stop gracefully either.
    await Promise.race([stack.close(), sleep(60_000)]);
  }
  return rows;
}

async function saturationRun(opts: Options, mode: 'batch' | 'intake'): Promise<SaturationRun> {
  const stack = await startBenchStack({
    simulator: { latencyMs: opts.latencyMs },
    workerProcesses: opts.workerProcesses,
  });
  try {
    const root = path.join(stack.workDir, 'src');
    await generateBlobFiles(root, { count: opts.saturationFiles, size: opts.size, filesPerOrder: opts.perSubmission });
    const { items } = await scanDirectory(root);
    console.error(`${mode}: ${items.length} files at max concurrency ${opts.concurrency}...`);
    const cpu0 = await stack.cpu();
    let wall: number;
    let workflowId: string;
    let saturated: number | undefined;
    if (mode === 'batch') {
      const t0 = Date.now();
      const { batchId, handle } = await startBatch(stack.client, items, {
        taskQueue: stack.taskQueue,
        stateDir: stack.workDir,
        policy: { maxConcurrency: opts.concurrency, maxResends: 3 },
      });
      const result = await handle.result();
      if (result.recorded !== items.length) throw new Error(`the batch recorded ${result.recorded} of ${items.length}`);
      // To its last file RECORDED, as the intake's: the batch's own ending is not counted.
      wall = (lastUpdate(await stack.ledger.latestInteractions(batchId, { status: 'RECORDED' })) - t0) / 1000;
      workflowId = handle.workflowId;
    } else {
      const { server, backend } = await intakeOn(stack, root, opts.concurrency);
      try {
        const byOrder = new Map<string, SyncItem[]>();
        for (const item of items) byOrder.set(item.orderId, [...(byOrder.get(item.orderId) ?? []), item]);
        const t0 = Date.now();
        // Every order's submission at once: the intake takes what it can hold and answers 429 for the rest.
        const answers = await Promise.all(
          [...byOrder].map(([orderId, files]) =>
            submit(server.url, orderId, `${orderId}-k`, requestFiles(files, root)),
          ),
        );
        saturated = answers.reduce((n, a) => n + a.saturated, 0);
        const recorded = await recordedRows(stack, intakeBatchId(TARGET), '', items.length);
        wall = (lastUpdate(recorded) - t0) / 1000;
        workflowId = intakeWorkflowIdOf(intakeBatchId(TARGET));
      } finally {
        await server.stop(30_000);
        await backend.close();
      }
    }
    const cpu1 = await stack.cpu();
    // With worker processes, this process (intake server, client, simulator) counts apart.
    const cpu =
      cpu1.server - cpu0.server + (cpu1.workers - cpu0.workers) + (opts.workerProcesses ? cpu1.bench - cpu0.bench : 0);
    const events = await historyEvents(stack.client, workflowId);
    return {
      mode,
      files: items.length,
      wallSeconds: round(wall),
      filesPerSecond: round(items.length / wall, 1),
      cpuMsPerFile: round((cpu * 1000) / items.length, 1),
      historyEventsPerFile: round(events.total / items.length),
      ...(saturated === undefined ? {} : { saturated }),
    };
  } finally {
    await stack.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: '10,50,100' },
      seconds: { type: 'string', default: '20' },
      'batch-files': { type: 'string', default: '10000' },
      'saturation-files': { type: 'string', default: '2000' },
      'per-submission': { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '64' },
      repeat: { type: 'string', default: '3' },
      size: { type: 'string', default: '1024' },
      'latency-ms': { type: 'string', default: '0' },
      'drain-timeout-s': { type: 'string', default: '300' },
      'worker-processes': { type: 'string', default: '1' },
      'skip-latency': { type: 'boolean', default: false },
      'skip-saturation': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  const latencyMs = Number(values['latency-ms']);
  if (!(latencyMs >= 0)) throw new Error('--latency-ms must be 0 or more');
  const workerProcesses = Number(values['worker-processes']);
  if (!Number.isInteger(workerProcesses) || workerProcesses < 0)
    throw new Error('--worker-processes must be 0 or a positive whole number');
  const perSubmission = positive(values['per-submission'], 'per-submission');
  if (perSubmission > 500) throw new Error('--per-submission is at most 500 (the API takes 500 files per request)');
  const opts: Options = {
    rates: numberList(values.rates, 'rates'),
    seconds: positive(values.seconds, 'seconds'),
    batchFiles: positive(values['batch-files'], 'batch-files'),
    saturationFiles: positive(values['saturation-files'], 'saturation-files'),
    perSubmission,
    concurrency: positive(values.concurrency, 'concurrency'),
    repeat: positive(values.repeat, 'repeat'),
    size: positive(values.size, 'size'),
    latencyMs,
    drainTimeoutMs: positive(values['drain-timeout-s'], 'drain-timeout-s') * 1000,
    workerProcesses,
  };

  const latency: LatencyRow[] = [];
  const saturation: SaturationRun[] = [];
  const ratios: number[] = [];
  await mkdir(values.out, { recursive: true });
  const file = path.join(values.out, `intake-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}.json`);
  // Written after every row, so a run stopped part way keeps what it measured.
  const save = () =>
    writeFile(
      file,
      `${JSON.stringify({ at: new Date().toISOString(), options: opts, latency, saturation, intakeOverC: ratios }, null, 2)}\n`,
    );

  if (!values['skip-latency']) {
    const onRow = (row: LatencyRow) => {
      latency.push(row);
      void save();
    };
    await latencyRuns(opts, false, onRow);
    await latencyRuns(opts, true, onRow);
    console.log(
      `\nSubmission to RECORDED (ms), one file per request, C=${opts.concurrency}, batch of ${opts.batchFiles} beside it or not`,
    );
    console.log(
      '| files/s | batch running | files | RECORDED | sent/s | p50 | p99 | max | 202 p50/p99 | 429s | batch files/s | batch ran throughout |',
    );
    for (const r of latency)
      console.log(
        `| ${r.rate} | ${r.withBatch ? 'yes' : 'no'} | ${r.files} | ${r.recorded} | ${r.sentPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ` +
          `${r.acceptP50Ms}/${r.acceptP99Ms} | ${r.saturated} | ${r.batchFilesPerSecond ?? '-'} | ${r.batchRanThroughout ?? '-'} |`,
      );
  }

  if (!values['skip-saturation']) {
    for (let i = 0; i < opts.repeat; i++) {
      const batch = await saturationRun(opts, 'batch');
      saturation.push(batch);
      const intake = await saturationRun(opts, 'intake');
      saturation.push(intake);
      ratios.push(round(intake.filesPerSecond / batch.filesPerSecond));
      await save();
    }
    console.log(
      `\nSaturation: ${opts.saturationFiles} files of ${opts.size} bytes, C=${opts.concurrency}, L=${latencyMs} ms`,
    );
    console.log('| run | mode | files/s | CPU ms/file | events/file | 429s | intake/c |');
    saturation.forEach((r, i) =>
      console.log(
        `| ${Math.floor(i / 2) + 1} | ${r.mode} | ${r.filesPerSecond} | ${r.cpuMsPerFile} | ${r.historyEventsPerFile} | ` +
          `${r.saturated ?? '-'} | ${r.mode === 'intake' ? ratios[Math.floor(i / 2)] : ''} |`,
      ),
    );
    console.log(`intake/c median of ${ratios.length}: ${median(ratios)}`);
  }
  await save();
  console.log(`wrote ${file}`);
}

runMain(main);
