/**
 * `npm run bench:ledger -- [--files 3000] [--rounds 3] [--ledger sqlite|postgres|both]`
 *
 * The ledger's cost per delivered file, apart from everything else: the writes `deliverFile`
 * makes for one file (the interaction opened with its claim, then the send and its verdict),
 * in a loop, in this process, in two ways side by side, round after round:
 * - `step`: as image-sync writes them, two transactions (openClaimed, then one recordStep with
 *   SENT, VERIFIED and RECORDED);
 * - `separate`: the same rows written as four commits (SENT, VERIFIED and the status each on
 *   their own), as they were before recordStep.
 * Prints the CPU time and wall time per file of each, the slow tail of one file's writes (p99
 * and the longest), their medians over the rounds, and the ratio. SQLite in a temporary file
 * (WAL, as a worker opens it); PostgreSQL in a database of its own on IMAGE_SYNC_BENCH_PG_URL's
 * server, dropped at the end. Writes JSON into bench/results/.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import { openLedger, type Ledger } from '../src/ledger';
import { BENCH_PG_URL } from './stack';
import { closeOnSignal, runMain } from './run-main';
import { median, percentile } from './stats';

type Way = 'step' | 'separate';
const WAYS: readonly Way[] = ['step', 'separate'];

interface Figures {
  cpuMsPerFile: number;
  wallMsPerFile: number;
  /** One file's writes, from the first call to the last answer: the slow tail (a checkpoint in a commit shows here). */
  p99WallMs: number;
  maxWallMs: number;
}

/** Writes one delivered file's rows the given way. */
async function deliverOne(ledger: Ledger, way: Way, tag: string, n: number): Promise<void> {
  const interactionId = `${tag}-${n}`;
  const file = { orderId: `order-${n}`, fileName: 'scan.png', target: 'default' };
  await ledger.openClaimed(
    {
      interactionId,
      batchId: tag,
      ...file,
      sourcePath: `/data/order-${n}/scan.png`,
      sha256: 'ab'.repeat(32),
      sizeBytes: 1024,
      status: 'SENDING',
    },
    { ...file, interactionId, batchId: tag, workflowId: `sync-batch/${tag}/order-${n}/scan.png`, runId: 'run' },
    { redrive: 0 },
  );
  const sent = {
    eventKey: 'SENT:0',
    kind: 'SENT',
    detail: { resend: 0, attempt: 1, httpStatus: 201, outcome: 'created', size: 1024 },
  };
  const verified = { eventKey: 'VERIFIED:0', kind: 'VERIFIED', detail: { resend: 0 } };
  if (way === 'step') {
    await ledger.recordStep(interactionId, [sent, verified], { status: 'RECORDED', lastError: null });
    return;
  }
  await ledger.appendEvent({ interactionId, ...sent });
  await ledger.appendEvent({ interactionId, ...verified });
  await ledger.updateInteraction(interactionId, { status: 'RECORDED', lastError: null });
}

async function measure(ledger: Ledger, way: Way, files: number): Promise<Figures> {
  const tag = `bench-${way}-${randomBytes(4).toString('hex')}`;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const each: number[] = [];
  for (let n = 0; n < files; n++) {
    const started = performance.now();
    await deliverOne(ledger, way, tag, n);
    each.push(performance.now() - started);
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuMsPerFile: round((cpu.user + cpu.system) / 1000 / files),
    wallMsPerFile: round(wall / files),
    p99WallMs: round(percentile(each, 99)),
    maxWallMs: round(percentile(each, 100)),
  };
}

function round(n: number): number {
  return Number(n.toFixed(3));
}

/** A ledger of the kind, and how to remove it. */
async function openBench(kind: 'sqlite' | 'postgres'): Promise<{ ledger: Ledger; remove(): Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-bench-ledger-'));
    const ledger = await openLedger(`sqlite:${path.join(dir, 'ledger.db')}`);
    return { ledger, remove: () => rm(dir, { recursive: true, force: true }) };
  }
  const database = `image_sync_bench_ledger_${randomBytes(4).toString('hex')}`;
  const admin = async (statement: string) => {
    const pg = new PgClient({ connectionString: BENCH_PG_URL });
    await pg.connect();
    try {
      await pg.query(statement);
    } finally {
      await pg.end();
    }
  };
  await admin(`CREATE DATABASE ${database}`);
  const url = new URL(BENCH_PG_URL);
  url.pathname = `/${database}`;
  const ledger = await openLedger(url.toString());
  return { ledger, remove: () => admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '3000' },
      rounds: { type: 'string', default: '3' },
      ledger: { type: 'string', default: 'both' },
      out: { type: 'string', default: path.join(__dirname, 'results') },
    },
  });
  const files = Number(values.files);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(files) || files < 1) throw new Error('--files must be a positive whole number');
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive whole number');
  if (!['sqlite', 'postgres', 'both'].includes(values.ledger))
    throw new Error('--ledger must be sqlite, postgres or both');
  const kinds = values.ledger === 'both' ? (['sqlite', 'postgres'] as const) : [values.ledger as 'sqlite' | 'postgres'];

  const report: Record<string, unknown> = { params: { files, rounds }, at: new Date().toISOString() };
  for (const kind of kinds) {
    const { ledger, remove } = await openBench(kind);
    const forget = closeOnSignal(async () => {
      await ledger.close();
      await remove();
    });
    try {
      // One short round first, so both ways meet warm statements and a warm JIT.
      for (const way of WAYS) await measure(ledger, way, Math.min(files, 200));
      const runs: Record<Way, Figures[]> = { step: [], separate: [] };
      for (let round = 1; round <= rounds; round++) {
        for (const way of WAYS) {
          const figures = await measure(ledger, way, files);
          runs[way].push(figures);
          console.error(
            `${kind} round ${round} ${way}: ${figures.cpuMsPerFile} ms CPU, ${figures.wallMsPerFile} ms wall per file; ` +
              `one file's writes p99 ${figures.p99WallMs} ms, max ${figures.maxWallMs} ms`,
          );
        }
      }
      const medians = Object.fromEntries(
        WAYS.map((way) => [
          way,
          {
            cpuMsPerFile: median(runs[way].map((r) => r.cpuMsPerFile)),
            wallMsPerFile: median(runs[way].map((r) => r.wallMsPerFile)),
            p99WallMs: median(runs[way].map((r) => r.p99WallMs)),
            maxWallMs: median(runs[way].map((r) => r.maxWallMs)),
          },
        ]),
      ) as Record<Way, Figures>;
      const ratio = {
        cpu: round(medians.step.cpuMsPerFile / medians.separate.cpuMsPerFile),
        wall: round(medians.step.wallMsPerFile / medians.separate.wallMsPerFile),
      };
      console.log(
        `${kind}: per delivered file, step ${medians.step.cpuMsPerFile} ms CPU / ${medians.step.wallMsPerFile} ms wall ` +
          `(p99 ${medians.step.p99WallMs}, max ${medians.step.maxWallMs}); ` +
          `separate ${medians.separate.cpuMsPerFile} / ${medians.separate.wallMsPerFile}; step/separate CPU ${ratio.cpu}, wall ${ratio.wall}`,
      );
      report[kind] = { runs, medians, ratio };
    } finally {
      forget();
      await ledger.close();
      await remove();
    }
  }
  await mkdir(values.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const file = path.join(values.out, `ledger-${stamp}-n${files}.json`);
  await writeFile(file, JSON.stringify(report, null, 2));
  console.log(`wrote ${file}`);
}

if (require.main === module) runMain(main);
