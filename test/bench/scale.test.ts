/**
 * `npm run bench:scale` runs one batch to its end, writes its report and exits by itself. It
 * asserts no timing: figures belong to the bench, not to tests.
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
});
