/**
 * `image-sync recording-system`: the simulator as a command, spoken to with the real curl. The
 * HTTP contract of docs/recording-system-contract.md (PUT 201/200, GET receipt, list, DELETE 204/404, 401 without the
 * token), fault flags, flag validation, and files that survive a restart on the same data folder.
 */
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, reasonLines, runCli, runProgram, spawnCli, stopAllClis, tempDir, type CliProcess } from './helpers';

const TOKEN = 'cli-test-token-7d1c';

interface Answer {
  status: number;
  body: string;
}

const STATUS_MARK = '\n--http-status:';

async function curl(args: string[], home: string): Promise<Answer> {
  const res = await runProgram('curl', ['-sS', '--max-time', '20', '-w', `${STATUS_MARK}%{http_code}`, ...args], {
    env: cliEnv(home),
  });
  expect(res.code, res.stderr).toBe(0);
  const at = res.stdout.lastIndexOf(STATUS_MARK);
  return { status: Number(res.stdout.slice(at + STATUS_MARK.length)), body: res.stdout.slice(0, at) };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('image-sync recording-system', () => {
  let dir: string;
  let file: string;
  let fileSha: string;
  const fileBytes = Buffer.from('\x89PNG\r\n\x1a\n a tiny stand-in for an image, for the CLI test');

  beforeAll(async () => {
    dir = await tempDir('recording-system');
    file = path.join(dir, 'scan.png');
    await writeFile(file, fileBytes);
    fileSha = sha256(fileBytes);
  });
  afterEach(async () => {
    await stopAllClis();
  });
  afterAll(async () => {
    await stopAllClis();
    await rm(dir, { recursive: true, force: true });
  });

  async function startSimulator(dataDir: string, ...flags: string[]): Promise<{ proc: CliProcess; url: string }> {
    const proc = spawnCli(['recording-system', '--port', '0', '--token', TOKEN, '--data-dir', dataDir, ...flags], {
      env: cliEnv(dir),
      cwd: dir,
    });
    const m = await proc.waitForStdout(/listening on (http:\/\/[^\s]+)/, 30_000);
    return { proc, url: m[1]! };
  }

  function put(
    url: string,
    orderId: string,
    fileName: string,
    opts: { token?: string; key?: string; sha?: string; source?: string } = {},
  ) {
    const args = [
      '-X',
      'PUT',
      '--data-binary',
      `@${opts.source ?? file}`,
      '-H',
      'Content-Type: image/png',
      '-H',
      `X-Checksum-SHA256: ${opts.sha ?? fileSha}`,
      '-H',
      `Idempotency-Key: ${opts.key ?? 'isq-000001'}`,
    ];
    if (opts.token !== undefined) args.push('-H', `Authorization: Bearer ${opts.token}`);
    return curl([...args, `${url}/records/${orderId}/files/${fileName}`], dir);
  }

  const auth = ['-H', `Authorization: Bearer ${TOKEN}`];
  const listFiles = async (url: string) => {
    const res = await curl([...auth, `${url}/files`], dir);
    expect(res.status).toBe(200);
    return JSON.parse(res.body) as {
      files: { orderId: string; fileName: string; sha256: string }[];
      nextCursor: string | null;
    };
  };

  it('serves the HTTP contract: PUT 201 then 200, GET, list, DELETE 204 then 404, 401 without the token; files survive a restart', async () => {
    const dataDir = path.join(dir, 'data-contract');
    const sim = await startSimulator(dataDir);
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const fileUrl = `${sim.url}/records/ORD-1/files/scan.png`;

    const created = await put(sim.url, 'ORD-1', 'scan.png', { token: TOKEN });
    expect(created.status).toBe(201);
    const receipt = JSON.parse(created.body) as Record<string, unknown>;
    expect(receipt).toMatchObject({
      orderId: 'ORD-1',
      fileName: 'scan.png',
      sha256: fileSha,
      size: fileBytes.length,
      idempotencyKey: 'isq-000001',
    });
    expect(Number.isNaN(Date.parse(String(receipt.receivedAt)))).toBe(false);

    const again = await put(sim.url, 'ORD-1', 'scan.png', { token: TOKEN });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual(receipt);

    const got = await curl([...auth, fileUrl], dir);
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual(receipt);

    expect(await listFiles(sim.url)).toEqual({ files: [receipt], nextCursor: null });

    // Without a valid token: 401 and nothing changes.
    expect((await put(sim.url, 'ORD-1', 'other.png')).status).toBe(401);
    expect((await put(sim.url, 'ORD-1', 'other.png', { token: 'wrong-token' })).status).toBe(401);
    expect((await curl(['-X', 'DELETE', fileUrl], dir)).status).toBe(401);
    expect((await curl([fileUrl], dir)).status).toBe(401);
    expect((await curl([`${sim.url}/files`], dir)).status).toBe(401);
    expect(await listFiles(sim.url)).toEqual({ files: [receipt], nextCursor: null });

    const removed = await curl(['-X', 'DELETE', ...auth, fileUrl], dir);
    expect(removed.status).toBe(204);
    expect(removed.body).toBe('');
    expect((await curl(['-X', 'DELETE', ...auth, fileUrl], dir)).status).toBe(404);
    expect((await curl([...auth, fileUrl], dir)).status).toBe(404);
    expect((await listFiles(sim.url)).files).toEqual([]);

    // A file stored before a SIGTERM is served after a restart on the same data folder.
    const kept = await put(sim.url, 'ORD-2', 'kept.png', { token: TOKEN, key: 'isq-000002' });
    expect(kept.status).toBe(201);
    sim.proc.signal('SIGTERM');
    const stopped = await sim.proc.exit(15_000);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain('Stopped. Holding 1 files');

    const restarted = await startSimulator(dataDir);
    const after = await curl([...auth, `${restarted.url}/records/ORD-2/files/kept.png`], dir);
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body)).toEqual(JSON.parse(kept.body));
    expect((await listFiles(restarted.url)).files).toEqual([JSON.parse(kept.body)]);
  });

  it('--fail-rate 1 answers 503 and keeps nothing', async () => {
    const dataDir = path.join(dir, 'data-fail');
    const sim = await startSimulator(dataDir, '--fail-rate', '1');
    expect(sim.proc.stdout).toContain('failRate=1');
    const res = await put(sim.url, 'ORD-1', 'scan.png', { token: TOKEN });
    expect(res.status).toBe(503);
    await sim.proc.stop();
    const clean = await startSimulator(dataDir);
    expect((await listFiles(clean.url)).files).toEqual([]);
  });

  it('--reject-rate 1 answers 422 to a PUT and keeps nothing', async () => {
    const sim = await startSimulator(path.join(dir, 'data-reject'), '--reject-rate', '1');
    const res = await put(sim.url, 'ORD-1', 'scan.png', { token: TOKEN });
    expect(res.status).toBe(422);
    expect((await listFiles(sim.url)).files).toEqual([]);
  });

  it('takes its token from RECORDING_SYSTEM_TOKEN when --token is absent', async () => {
    const proc = spawnCli(['recording-system', '--port', '0', '--data-dir', path.join(dir, 'data-env-token')], {
      env: cliEnv(dir, { RECORDING_SYSTEM_TOKEN: TOKEN }),
      cwd: dir,
    });
    const url = (await proc.waitForStdout(/listening on (http:\/\/[^\s]+)/, 30_000))[1]!;
    expect((await put(url, 'ORD-1', 'scan.png', { token: TOKEN })).status).toBe(201);
    expect((await put(url, 'ORD-1', 'other.png', { token: 'another-token' })).status).toBe(401);
  });

  it.each([
    { name: '--fail-rate 2', args: ['--token', TOKEN, '--fail-rate', '2'], flag: '--fail-rate' },
    { name: '--port abc', args: ['--token', TOKEN, '--port', 'abc'], flag: '--port' },
    { name: 'no token and no RECORDING_SYSTEM_TOKEN', args: ['--port', '0'], flag: '--token' },
  ])('refuses $name with a one-line reason naming the flag', async ({ args, flag }) => {
    const res = await runCli(['recording-system', '--data-dir', path.join(dir, 'data-invalid'), ...args], {
      env: cliEnv(dir),
      cwd: dir,
      timeoutMs: 20_000,
    });
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stdout).not.toContain('listening');
    const reason = reasonLines(res.stderr);
    expect(reason, res.stderr).toHaveLength(1);
    expect(reason[0]).toMatch(/^image-sync: /);
    expect(reason[0]).toContain(flag);
  });
});
