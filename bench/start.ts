/**
 * `npm run bench:start -- [--lines 1000000] [--runs 3] [--work DIR] [--keep]`
 *
 * How long `image-sync start` and `start --dry-run` take on a large manifest, and the memory
 * they need: generates LINES tiny source files (100 per order folder) and an NDJSON manifest
 * naming them (kept in --work between runs with --keep, so repeated runs skip the generation),
 * then runs each command RUNS times as an operator runs it (`node bin/image-sync.js`, the build
 * in dist/ when it is current: run `npm run build` first), under `/usr/bin/time -v`, against a
 * dev server of its own (`start` only connects to start the workflow, which no worker runs; it is
 * terminated after). Prints wall time, CPU and peak RSS of each run and their medians, and writes
 * JSON into bench/results/.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { batchWorkflowId } from '../src/shared';
import { mapWithConcurrency } from '../src/source/concurrency';
import { startDevServer } from '../src/temporal/dev-server';
import { runMain } from './run-main';
import { median } from './stats';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'image-sync.js');
const FILES_PER_ORDER = 100;

interface Run {
  command: 'start' | 'start --dry-run';
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  exitCode: number;
}

/** The source files and the manifest, unless a previous run with --keep left them there. */
async function generate(work: string, lines: number): Promise<string> {
  const manifest = path.join(work, 'manifest.ndjson');
  const marker = path.join(work, 'generated.json');
  if (existsSync(marker) && (JSON.parse(await readFile(marker, 'utf8')) as { lines: number }).lines === lines) {
    console.error(`reusing ${lines} files and their manifest in ${work}`);
    return manifest;
  }
  await rm(work, { recursive: true, force: true });
  console.error(`generating ${lines} files and their manifest in ${work}...`);
  const orders = Math.ceil(lines / FILES_PER_ORDER);
  const orderIds = Array.from({ length: orders }, (_, k) => `ORD-${String(k).padStart(7, '0')}`);
  await mapWithConcurrency(orderIds, 8, async (orderId, k) => {
    await mkdir(path.join(work, 'src', orderId), { recursive: true });
    const count = Math.min(FILES_PER_ORDER, lines - k * FILES_PER_ORDER);
    for (let j = 0; j < count; j++) await writeFile(path.join(work, 'src', orderId, `img-${j}.png`), `${orderId}/${j}`);
  });
  const chunks: string[] = [];
  let text = '';
  for (let k = 0; k < orders; k++) {
    const count = Math.min(FILES_PER_ORDER, lines - k * FILES_PER_ORDER);
    for (let j = 0; j < count; j++)
      text += `${JSON.stringify({ orderId: orderIds[k], path: `src/${orderIds[k]}/img-${j}.png` })}\n`;
    if (text.length > 1 << 22) {
      chunks.push(text);
      text = '';
    }
  }
  chunks.push(text);
  await writeFile(manifest, chunks.join(''));
  await writeFile(marker, JSON.stringify({ lines }));
  return manifest;
}

/** One CLI run under /usr/bin/time -v: its wall time, CPU and peak RSS. */
async function measure(command: Run['command'], args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  const res = await promisify(execFile)('/usr/bin/time', ['-v', process.execPath, CLI, ...args], {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }).catch((err: { code?: number; stdout: string; stderr: string }) => ({ ...err, failed: true as const }));
  const field = (name: string) => new RegExp(`${name}: (.+)`).exec(res.stderr)?.[1]?.trim() ?? '';
  const elapsed = field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)')
    .split(':')
    .reduce((s, part) => s * 60 + Number(part), 0);
  const run: Run = {
    command,
    wallSeconds: Number(elapsed.toFixed(2)),
    cpuSeconds: Number(
      (Number(field('User time \\(seconds\\)')) + Number(field('System time \\(seconds\\)'))).toFixed(2),
    ),
    peakRssMb: Math.round(Number(field('Maximum resident set size \\(kbytes\\)')) / 1024),
    exitCode: Number(field('Exit status') || 0),
  };
  if ('failed' in res || run.exitCode !== 0) throw new Error(`${command} failed: ${res.stderr.slice(-2000)}`);
  return run;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '3' },
      work: { type: 'string', default: path.join(os.tmpdir(), 'image-sync-bench-start') },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  const lines = Number(values.lines);
  const runs = Number(values.runs);
  if (!Number.isInteger(lines) || lines < 1) throw new Error('--lines must be a positive whole number');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive whole number');
  const work = path.resolve(values.work);
  const manifest = await generate(work, lines);
  const server = await startDevServer({ dbFile: null, port: 0, uiPort: null, logLevel: 'error' });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const results: Run[] = [];
  try {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: 'default',
      IMAGE_SYNC_TASK_QUEUE: 'bench-start',
      IMAGE_SYNC_LEDGER_URL: `sqlite:${path.join(work, 'ledger.db')}`,
    };
    const built = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));
    console.error(`running ${built ? 'the build in dist/ when current, else ' : ''}the sources through tsx`);
    for (let r = 0; r < runs; r++) {
      const dry = await measure('start --dry-run', ['start', '--manifest', manifest, '--dry-run', '--json'], env, work);
      console.error(`start --dry-run: ${dry.wallSeconds} s, CPU ${dry.cpuSeconds} s, peak RSS ${dry.peakRssMb} MB`);
      results.push(dry);
      const batchId = `bench-start-${Date.now().toString(36)}`;
      const start = await measure(
        'start',
        ['start', '--manifest', manifest, '--batch-id', batchId, '--json'],
        env,
        work,
      );
      console.error(`start: ${start.wallSeconds} s, CPU ${start.cpuSeconds} s, peak RSS ${start.peakRssMb} MB`);
      results.push(start);
      await client.workflow.getHandle(batchWorkflowId(batchId)).terminate('bench done');
      await rm(path.join(work, '.image-sync'), { recursive: true, force: true });
    }
  } finally {
    await connection.close();
    await server.stop();
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
  const summary = (['start', 'start --dry-run'] as const).map((command) => {
    const of = results.filter((r) => r.command === command);
    return {
      command,
      runs: of.length,
      medianWallSeconds: median(of.map((r) => r.wallSeconds)),
      medianCpuSeconds: median(of.map((r) => r.cpuSeconds)),
      medianPeakRssMb: median(of.map((r) => r.peakRssMb)),
    };
  });
  const { stdout: commit } = await promisify(execFile)('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).catch(
    () => ({ stdout: 'unknown' }),
  );
  const report = {
    at: new Date().toISOString(),
    commit: commit.trim(),
    lines,
    machine: { cpus: os.cpus().length, node: process.version, loadAverage: os.loadavg() },
    summary,
    runs: results,
  };
  await mkdir(values.out, { recursive: true });
  const file = path.join(values.out, `start-${report.at.replace(/[-:]/g, '').slice(0, 15)}-n${lines}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.table(summary);
  console.log(`wrote ${file}`);
}

runMain(main);
