/**
 * `image-sync demo --target webdav --exit`: the demo starts a real WebDAV store (lighttpd with
 * mod_webdav) with a password made for the run, sends a small sample batch to it while three files
 * of another order come in over the intake API, checks the invariant of both and stops. The password reaches neither the output, nor the env file, nor the
 * targets file, nor the ledger.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/temporal/dev-server';
import { cliEnv, runCli, stopAllClis, tempDir } from './helpers';

describe('image-sync demo against a real server', () => {
  afterAll(stopAllClis);

  it('--target webdav sends the sample batch to a WebDAV store and keeps its password out of every output', async () => {
    const home = await tempDir('demo');
    const state = path.join(home, 'state');
    const result = await runCli(
      [
        'demo',
        '--target',
        'webdav',
        '--orders',
        '2',
        '--files-per-order',
        '3',
        '--state-dir',
        state,
        '--port',
        String(await freePort()),
        '--ui-port',
        String(await freePort()),
        '--exit',
      ],
      { env: cliEnv(home, { TEMPORAL_CLI_PATH: inject('temporalCliPath') }), timeoutMs: 240_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/target: WebDAV store \(lighttpd, mod_webdav\) http:\/\/127\.0\.0\.1:\d+/);
    expect(result.stdout).toMatch(/ended COMPLETED: 6 recorded/);
    expect(result.stdout).toContain('Consistency check: 6 files, 0 drifts, 0 needing attention');
    // Three files of another order came in over the intake API while the batch ran.
    const live = /Live submissions of (LIVE-[0-9-]+): 3 RECORDED\n/.exec(result.stdout);
    expect(live, result.stdout).not.toBeNull();
    const liveOrder = live![1]!;
    expect(result.stdout.match(new RegExp(`POST /v1/orders/${liveOrder}/files \\(\\S+\\) → 202`, 'g'))).toHaveLength(3);
    expect(result.stdout).toContain('Intake consistency check: 3 files, 0 drifts, 0 needing attention');

    // The store holds the six files under their orders, and the three submitted ones under theirs.
    const root = path.join(state, 'destination-webdav', 'webdav-root');
    const held = readdirSync(root)
      .filter((d) => !d.startsWith('.'))
      .flatMap((order) => readdirSync(path.join(root, order)).map((f) => `${order}/${f}`));
    expect(held).toHaveLength(9);
    expect(held.filter((f) => f.startsWith(`${liveOrder}/`))).toHaveLength(3);

    // The password is in its secret file only.
    const secretFile = path.join(state, 'destination-webdav', 'secrets', 'demo_webdav_password');
    const password = readFileSync(secretFile, 'utf8');
    expect(password.length).toBeGreaterThanOrEqual(16);
    const env = readFileSync(path.join(state, 'env'), 'utf8');
    expect(env).toContain(`DEMO_WEBDAV_PASSWORD_FILE=${secretFile}`);
    for (const text of [
      result.stdout,
      result.stderr,
      env,
      readFileSync(path.join(state, 'targets.json'), 'utf8'),
      readFileSync(path.join(state, 'ledger.db')).toString('latin1'),
    ]) {
      expect(text).not.toContain(password);
    }
  });
});
