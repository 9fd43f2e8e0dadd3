/**
 * The benchmark runs and writes what it promises. It asserts no timing: figures belong to
 * `npm run bench`, not to tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';

describe('npm run bench', () => {
  it('runs the four modes on a small batch and writes valid JSON and an SVG chart', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'image-sync-bench-test-'));
    try {
      const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
      const args = [
        'bench/bench.ts',
        '--files',
        '40',
        '--size',
        '2048',
        '--latency-ms',
        '0',
        '--concurrency',
        '8',
        '--out',
        out,
      ];
      const { stdout } = await promisify(execFile)(tsx, args, { cwd: PROJECT_ROOT, encoding: 'utf8' });
      expect(stdout).toMatch(/c\/a = [\d.]+ {3}c\/b = [\d.]+ {3}c\/d = [\d.]+/);
      const files = await readdir(out);
      const json = files.find((f) => f.endsWith('.json'));
      const svg = files.find((f) => f.endsWith('.svg'));
      expect(json).toBeDefined();
      expect(svg).toBeDefined();
      expect(files.filter((f) => f.startsWith('work-'))).toEqual([]); // generated files removed
      const report = JSON.parse(await readFile(path.join(out, json!), 'utf8')) as {
        params: { files: number; concurrency: number };
        results: {
          mode: string;
          files: number;
          filesPerSecond: number;
          p50Ms: number;
          p99Ms: number;
          cpuSecondsPerFile: number;
        }[];
        ratios: { cOverA: number; cOverB: number; cOverD: number; cpuCOverD: number };
      };
      expect(report.params).toMatchObject({ files: 40, concurrency: 8 });
      expect(report.results.map((r) => r.mode)).toEqual(['old-way', 'ceiling', 'image-sync', 'floor']);
      for (const r of report.results) {
        expect(r.files).toBe(40);
        expect(r.filesPerSecond).toBeGreaterThan(0);
        expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
        expect(r.cpuSecondsPerFile).toBeGreaterThan(0);
      }
      const temporal = report.results[2] as Record<string, unknown>;
      expect(temporal.historyEventsPerFile).toEqual(expect.any(Number));
      expect(temporal.fileWorkflowEventsPerFile).toEqual(expect.any(Number));
      expect(temporal.peakRssMb).toEqual(expect.any(Number));
      for (const r of report.results.slice(2) as Record<string, unknown>[]) {
        expect(r.serverCpuMsPerFile).toBeGreaterThan(0);
        expect(r.workerCpuMsPerFile).toBeGreaterThan(0);
      }
      // The floor's children are one workflow task each: a handful of events.
      const floor = report.results[3] as Record<string, unknown>;
      expect(floor.fileWorkflowEventsPerFile).toBeLessThanOrEqual(6);
      // The floor ran on the same kind of server as image-sync.
      expect(temporal.server).toBe('dev');
      expect(floor.server).toBe('dev');
      expect(report.ratios.cOverD).toBeGreaterThan(0);
      expect(report.ratios.cpuCOverD).toBeGreaterThan(0);
      expect(report.ratios.cOverA).toBeGreaterThan(0);
      expect(report.ratios.cOverB).toBeGreaterThan(0);
      expect(await readFile(path.join(out, svg!), 'utf8')).toContain('<svg');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 180_000);
});
