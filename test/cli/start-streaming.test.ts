/**
 * `start` and `start --dry-run` read their input as a stream: a manifest far larger than the heap
 * the process is allowed (`--max-old-space-size` through NODE_OPTIONS; a process that held the
 * manifest in memory dies of it) is validated, checked and written whole, and the errors at its
 * very end (a duplicate of its first line, a missing file) are named by line.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { previousInput } from '../../src/batch/redrive';
import { batchWorkflowId, SA_FILES_TOTAL } from '../../src/shared';
import { cliEnv, runCli, stopAllClis, tempDir, type CliResult } from './helpers';

const LINES = 80_000;
const HEAP_MB = 96;
const SOURCES = 50;

let dir: string;
let env: NodeJS.ProcessEnv;
let manifest: string;
let sourceBytes = 0;
let connection: Connection;

/** The manifest's folder path to the sources: long, so each line is about 2.3 KB. */
const FOLDER = Array.from({ length: 8 }, (_, i) => `${String(i)}${'d'.repeat(239)}`).join('/');

function line(i: number, extra: Record<string, string> = {}): string {
  return `${JSON.stringify({
    orderId: `O${Math.floor(i / 100)}-${'o'.repeat(150)}`,
    path: `${FOLDER}/${i % SOURCES}.png`,
    fileName: `f${i}-${'f'.repeat(150)}.png`,
    ...extra,
  })}\n`;
}

const parse = <T>(r: CliResult): T => JSON.parse(r.stdout) as T;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  dir = await tempDir('start-streaming');
  await mkdir(path.join(dir, FOLDER), { recursive: true });
  for (let i = 0; i < SOURCES; i++) await writeFile(path.join(dir, FOLDER, `${i}.png`), 'x'.repeat(i + 1));
  manifest = path.join(dir, 'manifest.ndjson');
  const out = createWriteStream(manifest);
  let chunk = '';
  for (let i = 0; i < LINES; i++) {
    chunk += line(i);
    sourceBytes += (i % SOURCES) + 1;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  env = cliEnv(dir, {
    NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}`,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    IMAGE_SYNC_TASK_QUEUE: `start-streaming-${randomUUID()}`,
    IMAGE_SYNC_LEDGER_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
  });
});

afterAll(async () => {
  await stopAllClis();
  await connection?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`start reads a manifest of ${LINES} lines with a ${HEAP_MB} MB heap`, () => {
  it('the manifest is far larger than the heap', async () => {
    expect((await stat(manifest)).size).toBeGreaterThan(1.8 * HEAP_MB * 2 ** 20);
  });

  it('--dry-run --json counts every file and its bytes', async () => {
    const res = await runCli(['start', '--manifest', manifest, '--dry-run', '--json'], {
      env,
      cwd: dir,
      timeoutMs: 240_000,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(parse(res)).toMatchObject({
      dryRun: true,
      files: LINES,
      bytes: sourceBytes,
      alreadyRecorded: 0,
      skipped: [],
    });
  }, 300_000);

  it('refuses a duplicate of the first line and a missing file at the very end, by line; with --skip-invalid it starts the rest, written in order', async () => {
    const bad = path.join(dir, 'bad.ndjson');
    // The same lines, then two bad ones: a copy of line 1 and a file that does not exist.
    await copyFile(manifest, bad);
    await appendFile(bad, line(0) + line(LINES, { path: `${FOLDER}/missing.png` }));

    const refused = await runCli(['start', '--manifest', bad, '--json'], { env, cwd: dir, timeoutMs: 240_000 });
    expect(refused.code, refused.stderr).toBe(2);
    const { error } = parse<{ error: { code: string; errors: { line: number; field: string; message: string }[] } }>(
      refused,
    );
    expect(error.code).toBe('invalid_input');
    expect(error.errors.map((e) => [e.line, e.field])).toEqual([
      [LINES + 1, 'fileName'],
      [LINES + 2, 'path'],
    ]);
    expect(error.errors[0]!.message).toContain('(first on line 1)');
    expect(error.errors[1]!.message).toMatch(/^file not found: .*missing\.png/);

    const batchId = `streaming-${randomUUID().slice(0, 8)}`;
    const started = await runCli(['start', '--manifest', bad, '--batch-id', batchId, '--skip-invalid', '--json'], {
      env,
      cwd: dir,
      timeoutMs: 240_000,
    });
    const handle = new Client({ connection }).workflow.getHandle(batchWorkflowId(batchId));
    try {
      expect(started.code, started.stderr).toBe(0);
      expect(parse(started)).toMatchObject({ batchId, files: LINES });
      expect(parse<{ skipped: unknown[] }>(started).skipped).toHaveLength(2);
      expect((await handle.describe()).typedSearchAttributes.get(SA_FILES_TOTAL)).toBe(LINES);
      const input = await previousInput(new Client({ connection }), batchId);
      expect(input.total).toBe(LINES);
      // Read back a line at a time: the file is as large as the manifest.
      let written = 0;
      let first = '';
      let last = '';
      for await (const l of createInterface({ input: createReadStream(input.manifestPath), crlfDelay: Infinity })) {
        if (written === 0) first = l;
        last = l;
        written += 1;
      }
      expect(written).toBe(LINES);
      const fileName = (l: string) => (JSON.parse(l) as { fileName: string }).fileName;
      expect(fileName(first)).toMatch(/^f0-/);
      expect(fileName(last)).toMatch(new RegExp(`^f${LINES - 1}-`));
    } finally {
      await handle.terminate('test done').catch(() => undefined);
    }
  }, 600_000);
});
