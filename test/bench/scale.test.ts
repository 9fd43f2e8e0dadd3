/**
 * `npm run bench:scale` runs one batch to its end, writes its report and exits by itself. It
 * asserts no timing: figures belong to the bench, not to tests.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { descendants } from '../../src/devtools/destinations/process';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';

const run = promisify(execFile);
const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');

/** Whether a process runs still: a zombie (ended, not yet reaped) does not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('npm run bench:scale', () => {
  it('refuses a server it does not know, before starting anything', async () => {
    const failure = run(tsx, ['bench/scale.ts', '--server', 'mysql'], { cwd: PROJECT_ROOT, timeout: 30_000 });
    await expect(failure).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('--server must be dev or postgres'),
    });
  });

  it('runs a small batch on the dev server, writes its report and exits on its own', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-scale-test-'));
    try {
      // A process that stayed up after its batch would be killed by the timeout and fail here.
      const { stdout } = await run(
        tsx,
        ['bench/scale.ts', '--files', '30', '--concurrency', '8', '--server', 'dev', '--out', out],
        { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 150_000 },
      );
      expect(stdout).toMatch(/dev server, COMPLETED: 30\/30 recorded/);
      const files = await readdir(out);
      const json = files.find((f) => f.startsWith('scale-') && f.endsWith('-dev-n30.json'));
      expect(json).toBeDefined();
      const report = JSON.parse(await readFile(path.join(out, json!), 'utf8')) as {
        params: { files: number; server: string };
        state: string;
        recorded: number;
      };
      expect(report).toMatchObject({ params: { files: 30, server: 'dev' }, state: 'COMPLETED', recorded: 30 });
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 180_000);

  it('stopped by SIGTERM, closes the server and the worker process it started before it exits', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-scale-test-'));
    // As `npm run bench:scale` runs it: node itself receives the signal, with no runner between.
    const bench = spawn(process.execPath, ['--import', 'tsx', 'bench/scale.ts', '--files', '5000', '--out', out], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const exited = new Promise<number | null>((resolve) => bench.once('exit', (code) => resolve(code)));
      let stderr = '';
      // The stack (server, worker process) is up once the bench writes its files.
      await new Promise<void>((resolve, reject) => {
        bench.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('generating 5000 files')) resolve();
        });
        void exited.then(() => reject(new Error(`the bench ended before its stack was up:\n${stderr}`)));
      });
      const started = descendants(bench.pid!);
      // The Temporal dev server, the worker process (and their children).
      expect(started.length).toBeGreaterThanOrEqual(2);
      bench.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(stderr).toContain('closing what it started');
      expect(started.filter(alive)).toEqual([]);
    } finally {
      if (bench.exitCode === null) bench.kill('SIGKILL');
      await rm(out, { recursive: true, force: true });
    }
  }, 180_000);
});
