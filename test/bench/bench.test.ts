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
import { medianRun, pairRatios, type ModeResult } from '../../bench/bench';

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

describe('bench pairs', () => {
  const run = (mode: ModeResult['mode'], filesPerSecond: number, cpuSecondsPerFile: number): ModeResult => ({
    mode,
    files: 100,
    wallSeconds: 100 / filesPerSecond,
    filesPerSecond,
    p50Ms: 1,
    p99Ms: 2,
    cpuSecondsPerFile,
  });

  it('takes c/d as the median of the pairs, each pair in the order it ran', () => {
    const pairs = [
      { c: run('image-sync', 80, 0.02), d: run('floor', 100, 0.016) }, // 0.8, 1.25
      { c: run('image-sync', 90, 0.02), d: run('floor', 100, 0.02) }, // 0.9, 1
      { c: run('image-sync', 50, 0.04), d: run('floor', 50, 0.02) }, // 1, 2
    ];
    const ratios = pairRatios(pairs, { ceiling: run('ceiling', 200, 0.01) });
    expect(ratios.pairs).toEqual([
      { order: 'cd', cOverD: 0.8, cpuCOverD: 1.25 },
      { order: 'dc', cOverD: 0.9, cpuCOverD: 1 },
      { order: 'cd', cOverD: 1, cpuCOverD: 2 },
    ]);
    expect(ratios.cOverD).toBe(0.9);
    expect(ratios.cpuCOverD).toBe(1.25);
    // c/b from the median run of c (80 files/s), not from the last or the first.
    expect(ratios.cOverB).toBe(0.4);
    expect(ratios.cpuCOverB).toBe(2);
    expect(ratios.cOverA).toBeNull();
  });

  it('gives the middle of two pairs, and no c/d without a floor', () => {
    const two = pairRatios(
      [
        { c: run('image-sync', 80, 0.02), d: run('floor', 100, 0.02) },
        { c: run('image-sync', 90, 0.02), d: run('floor', 100, 0.02) },
      ],
      { oldWay: run('old-way', 10, 0.01), ceiling: run('ceiling', 160, 0.01) },
    );
    expect(two.cOverD).toBe(0.85);
    expect(two.cOverA).toBe(8);
    expect(medianRun([run('image-sync', 3, 1), run('image-sync', 1, 1), run('image-sync', 2, 1)]).filesPerSecond).toBe(
      2,
    );
    const none = pairRatios([{ c: run('image-sync', 80, 0.02) }], { ceiling: run('ceiling', 160, 0.01) });
    expect(none.cOverD).toBeNull();
    expect(none.pairs).toEqual([]);
  });
});
