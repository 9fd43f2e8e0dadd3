/**
 * The operator commands end to end, as separate processes against the run's shared Temporal dev
 * server and the simulator: `start --dry-run`, unknown targets refused at `start`, `list`,
 * `report --export` (per-file CSV and JSONL), the progress display of `start --wait`, and
 * `status --watch` exiting 4 for a batch that ended other than COMPLETED.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FileReportRow } from '../../src/batch/report';
import type { ListedBatch } from '../../src/cli/commands/list';
import { startSimulator, type RunningSimulator } from '../../src/devtools/simulator/simulator';
import { openLedger } from '../../src/ledger';
import { batchWorkflowId, type BatchResult } from '../../src/shared';
import {
  CLI_PATH,
  cliEnv,
  runCli,
  runProgram,
  spawnCli,
  stopAllClis,
  tempDir,
  type CliProcess,
  type CliResult,
} from './helpers';

const TOKEN = 'cli-operator-test-token-7c1d';

interface Stack {
  dir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  ledgerFile: string;
  sim: RunningSimulator;
  run(args: string[], opts?: { timeoutMs?: number; env?: Record<string, string | undefined> }): Promise<CliResult>;
  startWorker(): Promise<CliProcess>;
  close(): Promise<void>;
}

let connection: Connection;
let client: Client;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});

afterAll(async () => {
  await stopAllClis();
  await connection?.close();
});

async function newStack(faults: { latencyMs?: number } = {}): Promise<Stack> {
  const dir = await tempDir('cli-operator');
  const cwd = path.join(dir, 'cwd');
  await mkdir(cwd, { recursive: true });
  const sim = await startSimulator({ port: 0, token: TOKEN, dataDir: path.join(dir, 'recording-system'), ...faults });
  const ledgerFile = path.join(dir, 'ledger.db');
  const base = {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    IMAGE_SYNC_TASK_QUEUE: `cli-operator-${randomUUID()}`,
    IMAGE_SYNC_LEDGER_URL: `sqlite:${ledgerFile}`,
    RECORDING_SYSTEM_URL: sim.url,
    RECORDING_SYSTEM_TOKEN: TOKEN,
  };
  const env = cliEnv(dir, base);
  const procs: CliProcess[] = [];
  return {
    dir,
    cwd,
    env,
    ledgerFile,
    sim,
    run: (args, opts = {}) =>
      runCli(args, { env: cliEnv(dir, { ...base, ...opts.env }), cwd, timeoutMs: opts.timeoutMs }),
    async startWorker() {
      const worker = spawnCli(['worker'], { env, cwd });
      procs.push(worker);
      await worker.waitForStdout(/Worker polling task queue/, 120_000);
      return worker;
    },
    async close() {
      await Promise.all(procs.map((p) => p.stop()));
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function parseJson<T>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  }
}

async function expectNoWorkflow(batchId: string): Promise<void> {
  await expect(client.workflow.getHandle(batchWorkflowId(batchId)).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

/** Writes dir/<order>/<file> for each entry; returns the sha256 and size of each ORDER/FILE. */
async function writeSources(
  dir: string,
  files: Record<string, string>,
): Promise<Map<string, { sha256: string; size: number }>> {
  const out = new Map<string, { sha256: string; size: number }>();
  for (const [key, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, key)), { recursive: true });
    await writeFile(path.join(dir, key), content);
    out.set(key, { sha256: sha256(content), size: Buffer.byteLength(content) });
  }
  return out;
}

interface DryRunDoc {
  dryRun: true;
  batchId: string | null;
  files: number;
  bytes: number;
  alreadyRecorded: number;
  targets: { target: string; files: number; bytes: number; alreadyRecorded: number }[];
  skipped: { line: number; field: string; message: string }[];
}

describe('start --dry-run and unknown targets, no worker needed', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await newStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('--dry-run --json counts files and bytes per target and starts and writes nothing', async () => {
    const sources = await writeSources(path.join(s.dir, 'dry'), {
      'O1/a.png': 'aaaa',
      'O1/b.png': 'bbbbbbbb',
      'O2/c.png': 'c',
    });
    const batchId = `dry-${randomUUID().slice(0, 8)}`;
    const res = await s.run(['start', '--dir', path.join(s.dir, 'dry'), '--batch-id', batchId, '--dry-run', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const doc = parseJson<DryRunDoc>(res);
    const bytes = [...sources.values()].reduce((n, f) => n + f.size, 0);
    expect(doc).toEqual({
      dryRun: true,
      batchId,
      files: 3,
      bytes,
      alreadyRecorded: 0,
      targets: [{ target: 'default', files: 3, bytes, alreadyRecorded: 0 }],
      ledgerRead: false,
      skipped: [],
    });
    await expectNoWorkflow(batchId);
    expect(existsSync(path.join(s.cwd, '.image-sync'))).toBe(false);
    expect(existsSync(s.ledgerFile)).toBe(false);

    const text = await s.run(['start', '--dir', path.join(s.dir, 'dry'), '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `would send 3 files, ${bytes} bytes, to 1 target; 0 already recorded with the same sha256. Nothing was started or written.`,
    );
    expect(text.stdout).toMatch(new RegExp(`default +3 +${bytes} +0`));
    expect(existsSync(path.join(s.cwd, '.image-sync'))).toBe(false);
  });

  it('--dry-run refuses bad input exactly as a real start: exit 2 naming the line and field', async () => {
    await writeSources(path.join(s.dir, 'bad'), { 'O1/a.png': 'a' });
    const manifest = path.join(s.dir, 'bad', 'manifest.csv');
    await writeFile(manifest, 'orderId;path;sha256\nO1;O1/a.png;\nO1;O1/a.png;\nO2;O2/missing.png;\n');
    const dry = await s.run(['start', '--manifest', manifest, '--dry-run', '--json']);
    const real = await s.run(['start', '--manifest', manifest, '--json']);
    expect(dry.code).toBe(2);
    expect(real.code).toBe(2);
    const errors = (r: CliResult) => {
      const doc = parseJson<{ error: { code: string; errors: { line: number; field: string }[] } }>(r);
      expect(doc.error.code).toBe('invalid_input');
      return doc.error.errors;
    };
    expect(errors(dry).map((e) => [e.line, e.field])).toEqual([
      [3, 'fileName'],
      [4, 'path'],
    ]);
    expect(errors(dry)).toEqual(errors(real));

    await writeSources(path.join(s.dir, 'fine'), { 'O1/a.png': 'a' });
    const badPolicy = await s.run(['start', '--dir', path.join(s.dir, 'fine'), '--dry-run', '--batch-id', '../x']);
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toContain('batch id "../x" must be');
  });

  it('reads a CSV manifest with a byte order mark, ";" separators and quoted fields', async () => {
    const root = path.join(s.dir, 'semi');
    const sources = await writeSources(root, { 'O1/a;1.png': 'semicolon in the name', 'O2/b, "2".png': 'quotes' });
    const manifest = path.join(root, 'manifest.csv');
    await writeFile(
      manifest,
      '\ufeffOrderId;Path;FileName\r\nO1;"O1/a;1.png";\r\nO2;"O2/b, ""2"".png";renamed.png\r\n',
    );
    const res = await s.run(['start', '--manifest', manifest, '--dry-run', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const doc = parseJson<DryRunDoc>(res);
    expect(doc).toMatchObject({ files: 2, bytes: [...sources.values()].reduce((n, f) => n + f.size, 0), skipped: [] });
  });

  it('start refuses an unknown target in a manifest (exit 2, line and field) without a targets file: only "default" exists', async () => {
    await writeSources(path.join(s.dir, 'tg'), { 'O1/a.png': 'a', 'O1/b.png': 'b', 'O2/c.png': 'c' });
    const manifest = path.join(s.dir, 'tg', 'manifest.ndjson');
    await writeFile(
      manifest,
      [
        { orderId: 'O1', path: 'O1/a.png' },
        { orderId: 'O1', path: 'O1/b.png', target: 'default' },
        { orderId: 'O2', path: 'O2/c.png', target: 'east' },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    const batchId = `tg-${randomUUID().slice(0, 8)}`;
    for (const extra of [[], ['--dry-run']]) {
      const res = await s.run(['start', '--manifest', manifest, '--batch-id', batchId, ...extra]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('line 3, field target: unknown target "east" (configured: default)');
      expect(res.stderr).not.toMatch(/line [12],/);
      expect(res.stderr).toContain('nothing was started');
    }
    await expectNoWorkflow(batchId);
  });

  it('with IMAGE_SYNC_TARGETS_FILE the targets are its names, read without their tokens; --skip-invalid --dry-run counts per target', async () => {
    const root = path.join(s.dir, 'multi');
    const sources = await writeSources(root, {
      'O1/a.png': 'a1',
      'O1/b.png': 'b22',
      'O2/c.png': 'c333',
      'O2/d.png': 'd',
    });
    const targetsFile = path.join(s.dir, 'targets.json');
    await writeFile(
      targetsFile,
      JSON.stringify({
        defaultTarget: 'east',
        targets: {
          east: { url: 'http://127.0.0.1:1', tokenEnv: 'EAST_TOKEN' },
          west: { url: 'http://127.0.0.1:2', tokenEnv: 'WEST_TOKEN' },
        },
      }),
    );
    const manifest = path.join(root, 'manifest.csv');
    await writeFile(
      manifest,
      'orderId,path,target\nO1,O1/a.png,\nO1,O1/b.png,west\nO2,O2/c.png,north\nO2,O2/d.png,west\n',
    );
    const env = { IMAGE_SYNC_TARGETS_FILE: targetsFile };
    const refused = await s.run(['start', '--manifest', manifest, '--dry-run'], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('line 4, field target: unknown target "north" (configured: east, west)');

    const res = await s.run(['start', '--manifest', manifest, '--dry-run', '--skip-invalid', '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    const doc = parseJson<DryRunDoc>(res);
    const size = (k: string) => sources.get(k)!.size;
    expect(doc.targets).toEqual([
      { target: 'east', files: 1, bytes: size('O1/a.png'), alreadyRecorded: 0 },
      { target: 'west', files: 2, bytes: size('O1/b.png') + size('O2/d.png'), alreadyRecorded: 0 },
    ]);
    expect(doc.skipped).toEqual([{ line: 4, field: 'target', message: expect.stringContaining('"north"') }]);

    // A targets file that is not there is bad configuration: exit 2 naming the variable.
    const absent = await s.run(['start', '--manifest', manifest, '--dry-run', '--json'], {
      env: { IMAGE_SYNC_TARGETS_FILE: path.join(s.dir, 'absent.json') },
    });
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('IMAGE_SYNC_TARGETS_FILE=');
  });

  it('list names the ledger it reads, never creates one, and refuses a bad --state', async () => {
    // No batch was ever started with this ledger: list says where it looked, and creates nothing.
    const nowhere = await s.run(['list']);
    expect(nowhere.code).toBe(3);
    expect(nowhere.stderr).toContain(`there is no ledger at SQLite file ${s.ledgerFile}`);
    expect(existsSync(s.ledgerFile)).toBe(false);
    const report = await s.run(['report', 'b-none']);
    expect(report.code).toBe(3);
    expect(report.stderr).toContain(
      `the ledger has no batch b-none: there is no ledger at SQLite file ${s.ledgerFile}`,
    );
    expect(existsSync(s.ledgerFile)).toBe(false);

    // A ledger without batches: an empty list, naming the ledger.
    await (await openLedger(`sqlite:${s.ledgerFile}`)).close();
    const json = await s.run(['list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(parseJson<{ batches: unknown[] }>(json)).toEqual({ ledger: `SQLite file ${s.ledgerFile}`, batches: [] });
    const text = await s.run(['list']);
    expect(text.stdout).toBe(`No batches in the ledger at SQLite file ${s.ledgerFile}.\n`);
    expect(text.stderr).toBe(`ledger: SQLite file ${s.ledgerFile}\n`);
    const bad = await s.run(['list', '--state', 'DONE']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--state must be one of RUNNING');
  });
});

const PROGRESS_LINE =
  /^\d{4}-\d\d-\d\dT\S+ \d+\/\d+ files \d+% {2}[\d.]+ files\/s {2}ETA \S+ {2}failures \d+ {2}resends \d+ {2}in flight \d+ {2}[A-Z_]+$/;

describe('with a worker: progress, status --watch, list, report --export, dry run against the ledger', () => {
  let s: Stack;
  const good = `good-${randomUUID().slice(0, 8)}`;
  const bad = `bad-${randomUUID().slice(0, 8)}`;
  let goodSources: Map<string, { sha256: string; size: number }>;
  let badSources: Map<string, { sha256: string; size: number }>;
  let goodStart: CliResult;
  let badStart: CliResult;

  beforeAll(async () => {
    // Every request takes 200 ms and one file is in flight at a time: the good batch lasts a few seconds.
    s = await newStack({ latencyMs: 200 });
    await s.startWorker();
    goodSources = await writeSources(path.join(s.dir, 'good'), {
      'O1/a.png': 'first file',
      'O1/=1+2.png': 'a name a spreadsheet would compute',
      '@O2/-x.png': 'order and file names with formula starts',
      'O2/+y.png': 'plus',
    });
    goodStart = await s.run(
      [
        'start',
        '--dir',
        path.join(s.dir, 'good'),
        '--batch-id',
        good,
        '--max-concurrency',
        '1',
        '--wait',
        '--progress-interval',
        '1',
      ],
      { timeoutMs: 120_000 },
    );
    s.sim.setFaults({ rejectRate: 1 });
    badSources = await writeSources(path.join(s.dir, 'bad'), {
      'O3/r.png': 'rejected one',
      'O3/s.png': 'rejected two',
    });
    badStart = await s.run(
      ['start', '--dir', path.join(s.dir, 'bad'), '--batch-id', bad, '--max-resends', '0', '--wait'],
      {
        timeoutMs: 120_000,
      },
    );
    s.sim.setFaults({ rejectRate: 0 });
  }, 300_000);

  afterAll(async () => {
    await s?.close();
  });

  it('start --wait without a terminal prints plain progress lines every --progress-interval, else one per 30 s', () => {
    expect(goodStart.code, goodStart.stderr).toBe(0);
    expect(goodStart.stdout).toContain(`Batch ${good} ended COMPLETED: 4 recorded`);
    const lines = goodStart.stderr.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(PROGRESS_LINE);
    expect(goodStart.stderr).not.toMatch(/[\r\x1b]/);

    expect(badStart.code).toBe(4);
    const badLines = badStart.stderr.split('\n').filter((l) => PROGRESS_LINE.test(l));
    expect(badLines.length).toBeLessThanOrEqual(1);
  });

  it('status --watch exits 4 for a batch that ended COMPLETED_WITH_FAILURES, 0 for one COMPLETED', async () => {
    const failed = await s.run(['status', bad, '--watch']);
    expect(failed.code, failed.stderr).toBe(4);
    expect(failed.stdout).toContain(`Batch ${bad} ended COMPLETED_WITH_FAILURES`);
    // An ended batch is answered at once: nothing to follow.
    expect(failed.stderr).not.toContain('Following batch');
    const failedJson = await s.run(['status', bad, '--watch', '--json']);
    expect(failedJson.code).toBe(4);
    expect(parseJson<BatchResult>(failedJson)).toMatchObject({
      batchId: bad,
      state: 'COMPLETED_WITH_FAILURES',
      rolledBack: 2,
    });
    const completed = await s.run(['status', good, '--watch']);
    expect(completed.code, completed.stderr).toBe(0);
    expect(completed.stdout).toContain(`Batch ${good} ended COMPLETED`);
  });

  it('list shows the batches newest first with state, counts and times; --state filters', async () => {
    const res = await s.run(['list', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const { batches } = parseJson<{ batches: ListedBatch[] }>(res);
    expect(batches.map((b) => b.batchId)).toEqual([bad, good]);
    expect(batches[0]).toMatchObject({ state: 'COMPLETED_WITH_FAILURES', total: 2, recorded: 0, rolledBack: 2 });
    expect(batches[1]).toMatchObject({ state: 'COMPLETED', total: 4, recorded: 4, rolledBack: 0, failed: 0 });
    for (const b of batches) {
      expect(Date.parse(b.createdAt)).not.toBeNaN();
      expect(Date.parse(b.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(b.createdAt));
    }
    const completed = parseJson<{ batches: ListedBatch[] }>(await s.run(['list', '--state', 'completed', '--json']));
    expect(completed.batches.map((b) => b.batchId)).toEqual([good]);

    const text = await s.run(['list']);
    const rows = text.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^BATCH +STATE +FILES +RECORDED +ROLLED BACK +FAILED +STARTED +ENDED$/);
    expect(rows[1]).toMatch(new RegExp(`^${bad} +COMPLETED_WITH_FAILURES +2 +0 +2 +2 +\\S+ +\\S+$`));
    expect(rows[2]).toMatch(new RegExp(`^${good} +COMPLETED +4 +4 +0 +0 +\\S+ +\\S+$`));
  });

  it('report --export writes every file to report.csv (spreadsheet-safe) and report.jsonl, with the receipt sha256', async () => {
    const exportDir = path.join(s.dir, 'export-good');
    const res = await s.run(['report', good, '--export', exportDir]);
    expect(res.code, res.stderr).toBe(0);
    expect((await readdir(exportDir)).sort()).toEqual(['recorded.csv', 'report.csv', 'report.jsonl']);

    const jsonl = (await readFile(path.join(exportDir, 'report.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as FileReportRow);
    expect(new Set(jsonl.map((r) => `${r.orderId}/${r.fileName}`))).toEqual(new Set(goodSources.keys()));
    for (const r of jsonl) {
      const source = goodSources.get(`${r.orderId}/${r.fileName}`)!;
      expect(r).toMatchObject({
        batchId: good,
        target: 'default',
        state: 'RECORDED',
        failedRule: null,
        resends: 0,
        bytes: source.size,
        sha256Sent: source.sha256,
        sha256Receipt: source.sha256,
        rollbackStatus: null,
      });
      expect(r.interactionId).not.toBe('');
      expect(Date.parse(r.sentAt!)).toBeGreaterThanOrEqual(Date.parse(r.openedAt));
      expect(Date.parse(r.endedAt)).toBeGreaterThanOrEqual(Date.parse(r.sentAt!));
    }

    const csvText = await readFile(path.join(exportDir, 'report.csv'), 'utf8');
    const csv = parse<Record<string, string>>(csvText, { columns: true });
    expect(csv).toHaveLength(4);
    expect(Object.keys(csv[0]!)).toEqual([
      'batchId',
      'orderId',
      'fileName',
      'target',
      'state',
      'failedRule',
      'lastError',
      'resends',
      'bytes',
      'sha256Sent',
      'sha256Receipt',
      'interactionId',
      'openedAt',
      'sentAt',
      'endedAt',
      'rollbackStatus',
    ]);
    // No cell starts a formula: names starting with = + - @ are kept as text behind a quote.
    for (const row of csv) for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    const names = csv.map((r) => `${r.orderId}/${r.fileName}`).sort();
    expect(names).toEqual(["'@O2/'-x.png", "O1/'=1+2.png", 'O1/a.png', "O2/'+y.png"].sort());
    const byId = new Map(jsonl.map((r) => [r.interactionId, r]));
    for (const row of csv) {
      const same = byId.get(row.interactionId!)!;
      expect(row).toMatchObject({ sha256Sent: same.sha256Sent, sha256Receipt: same.sha256Receipt, state: 'RECORDED' });
      expect(Number(row.bytes)).toBe(same.bytes);
    }
  });

  it('report --export --failed-only lists the failed files with the rule that failed; without a token the receipts are left empty', async () => {
    const exportDir = path.join(s.dir, 'export-bad');
    const res = await s.run(['report', bad, '--export', exportDir, '--failed-only', '--json'], {
      env: { RECORDING_SYSTEM_TOKEN: undefined },
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('receipts not read, sha256Receipt left empty');
    expect(parseJson<{ receipts: { read: boolean } }>(res).receipts.read).toBe(false);
    expect((await readdir(exportDir)).sort()).toEqual(['report.csv', 'report.jsonl', 'rolled_back.csv']);
    const jsonl = (await readFile(path.join(exportDir, 'report.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as FileReportRow);
    expect(jsonl.map((r) => `${r.orderId}/${r.fileName}`).sort()).toEqual([...badSources.keys()].sort());
    for (const r of jsonl) {
      expect(r).toMatchObject({
        state: 'ROLLED_BACK',
        failedRule: 'send',
        sha256Receipt: null,
        rollbackStatus: 'DONE',
      });
      expect(r.lastError).toMatch(/reject|422/i);
      expect(r.sha256Sent).toBe(badSources.get(`${r.orderId}/${r.fileName}`)!.sha256);
    }
    const csv = parse<Record<string, string>>(await readFile(path.join(exportDir, 'report.csv'), 'utf8'), {
      columns: true,
    });
    expect(csv.map((r) => [r.state, r.failedRule, r.sha256Receipt])).toEqual([
      ['ROLLED_BACK', 'send', ''],
      ['ROLLED_BACK', 'send', ''],
    ]);

    const onlyRecorded = await s.run(['report', good, '--export', path.join(s.dir, 'export-none'), '--failed-only']);
    expect(onlyRecorded.code, onlyRecorded.stderr).toBe(0);
    expect(await readFile(path.join(s.dir, 'export-none', 'report.jsonl'), 'utf8')).toBe('');
    const noExport = await s.run(['report', good, '--failed-only']);
    expect(noExport.code).toBe(2);
  });

  it('--dry-run counts the files the ledger holds RECORDED with the same sha256, and writes nothing', async () => {
    const manifests = path.join(s.cwd, '.image-sync', 'manifests');
    const manifestsBefore = (await readdir(manifests)).sort();
    const reportBefore = await s.run(['report', good, '--json']);

    const same = parseJson<DryRunDoc>(await s.run(['start', '--dir', path.join(s.dir, 'good'), '--dry-run', '--json']));
    expect(same).toMatchObject({ files: 4, alreadyRecorded: 4, ledgerRead: true });
    // One file changed since it was recorded: it would be sent again.
    await writeFile(path.join(s.dir, 'good', 'O1', 'a.png'), 'changed bytes');
    const changed = parseJson<DryRunDoc>(
      await s.run(['start', '--dir', path.join(s.dir, 'good'), '--dry-run', '--json']),
    );
    expect(changed.targets).toEqual([{ target: 'default', files: 4, bytes: expect.any(Number), alreadyRecorded: 3 }]);
    // Rolled back files are not held.
    const rolledBack = parseJson<DryRunDoc>(
      await s.run(['start', '--dir', path.join(s.dir, 'bad'), '--dry-run', '--json']),
    );
    expect(rolledBack).toMatchObject({ files: 2, alreadyRecorded: 0 });

    expect((await readdir(manifests)).sort()).toEqual(manifestsBefore);
    const reportAfter = await s.run(['report', good, '--json']);
    expect(parseJson<{ interactions: number }>(reportAfter).interactions).toBe(
      parseJson<{ interactions: number }>(reportBefore).interactions,
    );
    const listed = parseJson<{ batches: ListedBatch[] }>(await s.run(['list', '--json']));
    expect(listed.batches.map((b) => b.batchId)).toEqual([bad, good]);
  });
});

describe('start --wait on a terminal', () => {
  it('draws a progress bar that fits the terminal width', async () => {
    const s = await newStack({ latencyMs: 200 });
    try {
      await s.startWorker();
      await writeSources(path.join(s.dir, 'tty'), { 'O1/a.png': 'a', 'O1/b.png': 'b', 'O1/c.png': 'c' });
      const batchId = `tty-${randomUUID().slice(0, 8)}`;
      const command = `stty cols 72 rows 24; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_PATH)} start --dir ${JSON.stringify(path.join(s.dir, 'tty'))} --batch-id ${batchId} --max-concurrency 1 --wait`;
      // `script` gives the CLI a pseudo-terminal, so stdout and stderr are a terminal, as for an operator.
      const res = await runProgram('script', ['-qefc', command, '/dev/null'], {
        env: { ...s.env, TERM: 'xterm' },
        timeoutMs: 120_000,
      });
      expect(res.code, res.stdout).toBe(0);
      expect(res.stdout).toContain(`Batch ${batchId} ended COMPLETED: 3 recorded`);
      // The bar's redraws: each one, without terminal control sequences, fits in 72 columns.
      const draws = res.stdout.split(/\r|\n|\x1b\[[0-9;?]*[A-Za-z]/).filter((d) => d.includes(' files '));
      expect(draws.length).toBeGreaterThan(0);
      expect(draws.some((d) => /^\[[#.]+\] \d+\/3 files/.test(d))).toBe(true);
      for (const d of draws) expect(d.length).toBeLessThanOrEqual(72);
    } finally {
      await s.close();
    }
  }, 180_000);
});
