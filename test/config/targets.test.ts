/** The targets configuration: clear errors on bad input, tokens only from the environment. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTargets, loadTargetsConfig, Semaphore } from '../../src/config/targets';
import { ConfigError } from '../../src/config/production-env';
import { cliEnv, runCli } from '../cli/helpers';

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
    [{ defaultTarget: 'a', targets: { a: { url: 'nope', tokenEnv: 'A' } } }, /target a, field url: /],
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
        /target east, field maxBytesPerSecond/,
      );
    }
  });

  it('a semaphore waiter that reaches its deadline takes no slot, and the slot goes to the next', async () => {
    const gate = new Semaphore(1);
    expect(await gate.acquire()).toBe(true);
    // Held: this one gives up at its deadline, without a slot.
    expect(await gate.acquire(Date.now() + 20)).toBe(false);
    const next = gate.acquire(Date.now() + 60_000);
    gate.release();
    // The released slot passed to the waiter still in line, not to the one that gave up.
    expect(await next).toBe(true);
    expect(await gate.acquire(Date.now() + 20)).toBe(false);
    gate.release();
    expect(await gate.acquire(Date.now())).toBe(true);
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

  describe('target kinds', () => {
    const s3 = {
      kind: 's3',
      endpoint: 'https://s3.example',
      bucket: 'scans',
      accessKeyIdEnv: 'S3_KEY',
      secretAccessKeyEnv: 'S3_SECRET',
    };
    const sftp = {
      kind: 'sftp',
      host: 'drop.example',
      username: 'imgsync',
      privateKeyEnv: 'SFTP_KEY',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
    };
    const secrets = {
      S3_KEY: 'AKIAEXAMPLE',
      S3_SECRET: 'very-secret-value',
      SFTP_KEY: 'PRIVATE KEY TEXT',
      E: 'plain-token-value',
    };

    it('reads s3 and sftp targets with their defaults, secrets from variables or the files they name', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-secrets-'));
      const secretFile = path.join(dir, 'secret');
      await writeFile(secretFile, 'from-a-file\n');
      const file = await targetsFile({
        defaultTarget: 'bucket',
        targets: {
          bucket: s3,
          drop: sftp,
          plain: { url: 'https://a.example', tokenEnv: 'E' },
          dav: { kind: 'webdav', url: 'https://dav.example/docs', usernameEnv: 'S3_KEY', passwordEnv: 'SFTP_KEY' },
        },
      });
      const { S3_SECRET: _unused, ...rest } = secrets;
      void _unused;
      const config = loadTargetsConfig({ IMAGE_SYNC_TARGETS_FILE: file, ...rest, S3_SECRET_FILE: secretFile });
      expect(config.targets.get('bucket')).toMatchObject({
        kind: 's3',
        region: 'us-east-1',
        prefix: '',
        forcePathStyle: false,
        accessKeyId: 'AKIAEXAMPLE',
        secretAccessKey: 'from-a-file',
      });
      expect(config.targets.get('drop')).toMatchObject({
        kind: 'sftp',
        port: 22,
        root: '/',
        privateKey: 'PRIVATE KEY TEXT',
      });
      expect(config.targets.get('plain')).toMatchObject({ kind: 'http', token: 'plain-token-value' });
      expect(config.targets.get('dav')).toMatchObject({
        kind: 'webdav',
        auth: { username: 'AKIAEXAMPLE', password: 'PRIVATE KEY TEXT' },
      });
      await createTargets(config).close();
    });

    it.each([
      [{ ...s3, bucket: undefined }, /target t, field bucket: /],
      [{ ...s3, endpoint: 'not a url' }, /target t, field endpoint: /],
      [{ ...s3, prefix: '/lead' }, /target t, field prefix: must be empty or end with "\/"/],
      [
        { ...s3, accessKeyIdEnv: 'UNSET' },
        /target t, field accessKeyIdEnv: environment variable UNSET is not set \(nor UNSET_FILE\)/,
      ],
      [{ ...s3, bucket: 'scans', bukcet: 'typo' }, /target t: .*bukcet/],
      [{ ...sftp, hostKey: 'AAAA' }, /target t, field hostKey: must be the server public key/],
      [
        { ...sftp, privateKeyEnv: undefined },
        /target t, field privateKeyFile: give exactly one of privateKeyFile and privateKeyEnv/,
      ],
      [
        { ...sftp, privateKeyEnv: undefined, privateKeyFile: '/no/such/key' },
        /target t, field privateKeyFile: cannot read \/no\/such\/key: ENOENT/,
      ],
      [{ ...sftp, root: 'relative' }, /target t, field root: must be an absolute path/],
      [
        { kind: 'webdav', url: 'https://dav.example' },
        /target t, field tokenEnv: give either usernameEnv and passwordEnv, or tokenEnv/,
      ],
      [{ kind: 'ftp' }, /target t, field kind: must be one of http, s3, sftp, webdav/],
      [
        { url: 'https://a.example', tokenEnv: 'E', certFile: '/c.pem' },
        /target t, field keyFile: certFile and keyFile go together/,
      ],
      [
        { url: 'http://a.example', tokenEnv: 'E', caFile: __filename },
        /target t, field url: caFile, certFile and keyFile need an https/,
      ],
    ])('refuses an incomplete or bad entry, naming the target and the field (%#)', async (entry, message) => {
      const file = await targetsFile({ defaultTarget: 't', targets: { t: entry } });
      let err: unknown;
      try {
        loadTargetsConfig({ IMAGE_SYNC_TARGETS_FILE: file, ...secrets });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      for (const secret of Object.values(secrets)) expect((err as Error).message).not.toContain(secret);
    });

    it('the worker exits 2 with one line naming the target and the field', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-cli-targets-'));
      const file = await targetsFile({
        defaultTarget: 'bucket',
        targets: { bucket: { ...s3, secretAccessKeyEnv: 'NOPE' } },
      });
      const res = await runCli(['worker'], {
        env: cliEnv(dir, { IMAGE_SYNC_TARGETS_FILE: file, S3_KEY: 'AKIAEXAMPLE' }),
        cwd: dir,
      });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/target bucket, field secretAccessKeyEnv: environment variable NOPE is not set/);
    });
  });
});
