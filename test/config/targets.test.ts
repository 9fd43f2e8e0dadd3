/** The targets configuration: clear errors on bad input, tokens only from the environment. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTargets, loadTargetsConfig, Semaphore } from '../../src/config/targets';

async function targetsFile(content: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-targets-'));
  const file = path.join(dir, 'targets.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('targets configuration', () => {
  it('defaults to one target from RECORDING_SYSTEM_URL and RECORDING_SYSTEM_TOKEN', () => {
    const config = loadTargetsConfig({ RECORDING_SYSTEM_URL: 'http://127.0.0.1:9', RECORDING_SYSTEM_TOKEN: 's3cret' });
    expect(config.defaultTarget).toBe('default');
    expect(config.targets.get('default')).toMatchObject({
      url: 'http://127.0.0.1:9',
      token: 's3cret',
      maxConcurrency: 32,
    });
    expect(createTargets(config).has(undefined)).toBe(true);
  });

  it('refuses a missing token and a bad URL, without echoing secrets', () => {
    expect(() => loadTargetsConfig({})).toThrow(/RECORDING_SYSTEM_TOKEN is not set/);
    expect(() => loadTargetsConfig({ RECORDING_SYSTEM_TOKEN: 't', RECORDING_SYSTEM_URL: 'not a url' })).toThrow(
      /^RECORDING_SYSTEM_URL=not a url is invalid: an http:\/\/ or https:\/\/ URL$/,
    );
  });

  it('reads several targets from a file, tokens from the variables it names', async () => {
    const file = await targetsFile({
      defaultTarget: 'east',
      targets: {
        east: { url: 'https://east.example', tokenEnv: 'EAST_TOKEN', maxConcurrency: 4 },
        west: { url: 'https://west.example', tokenEnv: 'WEST_TOKEN' },
      },
    });
    const config = loadTargetsConfig({ IMAGE_SYNC_TARGETS_FILE: file, EAST_TOKEN: 'e', WEST_TOKEN: 'w' });
    expect(config.defaultTarget).toBe('east');
    expect(config.targets.get('west')).toMatchObject({ token: 'w', maxConcurrency: 32 });
    const targets = createTargets(config);
    expect(targets.resolveName(undefined)).toBe('east');
    expect(() => targets.get('north')).toThrow(/unknown target "north" \(configured: east, west\)/);
  });

  it.each([
    ['{ not json', /IMAGE_SYNC_TARGETS_FILE .*targets\.json: /],
    [{ defaultTarget: 'a', targets: { a: { url: 'nope', tokenEnv: 'A' } } }, /targets\.a\.url/],
    [
      { defaultTarget: 'a', targets: { a: { url: 'https://a.example', tokenEnv: 'lower' } } },
      /must name an environment variable/,
    ],
    [
      { defaultTarget: 'b', targets: { a: { url: 'https://a.example', tokenEnv: 'A' } } },
      /defaultTarget b is not among the targets/,
    ],
    [
      { defaultTarget: 'a', targets: { a: { url: 'https://a.example', tokenEnv: 'UNSET_TOKEN' } } },
      /UNSET_TOKEN is not set/,
    ],
  ])('a bad targets file is refused with a message that says why (%#)', async (content, message) => {
    const file = await targetsFile(content);
    expect(() => loadTargetsConfig({ IMAGE_SYNC_TARGETS_FILE: file, A: 'a' })).toThrow(message);
  });

  it("reads each target's rate limits, and refuses ones that are not positive numbers", async () => {
    const file = await targetsFile({
      defaultTarget: 'east',
      targets: {
        east: {
          url: 'https://east.example',
          tokenEnv: 'EAST_TOKEN',
          maxBytesPerSecond: 5e6,
          maxRequestsPerSecond: 2.5,
        },
        west: { url: 'https://west.example', tokenEnv: 'WEST_TOKEN' },
      },
    });
    const env = { IMAGE_SYNC_TARGETS_FILE: file, EAST_TOKEN: 'e', WEST_TOKEN: 'w' };
    expect(createTargets(loadTargetsConfig(env)).limits()).toEqual({
      east: { maxBytesPerSecond: 5e6, maxRequestsPerSecond: 2.5 },
      west: {},
    });
    for (const bad of [0, -1, '100']) {
      const badFile = await targetsFile({
        defaultTarget: 'east',
        targets: { east: { url: 'https://east.example', tokenEnv: 'EAST_TOKEN', maxBytesPerSecond: bad } },
      });
      expect(() => loadTargetsConfig({ ...env, IMAGE_SYNC_TARGETS_FILE: badFile })).toThrow(
        /targets\.east\.maxBytesPerSecond/,
      );
    }
  });

  it('the per-target semaphore holds requests to its limit', async () => {
    const gate = new Semaphore(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 12 }, () =>
        gate.run(async () => {
          active += 1;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 5));
          active -= 1;
        }),
      ),
    );
    expect(peak).toBe(3);
  });
});
