/**
 * `npm run bench:scale -- --files 100000 [--concurrency 64] [--size 64] [--server dev|postgres]`
 *
 * One very large batch of tiny files at zero latency, the worker in a process of its own, on
 * the dev server (default) or the Temporal server on PostgreSQL (bench/stack.ts). Exits when done.
 * Reports the wall time, the largest history of any workflow run (the batch continues as new to
 * stay small), and the worker process's resident memory over time, which should stay flat
 * (growth across the second half of the run is reported). Writes JSON into bench/results/.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBatch } from '../src/batch/start';
import { progressQuery } from '../src/shared';
import { scanDirectory } from '../src/source/scan';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';
import { startBenchStack } from './stack';
import { runMain } from './run-main';
import { median } from './stats';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '100000' },
      concurrency: { type: 'string', default: '64' },
      size: { type: 'string', default: '64' },
      server: { type: 'string', default: 'dev' },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  if (values.server !== 'dev' && values.server !== 'postgres') throw new Error('--server must be dev or postgres');
  const server = values.server;
  const files = Number(values.files);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(files) || files < 1) throw new Error('--files must be a positive whole number');
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error('--concurrency must be a positive whole number');
  const stack = await startBenchStack({ server, workerProcesses: 1 });
  const workerPid = stack.workerPids[0]!;
  /** Resident memory of the worker process, from /proc (Linux), in MB. */
  const workerRssMb = async () => {
    const status = await readFile(`/proc/${workerPid}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  };
  const rss: { atSeconds: number; done: number; rssMb: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const dir = path.join(stack.workDir, 'src');
    console.error(`generating ${files} files...`);
    await generateBlobFiles(dir, { count: files, size: Number(values.size), filesPerOrder: 100 });
    const { items } = await scanDirectory(dir);
    const t0 = Date.now();
    const { handle } = await startBatch(stack.client, items, {
      taskQueue: stack.taskQueue,
      stateDir: stack.workDir,
      policy: { maxConcurrency: concurrency, maxResends: 3 },
    });
    const sample = async () => {
      const p = await handle.query(progressQuery).catch(() => undefined);
      const done = p ? p.recorded + p.rolledBack + p.rollbackFailed + p.cancelled : (rss.at(-1)?.done ?? 0);
      const point = {
        atSeconds: Math.round((Date.now() - t0) / 1000),
        done,
        rssMb: await workerRssMb(),
      };
      rss.push(point);
      console.error(`${point.atSeconds}s: ${done}/${files} files, worker RSS ${point.rssMb} MB`);
    };
    timer = setInterval(() => void sample(), 15_000);
    const result = await handle.result();
    clearInterval(timer);
    await sample();
    const wallSeconds = (Date.now() - t0) / 1000;

    // Every run of the batch workflow, and a sample of the file workflows.
    let largest = { workflowId: '', runId: '', events: 0 };
    let batchRuns = 0;
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) {
      batchRuns += 1;
      const events =
        (await stack.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events?.length ?? 0;
      if (events > largest.events) largest = { workflowId: run.workflowId, runId: run.runId, events };
    }
    let sampled = 0;
    for await (const wf of stack.client.workflow.list({
      query: `WorkflowId STARTS_WITH "${handle.workflowId}/"`,
      pageSize: 100,
    })) {
      const events =
        (await stack.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory()).events?.length ?? 0;
      if (events > largest.events) largest = { workflowId: wf.workflowId, runId: wf.runId, events };
      if (++sampled >= 200) break;
    }
    const afterWarmup = rss.filter((p) => p.atSeconds >= 60);
    // Growth across the second half of the run: the median of its last quarter against the
    // median of its first (single samples swing with garbage collection).
    const quarter = (from: number, to: number) =>
      rss.filter((p) => p.atSeconds >= from * wallSeconds && p.atSeconds <= to * wallSeconds).map((p) => p.rssMb);
    const early = median(quarter(0.5, 0.75));
    const late = median(quarter(0.75, 1));
    const secondHalfGrowthPercent = early ? Number((((late - early) * 100) / early).toFixed(1)) : 0;
    const report = {
      at: new Date().toISOString(),
      params: { files, concurrency, size: Number(values.size), server },
      state: result.state,
      recorded: result.recorded,
      wallSeconds: Math.round(wallSeconds),
      filesPerSecond: Number((files / wallSeconds).toFixed(1)),
      batchRuns,
      largestHistory: largest,
      workerRssMb: {
        min: Math.min(...(afterWarmup.length ? afterWarmup : rss).map((p) => p.rssMb)),
        max: Math.max(...(afterWarmup.length ? afterWarmup : rss).map((p) => p.rssMb)),
        secondHalfGrowthPercent,
        samples: rss,
      },
    };
    await mkdir(values.out, { recursive: true });
    const file = path.join(
      values.out,
      `scale-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${server}-n${files}.json`,
    );
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(
      `${server} server, ${result.state}: ${result.recorded}/${files} recorded in ${report.wallSeconds}s (${report.filesPerSecond} files/s); ` +
        `${batchRuns} batch runs; largest history ${largest.events} events (${largest.workflowId}); ` +
        `worker process RSS ${report.workerRssMb.min}-${report.workerRssMb.max} MB after the first minute, ` +
        `${secondHalfGrowthPercent}% growth across the second half`,
    );
    console.log(`wrote ${file}`);
  } finally {
    clearInterval(timer);
    await stack.close();
    await rm(stack.workDir, { recursive: true, force: true });
  }
}

// Exits once done: the SDK's native runtime and the stack's sockets would keep the process up.
runMain(main);
