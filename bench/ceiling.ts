/**
 * `npm run bench:ceiling -- [--server dev|postgres] [--files 3000] [--concurrency 64,256] [--worker-processes 1]`
 *
 * Where one batch stops scaling. Runs one batch of tiny files at zero latency for each max
 * concurrency given, on the chosen Temporal server, and reads the batch workflow's own history
 * back (bench/batch-history.ts): its events and workflow tasks per second, each workflow task's
 * queueing (scheduled -> started) and processing (started -> completed) latency, and how many
 * child completions one workflow task took in. When raising the concurrency no longer raises the
 * files/s, and the batch's workflow-task latency grows instead, the batch's own history is the
 * limit. Prints one table and writes JSON into bench/results/.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBatch } from '../src/batch/start';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';
import { scanDirectory } from '../src/source/scan';
import { batchHistoryStats, type BatchHistoryStats } from './batch-history';
import { startBenchStack } from './stack';
import { runMain } from './run-main';

interface CeilingRow {
  concurrency: number;
  files: number;
  state: string;
  filesPerSecond: number;
  cpuMsPerFile: number;
  batch: BatchHistoryStats;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string', default: 'dev' },
      files: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '64,256' },
      'worker-processes': { type: 'string', default: '1' },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  if (values.server !== 'dev' && values.server !== 'postgres') throw new Error('--server must be dev or postgres');
  const server = values.server;
  const files = Number(values.files);
  const concurrencies = values.concurrency.split(',').map(Number);
  if (!Number.isInteger(files) || files < 1) throw new Error('--files must be a positive whole number');
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1))
    throw new Error('--concurrency takes positive whole numbers, comma-separated');

  const rows: CeilingRow[] = [];
  for (const concurrency of concurrencies) {
    // A stack of its own per run: a second batch over the same files would find them held.
    const stack = await startBenchStack({ server, workerProcesses: Number(values['worker-processes']) });
    try {
      const dir = path.join(stack.workDir, 'src');
      await generateBlobFiles(dir, { count: files, size: 1024, filesPerOrder: 100 });
      const { items } = await scanDirectory(dir);
      console.error(`${server} server, ${files} files, max concurrency ${concurrency}...`);
      const cpu0 = await stack.cpu();
      const t0 = Date.now();
      const { handle } = await startBatch(stack.client, items, {
        taskQueue: stack.taskQueue,
        stateDir: stack.workDir,
        policy: { maxConcurrency: concurrency, maxResends: 3 },
      });
      const result = await handle.result();
      const seconds = (Date.now() - t0) / 1000;
      const cpu1 = await stack.cpu();
      const cpu = cpu1.server - cpu0.server + (cpu1.workers - cpu0.workers) + (cpu1.database - cpu0.database);
      rows.push({
        concurrency,
        files,
        state: result.state,
        filesPerSecond: Number((files / seconds).toFixed(1)),
        cpuMsPerFile: Number(((cpu * 1000) / files).toFixed(1)),
        batch: await batchHistoryStats(stack.client, handle.workflowId),
      });
    } finally {
      await stack.close();
      await rm(stack.workDir, { recursive: true, force: true });
    }
  }

  console.log(
    `server=${server} files=${files} | C | files/s | CPU ms/file | batch events/s | batch WFT/s | completions/WFT | WFT queue p50/p99 ms | WFT work p50/p99 ms | runs`,
  );
  for (const r of rows) {
    const b = r.batch;
    console.log(
      `| ${r.concurrency} | ${r.filesPerSecond} | ${r.cpuMsPerFile} | ${b.eventsPerSecond} | ${b.workflowTasksPerSecond} | ` +
        `${b.completionsPerWorkflowTask} | ${b.scheduleToStartMs.p50}/${b.scheduleToStartMs.p99} | ` +
        `${b.startToCompleteMs.p50}/${b.startToCompleteMs.p99} | ${b.runs} |`,
    );
  }
  await mkdir(values.out, { recursive: true });
  const file = path.join(
    values.out,
    `ceiling-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${server}-n${files}.json`,
  );
  await writeFile(file, `${JSON.stringify({ at: new Date().toISOString(), server, rows }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

runMain(main);
