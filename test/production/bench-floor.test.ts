/**
 * `npm run bench -- --server postgres` measures the floor (d) on a Temporal server on PostgreSQL
 * too, started the way the bench stack starts image-sync's, so that c/d compares two programs on
 * the same kind of server. It asserts no timing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';

describe('npm run bench -- --server postgres', () => {
  it('runs image-sync and the floor each on a Temporal server on PostgreSQL, counting the database CPU of both', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-bench-pg-test-'));
    try {
      const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
      const args = ['bench/bench.ts', '--server', 'postgres', '--files', '16', '--size', '512'];
      args.push('--latency-ms', '0', '--concurrency', '4', '--skip-old-way', '--out', out);
      const { stdout } = await promisify(execFile)(tsx, args, {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        timeout: 240_000,
      });
      expect(stdout).toMatch(/c\/d = [\d.]+/);
      const json = (await readdir(out)).find((f) => f.endsWith('-postgres-w0.json'));
      expect(json).toBeDefined();
      const report = JSON.parse(await readFile(path.join(out, json!), 'utf8')) as {
        results: Record<string, unknown>[];
        ratios: { cOverD: number };
      };
      const [c, d] = report.results.filter((r) => r.mode === 'image-sync' || r.mode === 'floor');
      expect(c).toMatchObject({ mode: 'image-sync', server: 'postgres', files: 16 });
      expect(d).toMatchObject({ mode: 'floor', server: 'postgres', files: 16 });
      expect(c!.databaseCpuSecondsPerFile).toBeGreaterThan(0);
      expect(d!.databaseCpuSecondsPerFile).toBeGreaterThan(0);
      expect(report.ratios.cOverD).toBeGreaterThan(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 300_000);
});
