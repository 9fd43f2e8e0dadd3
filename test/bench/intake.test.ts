/**
 * `npm run bench:intake` runs its two parts on a small scale, writes its report and exits by
 * itself. It asserts no timing: figures belong to the bench, not to tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';

const run = promisify(execFile);
const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');

describe('npm run bench:intake', () => {
  it('refuses a submission size the API would refuse, before starting anything', async () => {
    const failure = run(tsx, ['bench/intake.ts', '--per-submission', '501'], { cwd: PROJECT_ROOT, timeout: 30_000 });
    await expect(failure).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('--per-submission is at most 500'),
    });
  });

  it('measures latency beside a batch and throughput against the batch path, and writes its report', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-intake-bench-test-'));
    try {
      const { stdout } = await run(
        tsx,
        [
          'bench/intake.ts',
          ...['--rates', '5,10', '--seconds', '2', '--batch-files', '60', '--saturation-files', '30'],
          ...['--per-submission', '10', '--concurrency', '8', '--repeat', '1', '--out', out],
        ],
        { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 400_000 },
      );
      expect(stdout).toMatch(/intake\/c median of 1: /);
      const json = (await readdir(out)).find((f) => f.startsWith('intake-') && f.endsWith('.json'));
      expect(json).toBeDefined();
      const report = JSON.parse(await readFile(path.join(out, json!), 'utf8')) as {
        latency: { rate: number; withBatch: boolean; files: number; p50Ms: number; p99Ms: number }[];
        saturation: { mode: string; files: number; filesPerSecond: number; historyEventsPerFile: number }[];
        intakeOverC: number[];
      };
      expect(report.latency.map((r) => [r.rate, r.withBatch, r.files])).toEqual([
        [5, false, 10],
        [10, false, 20],
        [5, true, 10],
        [10, true, 20],
      ]);
      for (const r of report.latency) {
        expect(r.p50Ms).toBeGreaterThan(0);
        expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
      }
      expect(report.saturation.map((r) => [r.mode, r.files])).toEqual([
        ['batch', 30],
        ['intake', 30],
      ]);
      for (const r of report.saturation) {
        expect(r.filesPerSecond).toBeGreaterThan(0);
        expect(r.historyEventsPerFile).toBeGreaterThan(0);
      }
      expect(report.intakeOverC).toHaveLength(1);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 420_000);
});
