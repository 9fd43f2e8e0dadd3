/**
 * `npm run bench:ledger` writes both ways of recording a delivered file, side by side, and
 * reports their figures. It asserts no timing: figures belong to the bench, not to tests.
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

describe('npm run bench:ledger', () => {
  it('refuses a ledger kind it does not know', async () => {
    const failure = run(tsx, ['bench/ledger.ts', '--ledger', 'mysql'], { cwd: PROJECT_ROOT, timeout: 30_000 });
    await expect(failure).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('--ledger must be sqlite, postgres or both'),
    });
  });

  it('measures both ways on a SQLite ledger and writes its report', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-ledger-bench-test-'));
    try {
      const { stdout } = await run(
        tsx,
        ['bench/ledger.ts', '--files', '20', '--rounds', '1', '--ledger', 'sqlite', '--out', out],
        { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 },
      );
      expect(stdout).toMatch(/sqlite: per delivered file, step [\d.]+ ms CPU/);
      const json = (await readdir(out)).find((f) => f.startsWith('ledger-') && f.endsWith('-n20.json'));
      expect(json).toBeDefined();
      const report = JSON.parse(await readFile(path.join(out, json!), 'utf8')) as {
        sqlite: { runs: Record<string, unknown[]>; medians: Record<string, { cpuMsPerFile: number }> };
      };
      expect(report.sqlite.runs.step).toHaveLength(1);
      expect(report.sqlite.runs.separate).toHaveLength(1);
      expect(report.sqlite.medians.step!.cpuMsPerFile).toBeGreaterThan(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 90_000);
});
