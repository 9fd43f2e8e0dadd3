/**
 * Runs Temporal's dev server (`temporal server start-dev`) with a persistent SQLite file and the
 * project's search attributes, and waits until it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureTemporalCli } from './cli-binary';
import { loadSearchAttributes } from './search-attributes';

export interface DevServerOptions {
  /** SQLite file that keeps workflows across restarts; in memory when null. */
  dbFile: string | null;
  /** gRPC port; 0 picks a free one. */
  port: number;
  /** Web UI port; 0 picks a free one; null disables the UI. */
  uiPort: number | null;
  ip?: string;
  namespace?: string;
  /** Passed to --log-level. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** A codec server the Web UI decodes payloads through (--ui-codec-endpoint). */
  uiCodecEndpoint?: string;
  /** Where the server's own output goes; discarded when absent. */
  output?: NodeJS.WritableStream;
  startTimeoutMs?: number;
  /** Apply DEV_SERVER_TUNING (default true); false runs the dev server as the CLI ships it. */
  tuned?: boolean;
  /**
   * More dynamic configuration (`--dynamic-config-value KEY=VALUE`, the value as JSON), applied
   * after the tuning: e.g. a lowered `limit.blobSize.error` to see how a workflow meets it.
   */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/**
 * Dynamic configuration for the dev server, each measured with `npm run bench`
 * (docs/performance.md): one matching partition per task queue (a single-process server gains nothing
 * from four), and search attributes read from the cache (the CLI turns a refresh on every read
 * on, for tests that register attributes and use them at once; ours are registered at start).
 */
export const DEV_SERVER_TUNING: Record<string, string> = {
  'matching.numTaskqueueReadPartitions': '1',
  'matching.numTaskqueueWritePartitions': '1',
  'system.forceSearchAttributesCacheRefreshOnRead': 'false',
};

/**
 * Dynamic configuration the product needs from any dev server, tuned or not: the matcher that
 * honours task-queue priority keys, so an intake's files (priority 1) go ahead of a batch's
 * (the default, 3) on the same task queue (docs/intake.md). The older matcher ignores the keys.
 */
export const DEV_SERVER_REQUIRED: Record<string, string> = {
  'matching.useNewMatcher': 'true',
};

/** The command-line arguments that apply DEV_SERVER_REQUIRED. */
export function devServerRequiredArgs(): string[] {
  return Object.entries(DEV_SERVER_REQUIRED).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]);
}

/** SQLite pragmas for a dev server that keeps its state in a file. */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'];

/** The command-line arguments that apply the tuning. */
export function devServerTuningArgs(dbFile: string | null): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(DEV_SERVER_TUNING)) args.push('--dynamic-config-value', `${key}=${value}`);
  if (dbFile) for (const pragma of DEV_SERVER_SQLITE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  return args;
}

export interface RunningDevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  pid: number;
  cliPath: string;
  /** Resolves when the server process ends. */
  exited: Promise<number | null>;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls the frontend's health check until it answers SERVING. */
export async function waitForTemporal(
  address: string,
  timeoutMs: number,
  child?: ChildProcess,
  what = 'the Temporal dev server',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        const health = await connection.healthService.check({});
        if (health.status === 1) return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} at ${address} did not become healthy in ${timeoutMs} ms: ${String(lastError)}`);
}

export function devServerArgs(
  opts: Required<Pick<DevServerOptions, 'port' | 'ip' | 'namespace' | 'logLevel'>> & {
    dbFile: string | null;
    uiPort: number | null;
    tuned?: boolean;
    uiCodecEndpoint?: string;
    dynamicConfig?: DevServerOptions['dynamicConfig'];
  },
): string[] {
  const args = ['server', 'start-dev', '--ip', opts.ip, '--port', String(opts.port), '--log-level', opts.logLevel];
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (opts.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort));
  if (opts.uiPort !== null && opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  if (opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const [key, type] of Object.entries(loadSearchAttributes())) args.push('--search-attribute', `${key}=${type}`);
  args.push(...devServerRequiredArgs());
  if (opts.tuned !== false) args.push(...devServerTuningArgs(opts.dbFile));
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  return args;
}

export async function startDevServer(opts: DevServerOptions): Promise<RunningDevServer> {
  const location = await ensureTemporalCli();
  if (location.kind !== 'path') {
    throw new Error(
      'No Temporal CLI is installed and Go is not available to install it: run `npm run temporal:install` on a machine with Go, or set TEMPORAL_CLI_PATH',
    );
  }
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const port = opts.port || (await freePort(ip));
  const uiPort = opts.uiPort === null ? null : opts.uiPort || (await freePort(ip));
  if (opts.dbFile) mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  const args = devServerArgs({
    ip,
    port,
    uiPort,
    dbFile: opts.dbFile,
    namespace,
    logLevel: opts.logLevel ?? 'warn',
    tuned: opts.tuned,
    uiCodecEndpoint: opts.uiCodecEndpoint,
    dynamicConfig: opts.dynamicConfig,
  });
  const child = spawn(location.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (opts.output) {
    child.stdout?.pipe(opts.output, { end: false });
    child.stderr?.pipe(opts.output, { end: false });
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `${ip}:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForTemporal(address, opts.startTimeoutMs ?? 60_000, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address,
    uiUrl: uiPort === null ? null : `http://${ip === '0.0.0.0' ? 'localhost' : ip}:${uiPort}`,
    namespace,
    pid: child.pid ?? -1,
    cliPath: location.path,
    exited,
    stop,
  };
}
