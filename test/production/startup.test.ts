/**
 * The worker's start-up never hangs (`image-sync worker` as a process of its own, JSON logs):
 * a ledger that is unreachable at start is retried, logged and reported by /health until it
 * answers, then the worker serves a batch; Temporal unreachable past IMAGE_SYNC_STARTUP_TIMEOUT_MS
 * ends the process with exit 1 and one line; a bad configuration exits 2 at once; SIGTERM stops
 * it while it waits. Every line it writes is JSON.
 *
 * The ledger's PostgreSQL is reached through a TCP relay on a port of this test, which the test
 * opens only later: the machine's PostgreSQL itself is never stopped.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Client as PgClient } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/temporal/dev-server';
import { cliEnv, spawnCli, stopAllClis, tempDir, type CliProcess } from '../cli/helpers';
import { startHarness, type Harness } from '../helpers/harness';
import { waitFor } from '../helpers/wait';

const PG_URL = process.env.IMAGE_SYNC_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Every line of a stream of JSON lines, parsed; fails on a line that is not JSON. */
function jsonLines(text: string, stream: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`a line on ${stream} is not JSON: ${line}`);
      }
    });
}

/** A TCP relay to PostgreSQL on a port chosen now and opened later. */
async function laterRelay(target: URL) {
  const port = await freePort();
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  return {
    port,
    async open() {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 5432), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, '127.0.0.1', () => resolve());
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

async function health(url: string): Promise<{ status: number; body: { status?: string } } | undefined> {
  const res = await fetch(`${url}/health`).catch(() => undefined);
  if (!res) return undefined;
  return { status: res.status, body: (await res.json()) as { status?: string } };
}

describe('image-sync worker start-up', () => {
  let h: Harness;
  let home: string;
  const schema = `startup_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    h = await startHarness();
    await h.stopWorker(); // batches here run in the worker processes the tests start
    home = await tempDir('startup-home');
  });
  afterEach(async () => {
    await stopAllClis();
  });
  afterAll(async () => {
    await stopAllClis();
    await h?.close();
    const pg = new PgClient({ connectionString: PG_URL });
    await pg.connect().catch(() => undefined);
    await pg.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pg.end().catch(() => undefined);
  });

  const workerEnv = (extra: Record<string, string>) =>
    cliEnv(home, { ...h.env, IMAGE_SYNC_LOG_FORMAT: 'json', IMAGE_SYNC_LOG_LEVEL: 'WARN', ...extra });

  it('PostgreSQL unreachable at start: it retries, says so in its log and /health, then serves a batch', async () => {
    const target = new URL(PG_URL);
    const relay = await laterRelay(target);
    const metricsPort = await freePort();
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    const ledgerUrl = new URL(PG_URL);
    ledgerUrl.port = String(relay.port);
    ledgerUrl.hostname = '127.0.0.1';
    ledgerUrl.searchParams.set('schema', schema);
    let worker: CliProcess | undefined;
    try {
      worker = spawnCli(['worker'], {
        env: workerEnv({
          IMAGE_SYNC_LEDGER_URL: ledgerUrl.toString(),
          IMAGE_SYNC_METRICS_PORT: String(metricsPort),
          IMAGE_SYNC_STARTUP_TIMEOUT_MS: '120000',
        }),
        cwd: h.workDir,
      });
      await worker.waitForStdout(
        /the ledger \(PostgreSQL at 127\.0\.0\.1:\d+\/test schema \w+\) unreachable \(attempt 2\)/,
        60_000,
      );
      const starting = await waitFor('/health while the ledger is away', () => health(metricsUrl));
      expect(starting.status).toBe(503);
      expect(starting.body.status).toMatch(/^starting: waiting for the ledger/);
      expect(worker.running).toBe(true);

      await relay.open();
      await worker.waitForStdout(/Worker polling task queue/, 90_000);
      const serving = await waitFor('/health 200', async () => {
        const answer = await health(metricsUrl);
        return answer?.status === 200 && answer;
      });
      expect(serving.body.status).toBe('polling');

      const items = await h.makeFiles(3, 512, 3);
      const { handle } = await h.start(items, { maxConcurrency: 3 });
      const result = await handle.result();
      expect(result.state).toBe('COMPLETED');
      expect(result.recorded).toBe(3);

      worker.signal('SIGTERM');
      const exit = await worker.exit(60_000);
      expect(exit.code).toBe(0);
      const out = jsonLines(exit.stdout, 'stdout');
      jsonLines(exit.stderr, 'stderr');
      const retries = out.filter((l) => l.level === 'warn' && String(l.msg).includes('unreachable'));
      expect(retries.length).toBeGreaterThanOrEqual(2);
      expect(retries[0]).toMatchObject({ attempt: 1, dependency: expect.stringContaining('the ledger') });
      expect(out[0]!.msg).toBe('Worker starting: stop signals are handled from now on');
      expect(out.map((l) => l.msg)).toContain('Worker stopped');
    } finally {
      await worker?.stop();
      await relay.close();
    }
  }, 180_000);

  it('Temporal unreachable past IMAGE_SYNC_STARTUP_TIMEOUT_MS: exit 1 and one JSON line saying why', async () => {
    const nobody = await freePort();
    const t0 = Date.now();
    const worker = spawnCli(['worker'], {
      env: workerEnv({ TEMPORAL_ADDRESS: `127.0.0.1:${nobody}`, IMAGE_SYNC_STARTUP_TIMEOUT_MS: '4000' }),
      cwd: h.workDir,
    });
    const exit = await worker.exit(60_000);
    expect(exit.code).toBe(1);
    const errors = jsonLines(exit.stderr, 'stderr').filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(
      new RegExp(`^Temporal at 127\\.0\\.0\\.1:${nobody} unreachable: not started within 4000 ms`),
    );
    expect(errors[0]!.exitCode).toBe(1);
    const out = jsonLines(exit.stdout, 'stdout');
    expect(out.filter((l) => l.attempt !== undefined).length).toBeGreaterThanOrEqual(2);
    // Bounded: the process ends soon after the bound (its own start takes seconds from the sources).
    expect(Date.now() - t0).toBeLessThan(40_000);
  }, 90_000);

  it('a bad configuration (RECORDING_SYSTEM_TOKEN unset) exits 2 at once, with one JSON line and no retry', async () => {
    const worker = spawnCli(['worker'], {
      env: workerEnv({ RECORDING_SYSTEM_TOKEN: '' }),
      cwd: h.workDir,
    });
    const exit = await worker.exit(60_000);
    expect(exit.code).toBe(2);
    const errors = jsonLines(exit.stderr, 'stderr');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ level: 'error', exitCode: 2 });
    expect(errors[0]!.msg).toMatch(/^RECORDING_SYSTEM_TOKEN is not set/);
    expect(jsonLines(exit.stdout, 'stdout').filter((l) => l.attempt !== undefined)).toHaveLength(0);
  }, 90_000);

  it('SIGTERM while it waits for the ledger: it stops at once, exit 0', async () => {
    const nobody = await freePort();
    const worker = spawnCli(['worker'], {
      env: workerEnv({
        IMAGE_SYNC_LEDGER_URL: `postgres://postgres@127.0.0.1:${nobody}/test`,
        IMAGE_SYNC_STARTUP_TIMEOUT_MS: '600000',
      }),
      cwd: h.workDir,
    });
    await worker.waitForStdout(/unreachable \(attempt 1\)/, 60_000);
    const t0 = Date.now();
    worker.signal('SIGTERM');
    const exit = await worker.exit(15_000);
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const msgs = jsonLines(exit.stdout, 'stdout').map((l) => String(l.msg));
    expect(msgs.some((m) => m.startsWith('Worker: SIGTERM, stopping'))).toBe(true);
    expect(msgs).toContain('Worker stopped');
    expect(msgs.some((m) => m.startsWith('Worker polling'))).toBe(false);
    jsonLines(exit.stderr, 'stderr');
  }, 90_000);
});
