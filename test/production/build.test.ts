/**
 * The compiled build: `npm run build` (run here when dist/ is missing or older than src/, so a
 * clean clone works; CI builds before the tests) and a worker started from it by
 * `node bin/image-sync.js worker`, which loads the prebuilt workflow bundle: no tsx, no webpack
 * compilation. A small batch runs through it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import { cliEnv, spawnCli, stopAllClis, tempDir, type CliProcess } from '../cli/helpers';
import { startHarness, TEST_ENCRYPTION_KEYS_ENV, TEST_TOKEN, type Harness } from '../helpers/harness';

const run = promisify(execFile);
const DIST = path.join(PROJECT_ROOT, 'dist');
const STAMP = path.join(DIST, 'workflow-bundle.js');

function newestUnder(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds unless dist/ holds a build at least as new as every file of src/. */
async function ensureBuild(): Promise<void> {
  const current =
    existsSync(path.join(DIST, 'cli', 'main.js')) &&
    existsSync(STAMP) &&
    newestUnder(path.join(PROJECT_ROOT, 'src')) <= statSync(STAMP).mtimeMs;
  if (current) return;
  await run('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, timeout: 300_000 });
}

describe('a worker started from the compiled build', () => {
  let h: Harness;
  let worker: CliProcess;
  let modulesFile: string;

  beforeAll(async () => {
    await ensureBuild();
    h = await startHarness();
    await h.stopWorker();
    const home = await tempDir('dist-worker');
    // Lists every module the worker process loaded, when it exits.
    modulesFile = path.join(home, 'modules.txt');
    const preload = path.join(home, 'list-modules.js');
    writeFileSync(
      preload,
      `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(modulesFile)}, Object.keys(require.cache).join('\\n')));\n`,
    );
    worker = spawnCli(['worker'], {
      env: cliEnv(home, {
        IMAGE_SYNC_FROM_SOURCE: '0',
        NODE_OPTIONS: `--require ${preload}`,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
        IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
        RECORDING_SYSTEM_URL: h.simulator.url,
        RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
        IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV,
        IMAGE_SYNC_LOG_FORMAT: 'json',
      }),
      cwd: h.workDir,
    });
    await worker.waitForStdout(/Worker polling task queue/, 60_000);
  });

  afterAll(async () => {
    await stopAllClis();
    await h?.close();
  });

  it('runs a batch with the prebuilt bundle, then stops on SIGTERM', async () => {
    const items = await h.makeFiles(3, 700, 3);
    const { handle } = await h.start(items, { maxConcurrency: 3 });
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'COMPLETED', recorded: 3 });
    expect((await h.consistency(result.batchId)).drifts).toEqual([]);
    worker.signal('SIGTERM');
    const exit = await worker.exit(30_000);
    expect(exit.code, exit.stderr).toBe(0);
  });

  it('ran dist/, never tsx, and compiled no workflow bundle at start', () => {
    const modules = readFileSync(modulesFile, 'utf8').split('\n');
    expect(modules).toContain(path.join(DIST, 'cli', 'main.js'));
    expect(modules).toContain(path.join(DIST, 'worker.js'));
    expect(modules.filter((m) => m.startsWith(path.join(PROJECT_ROOT, 'src') + path.sep))).toEqual([]);
    expect(modules.filter((m) => m.includes(`${path.sep}node_modules${path.sep}tsx${path.sep}`))).toEqual([]);
    expect(modules.filter((m) => /node_modules\/webpack\/lib\/(Compiler|webpack)\.js$/.test(m))).toEqual([]);
    const messages = worker.stderr
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('Worker state changed');
    expect(messages).not.toContain('Workflow bundle created');
  });
});
