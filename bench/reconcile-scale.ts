/**
 * `npm run bench:reconcile -- --files 100000 [--page-size 1000] [--max-old-space-mb N] [--dir D] [--keep]`
 *
 * Reconcile of one very large batch: builds the state cheaply (source files of a few bytes,
 * ledger rows written through the Ledger API as RECORDED, the same files PUT through the
 * simulator's HTTP API), then runs `image-sync reconcile BATCH` as an operator would, in a
 * process of its own under /usr/bin/time, and reports its wall time and peak RSS. With --dir the
 * state is kept there and reused by the next run (building it is the slow part). With
 * --max-old-space-mb the reconcile process runs under that V8 heap cap: completing under a small
 * cap shows the memory it keeps does not grow with the batch.
 * Writes JSON into bench/results/.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openLedger } from '../src/ledger';
import { ledgerSql } from '../src/ledger/testing';
import { HttpRecordingSystem } from '../src/recording-system/http-adapter';
import { startSimulator } from '../src/devtools/simulator/simulator';
import { mapWithConcurrency } from '../src/source/concurrency';
import { scanDirectory } from '../src/source/scan';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';

const TOKEN = 'bench-reconcile-token';
const ROOT = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '100000' },
      size: { type: 'string', default: '32' },
      'page-size': { type: 'string', default: '1000' },
      'max-old-space-mb': { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  const files = Number(values.files);
  const pageSize = Number(values['page-size']);
  const workDir = values.dir
    ? path.resolve(values.dir)
    : await mkdtemp(path.join(os.tmpdir(), 'image-sync-reconcile-'));
  await mkdir(workDir, { recursive: true });
  const batchId = `reconcile-scale-${files}`;
  const ledgerUrl = `sqlite:${path.join(workDir, 'ledger.db')}`;
  const simulator = await startSimulator({ dataDir: path.join(workDir, 'rs'), token: TOKEN, port: 0 });
  try {
    const built = path.join(workDir, `built-${files}`);
    if (!existsSync(built)) {
      const t0 = Date.now();
      const src = path.join(workDir, `src-${files}`);
      console.error(`generating ${files} source files...`);
      await generateBlobFiles(src, { count: files, size: Number(values.size), filesPerOrder: 100 });
      const { items } = await scanDirectory(src);
      console.error(`  generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const rs = new HttpRecordingSystem({ baseUrl: simulator.url, token: TOKEN });
      const ledger = await openLedger(ledgerUrl);
      // Building the state only: no sync to disk after every row's commit.
      await ledgerSql(ledger).query`pragma synchronous = normal`;
      try {
        await ledger.ensureBatch({
          batchId,
          workflowId: `sync-batch/${batchId}`,
          total: items.length,
          state: 'COMPLETED',
        });
        let done = 0;
        await mapWithConcurrency(items, 16, async (item, i) => {
          const bytes = await readFile(item.sourcePath);
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          const interactionId = `${batchId}-${i}`;
          await ledger.openInteraction({
            interactionId,
            batchId,
            orderId: item.orderId,
            fileName: item.fileName,
            target: 'default',
            sourcePath: item.sourcePath,
            sha256,
            sizeBytes: bytes.length,
            status: 'RECORDED',
          });
          await rs.put({
            orderId: item.orderId,
            fileName: item.fileName,
            sourcePath: item.sourcePath,
            sha256,
            size: bytes.length,
            contentType: 'application/octet-stream',
            idempotencyKey: interactionId,
          });
          if (++done % 10_000 === 0) console.error(`  ${done}/${items.length} rows written and files stored`);
        });
        await ledger.updateBatch(batchId, { recorded: items.length, finished: true });
      } finally {
        await ledger.close();
      }
      await writeFile(built, `${Date.now() - t0}\n`);
      console.error(`state built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }

    const heapCap = values['max-old-space-mb'];
    const args = [
      ...(heapCap ? [`--max-old-space-size=${Number(heapCap)}`] : []),
      path.join(ROOT, 'bin', 'image-sync.js'),
      'reconcile',
      batchId,
      '--json',
      '--no-temporal',
      '--max-resends',
      '3',
      '--page-size',
      String(pageSize),
      '--progress',
    ];
    console.error(`running: /usr/bin/time -f %e,%M node ${args.map((a) => path.relative(ROOT, a) || a).join(' ')}`);
    const run = await runTimed(args, {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: os.homedir(),
      IMAGE_SYNC_LEDGER_URL: ledgerUrl,
      RECORDING_SYSTEM_URL: simulator.url,
      RECORDING_SYSTEM_TOKEN: TOKEN,
    });
    if (run.code !== 0 && run.code !== 4) throw new Error(`reconcile exited ${run.code}`);
    const report = JSON.parse(run.stdout) as { files: number; heldUnderOrders: number; drifts: unknown[] };
    const result = {
      at: new Date().toISOString(),
      command: `IMAGE_SYNC_LEDGER_URL=${ledgerUrl} RECORDING_SYSTEM_URL=<simulator> node ${args
        .map((a) => path.relative(ROOT, a) || a)
        .join(' ')}`,
      params: { files, pageSize, sourceBytes: Number(values.size), maxOldSpaceMb: heapCap ? Number(heapCap) : null },
      exitCode: run.code,
      wallSeconds: run.wallSeconds,
      peakRssMb: Math.round(run.maxRssKb / 1024),
      checked: report.files,
      heldUnderOrders: report.heldUnderOrders,
      drifts: report.drifts.length,
    };
    console.log(JSON.stringify(result, null, 2));
    await mkdir(values.out, { recursive: true });
    await writeFile(
      path.join(values.out, `reconcile-scale-${files}-p${pageSize}-${Date.now()}.json`),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    await simulator.close();
    if (!values.dir && !values.keep) await rm(workDir, { recursive: true, force: true });
  }
}

/** Runs node under /usr/bin/time; returns its output, wall time and peak resident set. */
function runTimed(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; wallSeconds: number; maxRssKb: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (!c.startsWith('TIME')) process.stderr.write(c);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /TIME ([\d.]+) (\d+)/.exec(stderr);
      if (!m) return reject(new Error(`no timing from /usr/bin/time:\n${stderr}`));
      resolve({ code, stdout, wallSeconds: Number(m[1]), maxRssKb: Number(m[2]) });
    });
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
