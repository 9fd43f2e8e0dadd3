/**
 * The batch commands end to end, as separate processes against the run's shared Temporal dev
 * server: `start` refusing bad input (exit 2, nothing started), duplicate and unknown batch ids
 * (exit 3), and with a `worker` process running, a batch from start to report, export,
 * reconcile with planted drift and repair, and a redrive of the files of an ended batch.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { previousInput } from '../../src/batch/redrive';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { startSimulator, type RunningSimulator } from '../../src/devtools/simulator/simulator';
import { batchWorkflowId, SA_FILES_TOTAL, type BatchResult } from '../../src/shared';
import { generateSampleBatch, sampleFileName, sampleOrderId } from '../../src/devtools/samples/sample-images';
import { cliEnv, runCli, spawnCli, stopAllClis, tempDir, type CliProcess, type CliResult } from './helpers';

const TOKEN = 'cli-start-test-token-52e0';

interface Stack {
  dir: string;
  /** The commands' working folder: `.image-sync/` state lands here. */
  cwd: string;
  taskQueue: string;
  env: NodeJS.ProcessEnv;
  sim: RunningSimulator;
  recordingSystem: HttpRecordingSystem;
  run(args: string[], timeoutMs?: number): Promise<CliResult>;
  /** Starts a command in the background; close() stops it if it still runs. */
  spawn(args: string[]): CliProcess;
  startWorker(): Promise<CliProcess>;
  close(): Promise<void>;
}

let connection: Connection;
let client: Client;
let stack: Stack | undefined;
/** Workflows a test left running on purpose; terminated after it. */
const leftRunning: string[] = [];

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});

afterEach(async () => {
  for (const workflowId of leftRunning.splice(0)) {
    await client.workflow
      .getHandle(workflowId)
      .terminate('CLI test done')
      .catch(() => undefined);
  }
  await stack?.close();
  stack = undefined;
});

afterAll(async () => {
  await stopAllClis();
  await connection?.close();
});

/** A fresh folder, simulator, ledger and task queue; the CLI processes it starts end with close(). */
async function newStack(simulatorFaults: { rejectRate?: number } = {}): Promise<Stack> {
  const dir = await tempDir('cli-start');
  const cwd = path.join(dir, 'cwd');
  await mkdir(cwd, { recursive: true });
  const sim = await startSimulator({
    port: 0,
    token: TOKEN,
    dataDir: path.join(dir, 'recording-system'),
    ...simulatorFaults,
  });
  const taskQueue = `cli-test-${randomUUID()}`;
  const env = cliEnv(dir, {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    IMAGE_SYNC_TASK_QUEUE: taskQueue,
    IMAGE_SYNC_LEDGER_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
    RECORDING_SYSTEM_URL: sim.url,
    RECORDING_SYSTEM_TOKEN: TOKEN,
  });
  const procs: CliProcess[] = [];
  const spawn = (args: string[]): CliProcess => {
    const proc = spawnCli(args, { env, cwd });
    procs.push(proc);
    return proc;
  };
  return {
    dir,
    cwd,
    taskQueue,
    env,
    sim,
    recordingSystem: new HttpRecordingSystem({ baseUrl: sim.url, token: TOKEN }),
    run: (args, timeoutMs) => runCli(args, { env, cwd, timeoutMs }),
    spawn,
    async startWorker() {
      const worker = spawn(['worker']);
      await worker.waitForStdout(/Worker polling task queue (\S+)/, 120_000);
      expect(worker.stdout).toContain(`"${taskQueue}"`);
      return worker;
    },
    async close() {
      await Promise.all(procs.map((p) => p.stop()));
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function expectNoWorkflow(batchId: string): Promise<void> {
  await expect(client.workflow.getHandle(batchWorkflowId(batchId)).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

/** Three small source files under dir/src: O1/a.png, O1/b.png, O2/c.png. */
async function sourceFiles(dir: string): Promise<Record<string, string>> {
  const shas: Record<string, string> = {};
  for (const [order, name] of [
    ['O1', 'a.png'],
    ['O1', 'b.png'],
    ['O2', 'c.png'],
  ] as const) {
    await mkdir(path.join(dir, 'src', order), { recursive: true });
    const bytes = Buffer.from(`${order}/${name} ${randomUUID()}`);
    await writeFile(path.join(dir, 'src', order, name), bytes);
    shas[`${order}/${name}`] = sha256(bytes);
  }
  return shas;
}

function parseJson<T>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  }
}

describe('image-sync start: bad input starts nothing', () => {
  it('an NDJSON manifest with a bad sha256 on line 3 and a path escaping its folder on line 4 exits 2 and names both', async () => {
    const s = (stack = await newStack());
    const shas = await sourceFiles(s.dir);
    const manifest = path.join(s.dir, 'manifest.ndjson');
    await writeFile(
      manifest,
      [
        { orderId: 'O1', path: 'src/O1/a.png' },
        { orderId: 'O1', path: 'src/O1/b.png', sha256: shas['O1/b.png'] },
        { orderId: 'O2', path: 'src/O2/c.png', sha256: 'not-a-checksum' },
        { orderId: 'O2', path: '../x' },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
    const batchId = `bad-ndjson-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--manifest', manifest, '--batch-id', batchId]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('line 3, field sha256');
    expect(res.stderr).toContain('line 4, field path');
    expect(res.stderr).toContain('nothing was started');
    expect(res.stderr).not.toMatch(/line [12],/);
    expect(res.stdout).toBe('');
    await expectNoWorkflow(batchId);

    // The same with --json: one JSON document naming the lines and fields.
    const json = await s.run(['start', '--manifest', manifest, '--batch-id', batchId, '--json']);
    expect(json.code).toBe(2);
    const doc = parseJson<{ error: { code: string; exitCode: number; errors: { line: number; field: string }[] } }>(
      json,
    );
    expect(doc.error).toMatchObject({ code: 'invalid_input', exitCode: 2 });
    expect(doc.error.errors.map((e) => [e.line, e.field])).toEqual([
      [3, 'sha256'],
      [4, 'path'],
    ]);
    await expectNoWorkflow(batchId);
  });

  it('a CSV manifest with a bad sha256 on line 3 and a path escaping its folder on line 4 exits 2 and names both', async () => {
    const s = (stack = await newStack());
    await sourceFiles(s.dir);
    const manifest = path.join(s.dir, 'manifest.csv');
    await writeFile(
      manifest,
      ['orderId,path,sha256', 'O1,src/O1/a.png,', 'O2,src/O2/c.png,xyz', 'O2,../x,', ''].join('\n'),
    );
    const batchId = `bad-csv-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--manifest', manifest, '--batch-id', batchId]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('line 3, field sha256');
    expect(res.stderr).toContain('line 4, field path');
    expect(res.stderr).toContain('nothing was started');
    expect(res.stderr).not.toContain('line 2,');
    await expectNoWorkflow(batchId);
  });

  it('with --skip-invalid the valid lines start and the skipped ones are reported', async () => {
    const s = (stack = await newStack());
    const shas = await sourceFiles(s.dir);
    const manifest = path.join(s.dir, 'manifest.ndjson');
    await writeFile(
      manifest,
      [
        { orderId: 'O1', path: 'src/O1/a.png' },
        { orderId: 'O1', path: 'src/O1/b.png', sha256: shas['O1/b.png'] },
        { orderId: 'O2', path: 'src/O2/c.png', sha256: 'not-a-checksum' },
        { orderId: 'O2', path: '../x' },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
    const batchId = `skip-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--manifest', manifest, '--batch-id', batchId, '--skip-invalid']);
    leftRunning.push(batchWorkflowId(batchId));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`Started batch ${batchId}: 2 files`);
    expect(res.stderr).toContain('Skipped 2 invalid entries');
    expect(res.stderr).toContain('line 3, field sha256');
    expect(res.stderr).toContain('line 4, field path');

    const desc = await client.workflow.getHandle(batchWorkflowId(batchId)).describe();
    expect(desc.status.name).toBe('RUNNING');
    expect(desc.taskQueue).toBe(s.taskQueue);
    expect(desc.typedSearchAttributes.get(SA_FILES_TOTAL)).toBe(2);
    // The normalised manifest lands under the working folder and holds the two valid files.
    const input = await previousInput(client, batchId);
    expect(path.dirname(input.manifestPath)).toBe(path.join(s.cwd, '.image-sync', 'manifests'));
    expect(path.basename(input.manifestPath)).toMatch(new RegExp(`^${batchId}\\.[a-z0-9]+-[0-9a-f]{8}\\.ndjson$`));
    const items = (await readFile(input.manifestPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { orderId: string; fileName: string });
    expect(items.map((i) => `${i.orderId}/${i.fileName}`)).toEqual(['O1/a.png', 'O1/b.png']);
  });

  it('--dir with a file directly in the folder exits 2 and names the file', async () => {
    const s = (stack = await newStack());
    await sourceFiles(s.dir);
    await writeFile(path.join(s.dir, 'src', 'stray.txt'), 'not in an order folder');
    const batchId = `stray-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--dir', path.join(s.dir, 'src'), '--batch-id', batchId]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('stray.txt');
    expect(res.stderr).toContain('directly in the folder');
    expect(res.stderr).toContain('nothing was started');
    await expectNoWorkflow(batchId);
  });

  it('a manifest naming a missing source file exits 2 and names its line', async () => {
    const s = (stack = await newStack());
    await sourceFiles(s.dir);
    const manifest = path.join(s.dir, 'manifest.ndjson');
    await writeFile(
      manifest,
      `${JSON.stringify({ orderId: 'O1', path: 'src/O1/a.png' })}\n${JSON.stringify({ orderId: 'O1', path: 'src/O1/missing.png' })}\n`,
    );
    const batchId = `missing-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--manifest', manifest, '--batch-id', batchId]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/line 2, field path: file not found: .*missing\.png/);
    expect(res.stderr).toContain('nothing was started');
    await expectNoWorkflow(batchId);
  });

  it.each([
    { name: 'neither --manifest nor --dir', args: [] as string[] },
    { name: 'both --manifest and --dir', args: ['--manifest', 'm.ndjson', '--dir', '.'] },
  ])('$name exits 2', async ({ args }) => {
    const s = (stack = await newStack());
    const batchId = `usage-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', ...args, '--batch-id', batchId]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('give exactly one of --manifest FILE or --dir DIR');
    await expectNoWorkflow(batchId);
  });
});

describe('image-sync start: batch ids', () => {
  it('a second start of the same --batch-id exits 3 with "already exists"', async () => {
    const s = (stack = await newStack());
    await sourceFiles(s.dir);
    const batchId = `dup-${randomUUID().slice(0, 8)}`;
    const first = await s.run(['start', '--dir', path.join(s.dir, 'src'), '--batch-id', batchId]);
    leftRunning.push(batchWorkflowId(batchId));
    expect(first.code, first.stderr).toBe(0);
    const runId = (await client.workflow.getHandle(batchWorkflowId(batchId)).describe()).runId;

    const second = await s.run(['start', '--dir', path.join(s.dir, 'src'), '--batch-id', batchId]);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`batch ${batchId} already exists`);
    const desc = await client.workflow.getHandle(batchWorkflowId(batchId)).describe();
    expect(desc.runId).toBe(runId);
    expect(desc.status.name).toBe('RUNNING');
  });

  it("a refused second start of a running --batch-id leaves the running batch's manifest as it was", async () => {
    const s = (stack = await newStack());
    await sourceFiles(s.dir);
    const other = path.join(s.dir, 'other');
    await mkdir(path.join(other, 'O9'), { recursive: true });
    await writeFile(path.join(other, 'O9', 'z.png'), 'another batch entirely');
    const batchId = `dup-manifest-${randomUUID().slice(0, 8)}`;
    const first = await s.run(['start', '--dir', path.join(s.dir, 'src'), '--batch-id', batchId]);
    leftRunning.push(batchWorkflowId(batchId));
    expect(first.code, first.stderr).toBe(0);
    const { manifestPath } = await previousInput(client, batchId);
    const before = await readFile(manifestPath, 'utf8');
    expect(before).toContain('"O1"');

    const second = await s.run(['start', '--dir', other, '--batch-id', batchId]);
    expect(second.code).toBe(3);
    // The worker reads the running batch's files from this manifest: it must still be the first one.
    expect(await readFile(manifestPath, 'utf8')).toBe(before);
  });
});

describe('image-sync commands on an unknown batch', () => {
  it.each([['status'], ['cancel'], ['pause'], ['resume'], ['retry'], ['set-concurrency', '4']])(
    '%s exits 3 naming the batch',
    async (command, ...rest) => {
      const s = (stack = await newStack());
      const batchId = `unknown-${randomUUID().slice(0, 8)}`;
      const res = await s.run([command, batchId, ...rest]);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(`no batch ${batchId}`);
      await expectNoWorkflow(batchId);
    },
  );

  it.each(['report', 'reconcile'])('%s exits 3: the ledger has no batch', async (command) => {
    const s = (stack = await newStack());
    const batchId = `unknown-${randomUUID().slice(0, 8)}`;
    const res = await s.run([command, batchId]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(`the ledger has no batch ${batchId}`);
  });
});

async function sampleBatch(s: Stack, orders: number, filesPerOrder: number, seed: number) {
  const dir = path.join(s.dir, `inbox-${seed}`);
  await generateSampleBatch(dir, { orders, filesPerOrder, seed, minBytes: 1024, maxBytes: 4096 });
  const shas = new Map<string, string>();
  for (let o = 0; o < orders; o++) {
    for (let f = 0; f < filesPerOrder; f++) {
      const key = `${sampleOrderId(o)}/${sampleFileName(f)}`;
      shas.set(key, sha256(await readFile(path.join(dir, key))));
    }
  }
  return { dir, shas };
}

/** What the recording system holds: sha256 by ORDER/FILE. */
async function held(s: Stack): Promise<Map<string, string>> {
  const page = await s.recordingSystem.list({ limit: 1000 });
  return new Map(page.files.map((f) => [`${f.orderId}/${f.fileName}`, f.sha256]));
}

describe('image-sync with a worker: one batch from start to reconcile', () => {
  const ORDERS = 3;
  const FILES_PER_ORDER = 4;
  const FILES = ORDERS * FILES_PER_ORDER;
  const batchId = `full-${randomUUID().slice(0, 8)}`;
  let s: Stack;
  let shas: Map<string, string>;
  let started: CliResult;

  beforeAll(async () => {
    s = await newStack();
    await s.startWorker();
    const sample = await sampleBatch(s, ORDERS, FILES_PER_ORDER, 7);
    shas = sample.shas;
    started = await s.run(['start', '--dir', sample.dir, '--batch-id', batchId, '--wait', '--json'], 120_000);
  }, 240_000);
  afterAll(async () => {
    await s?.close();
  });

  it('start --dir --wait --json exits 0 with one JSON document: COMPLETED, every file recorded and held', async () => {
    expect(started.code, started.stderr).toBe(0);
    const summary = parseJson<{ batchId: string; workflowId: string; files: number; result: BatchResult }>(started);
    expect(summary).toMatchObject({ batchId, workflowId: batchWorkflowId(batchId), files: FILES });
    expect(summary.result.state).toBe('COMPLETED');
    expect(summary.result.recorded).toBe(FILES);
    expect(summary.result.rolledBack).toBe(0);
    expect(await held(s)).toEqual(shas);
  });

  it('status --json on the finished batch reports it COMPLETED with every file recorded', async () => {
    const status = await s.run(['status', batchId, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const st = parseJson<{
      batchId: string;
      workflowStatus: string;
      progress: { recorded: number; total: number; state: string };
      searchAttributes: { state: string; total: number; failed: number };
    }>(status);
    expect(st.batchId).toBe(batchId);
    expect(st.workflowStatus).toBe('COMPLETED');
    expect(st.searchAttributes).toEqual({ state: 'COMPLETED', total: FILES, failed: 0 });
    expect(st.progress).toMatchObject({ total: FILES, recorded: FILES, state: 'COMPLETED' });
  });

  it('status in text says the batch ended COMPLETED, not RUNNING', async () => {
    const status = await s.run(['status', batchId]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`Batch ${batchId}: workflow COMPLETED, state COMPLETED`);
  });

  it("report --json counts every file RECORDED, one interaction each, with the sources' checksums", async () => {
    const report = await s.run(['report', batchId, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const rep = parseJson<{
      counts: Record<string, number>;
      interactions: number;
      batch: { state: string; total: number };
      files: { orderId: string; fileName: string; sha256: string }[];
    }>(report);
    expect(rep.counts).toEqual({ RECORDED: FILES });
    expect(rep.interactions).toBe(FILES);
    expect(rep.batch).toMatchObject({ state: 'COMPLETED', total: FILES });
    expect(new Map(rep.files.map((f) => [`${f.orderId}/${f.fileName}`, f.sha256]))).toEqual(shas);
  });

  it('report --export writes the per-file report and recorded.csv with one row per file', async () => {
    const exportDir = path.join(s.dir, 'export');
    const exported = await s.run(['report', batchId, '--export', exportDir]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain(`wrote ${path.join(exportDir, 'recorded.csv')}`);
    expect(exported.stdout).toContain(`wrote ${path.join(exportDir, 'report.csv')}`);
    expect((await readdir(exportDir)).sort()).toEqual(['recorded.csv', 'report.csv', 'report.jsonl']);
    const csv = (await readFile(path.join(exportDir, 'recorded.csv'), 'utf8')).trimEnd().split('\n');
    const header = csv[0]!.split(',');
    expect(header).toEqual(expect.arrayContaining(['orderId', 'fileName', 'status', 'sha256']));
    const rows = csv.slice(1).map((line) => Object.fromEntries(line.split(',').map((v, i) => [header[i], v])));
    expect(rows).toHaveLength(FILES);
    expect(rows.every((r) => r.status === 'RECORDED')).toBe(true);
    expect(new Map(rows.map((r) => [`${r.orderId}/${r.fileName}`, r.sha256]))).toEqual(shas);
  });

  it('reconcile finds no drift, then exits 4 listing missing and different-bytes drift planted behind the ledger, and --repair ends it', async () => {
    const clean = await s.run(['reconcile', batchId, '--json']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(parseJson<{ files: number; drifts: unknown[] }>(clean)).toMatchObject({ files: FILES, drifts: [] });

    // One recorded file removed, another replaced by other bytes.
    const gone = [sampleOrderId(0), sampleFileName(0)] as const;
    const replaced = [sampleOrderId(1), sampleFileName(2)] as const;
    expect(await s.recordingSystem.remove(...gone)).toBe('removed');
    expect(await s.recordingSystem.remove(...replaced)).toBe('removed');
    const impostor = path.join(s.dir, 'impostor.png');
    const impostorBytes = Buffer.from('not the bytes the ledger recorded');
    await writeFile(impostor, impostorBytes);
    await s.recordingSystem.put({
      orderId: replaced[0],
      fileName: replaced[1],
      sourcePath: impostor,
      sha256: sha256(impostorBytes),
      size: impostorBytes.length,
      contentType: 'image/png',
      idempotencyKey: `planted-${randomUUID()}`,
    });

    const drift = await s.run(['reconcile', batchId]);
    expect(drift.code, drift.stderr).toBe(4);
    expect(drift.stdout).toContain(`${FILES} files checked, ${FILES - 1} copies held under its orders, 2 drifts`);
    expect(drift.stdout).toMatch(new RegExp(`missing +${gone.join('/')}`));
    expect(drift.stdout).toMatch(new RegExp(`different-bytes +${replaced.join('/')}`));

    // The replaced copy was written by another sender: only --remove-foreign removes it.
    const repair = await s.run(['reconcile', batchId, '--repair', '--remove-foreign']);
    expect(repair.code, `${repair.stdout}\n${repair.stderr}`).toBe(0);
    expect(repair.stdout).toContain('2 drifts found');
    expect(repair.stdout).toContain('After repair: 0 drifts');

    const after = await s.run(['reconcile', batchId, '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(parseJson<{ drifts: unknown[] }>(after).drifts).toEqual([]);
    expect(await held(s)).toEqual(shas);
  });

  it('retry on the finished batch with no failed files exits 2 and starts nothing', async () => {
    const before = await client.workflow.getHandle(batchWorkflowId(batchId)).describe();
    const retry = await s.run(['retry', batchId]);
    expect(retry.code).toBe(2);
    expect(retry.stderr).toContain('no failed files');
    const after = await client.workflow.getHandle(batchWorkflowId(batchId)).describe();
    expect(after.runId).toBe(before.runId);
    expect(after.status.name).toBe('COMPLETED');
  });
});

describe('image-sync with a worker: redrive of an ended batch', () => {
  it('a batch whose files are all rejected exits 4 from start --wait, and retry on the ended batch redrives them to RECORDED', async () => {
    const s = (stack = await newStack({ rejectRate: 1 }));
    const worker = await s.startWorker();
    const orders = 2;
    const perOrder = 2;
    const total = orders * perOrder;
    const { dir, shas } = await sampleBatch(s, orders, perOrder, 11);
    const batchId = `redrive-${randomUUID().slice(0, 8)}`;
    const handle = client.workflow.getHandle(batchWorkflowId(batchId));

    const started = await s.run(
      ['start', '--dir', dir, '--batch-id', batchId, '--max-resends', '0', '--wait'],
      120_000,
    );
    expect(started.code, started.stderr).toBe(4);
    expect(started.stdout).toMatch(new RegExp(`ended COMPLETED_WITH_FAILURES: 0 recorded, ${total} rolled back`));
    expect(await held(s)).toEqual(new Map());

    const report = await s.run(['report', batchId]);
    expect(report.code, report.stderr).toBe(0);
    for (const key of shas.keys()) expect(report.stdout).toMatch(new RegExp(`ROLLED_BACK +${key}`));
    const failed = parseJson<{ counts: Record<string, number> }>(await s.run(['report', batchId, '--json']));
    expect(failed.counts).toEqual({ ROLLED_BACK: total });

    // Without a worker the redrive run stays RUNNING until one comes, so `status --watch` is
    // sure to find it running and has to follow it to its end.
    worker.signal('SIGTERM');
    expect((await worker.exit(30_000)).code).toBe(0);
    s.sim.setFaults({ rejectRate: 0 });
    const firstRunId = (await handle.describe()).runId;
    const retry = await s.run(['retry', batchId]);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toContain('redrive');
    expect(retry.stdout).toContain(`${total} files`);
    const redrive = await handle.describe();
    expect(redrive.status.name).toBe('RUNNING');
    expect(redrive.runId).not.toBe(firstRunId);

    const watching = s.spawn(['status', batchId, '--watch', '--json']);
    // It found the redrive run RUNNING (no worker yet) and follows it.
    await watching.waitForStderr(/Following batch .* to its end/);
    await s.startWorker();
    const watched = await watching.exit(120_000);
    expect(watched.code, watched.stderr).toBe(0);
    const result = parseJson<BatchResult>(watched);
    expect(result).toMatchObject({ batchId, state: 'COMPLETED', total, recorded: total, rolledBack: 0 });
    expect((await handle.describe()).status.name).toBe('COMPLETED');

    const redriven = parseJson<{ counts: Record<string, number>; interactions: number; batch: { state: string } }>(
      await s.run(['report', batchId, '--json']),
    );
    expect(redriven.counts).toEqual({ RECORDED: total });
    expect(redriven.interactions).toBe(2 * total);
    expect(redriven.batch.state).toBe('COMPLETED');
    expect(await held(s)).toEqual(shas);
    const reconciled = await s.run(['reconcile', batchId, '--json']);
    expect(reconciled.code, reconciled.stderr).toBe(0);
    expect(parseJson<{ drifts: unknown[] }>(reconciled).drifts).toEqual([]);
  }, 360_000); // its steps wait up to 120 s each (start --wait, status --watch) on a loaded machine
});
