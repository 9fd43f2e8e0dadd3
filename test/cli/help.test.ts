/**
 * Every command of the CLI has help: the top-level help lists each one, and each command's
 * --help exits 0 with its usage line. The command list comes from buildProgram(), so a new
 * command is covered without touching this file.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { cliEnv, reasonLines, runCli, stopAllClis, tempDir } from './helpers';

const COMMANDS = buildProgram().commands.map((c) => c.name());

describe('image-sync --help', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('help');
  });
  afterAll(async () => {
    await stopAllClis();
    await rm(dir, { recursive: true, force: true });
  });

  it('knows the documented commands', () => {
    expect(COMMANDS).toEqual(
      expect.arrayContaining([
        'demo',
        'dev-server',
        'temporal-server',
        'recording-system',
        'worker',
        'start',
        'status',
        'cancel',
        'retry',
        'pause',
        'resume',
        'report',
        'reconcile',
      ]),
    );
  });

  it('lists every command', async () => {
    const res = await runCli(['--help'], { env: cliEnv(dir), cwd: dir });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^Usage: image-sync /);
    const listed = new Set([...res.stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]));
    for (const name of COMMANDS) expect(listed, name).toContain(name);
  });

  // Each run stops its own process (runCli), so these may run side by side.
  it.concurrent.each(COMMANDS)('%s --help exits 0 and prints its usage', async (name) => {
    const res = await runCli([name, '--help'], { env: cliEnv(dir), cwd: dir });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Usage: image-sync ${name}`);
    expect(res.stderr).toBe('');
  });

  it('an unknown command exits non-zero with a one-line reason', async () => {
    const res = await runCli(['no-such-command'], { env: cliEnv(dir), cwd: dir });
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stdout).toBe('');
    const reason = reasonLines(res.stderr);
    expect(reason).toHaveLength(1);
    expect(reason[0]).toContain("unknown command 'no-such-command'");
  });
});
