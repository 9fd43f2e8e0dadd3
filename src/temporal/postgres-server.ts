/**
 * Runs the Temporal server (the pinned `go.temporal.io/server`) on PostgreSQL: checks the
 * database, sets up or upgrades Temporal's persistence and visibility schemas with Temporal's own
 * SQL tool (postgres-database.ts), writes the server's configuration (server-config.ts), starts
 * it, creates the namespace and registers the project's search attributes (namespace-setup.ts)
 * and, when asked, serves the Web UI.
 *
 * Every port the server opens (frontend, history, matching and worker, each with a membership
 * port, and the frontend's HTTP port) is either given or picked free; metrics and pprof are off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitForTemporal } from './dev-server';
import { prepareNamespace } from './namespace-setup';
import {
  describeTarget,
  parsePostgresUrl,
  PERSISTENCE_SCHEMA,
  preparePostgres,
  setupSchemas,
  VISIBILITY_SCHEMA,
} from './postgres-database';
import {
  DYNAMIC_CONFIG_FILE,
  pickServerPorts,
  portIsFree,
  serverConfigYaml,
  uiConfigYaml,
  type ServerPorts,
} from './server-config';
import { ensureServerPart, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from './server-binary';

export interface PostgresServerOptions {
  postgresUrl: string;
  /** Frontend gRPC port; 0 picks a free one. */
  port: number;
  /** Web UI port; 0 picks a free one; null serves no UI. */
  uiPort: number | null;
  ip?: string;
  namespace?: string;
  /** Where the configuration and the logs go. */
  stateDir: string;
  /** Fixed when the database is first set up. */
  historyShards?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Receives the server's own log lines too (they always go to stateDir/server.log). */
  output?: NodeJS.WritableStream;
  /** Progress messages (installs, schema steps). */
  log?: (line: string) => void;
  startTimeoutMs?: number;
  /** Connections per persistence store. */
  maxConns?: number;
}

export interface StartTimings {
  installMs: number;
  schemaMs: number;
  startMs: number;
  namespaceMs: number;
}

export interface RunningPostgresServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  pid: number;
  uiPid: number | null;
  ports: ServerPorts;
  database: string;
  logFile: string;
  timings: StartTimings;
  /** Resolves when the server process ends. */
  exited: Promise<number | null>;
  /** Stops the UI server and the Temporal server (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The last error lines of the server's JSON log, as `msg: error`, without stack traces. */
export function lastServerErrors(file: string, lines = 3, fromByte = 0): string {
  let text = '';
  try {
    text = readFileSync(file).subarray(fromByte).toString('utf8');
  } catch {
    return '';
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      if (entry.level === 'error' || entry.level === 'fatal' || entry.level === 'panic') {
        out.push(`${entry.msg ?? ''}${entry.error ? `: ${entry.error}` : ''}`);
      }
    } catch {
      out.push(line.slice(0, 300));
    }
  }
  return [...new Set(out)].slice(-lines).join('\n');
}

interface Launched {
  child: ChildProcess;
  exited: Promise<number | null>;
  ports: ServerPorts;
  address: string;
}

function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function launch(
  serverBin: string,
  stateDir: string,
  logFile: string,
  output: NodeJS.WritableStream | undefined,
  ports: ServerPorts,
  ip: string,
): Launched {
  const logStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(
    serverBin,
    ['--root', stateDir, '--config', 'config', '--env', 'image-sync', '--allow-no-auth', 'start'],
    { cwd: stateDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream?.pipe(logStream, { end: false });
    if (output) stream?.pipe(output, { end: false });
  }
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      logStream.end();
      resolve(code);
    }),
  );
  return { child, exited, ports, address: `${ip}:${ports.frontend}` };
}

export async function startPostgresServer(opts: PostgresServerOptions): Promise<RunningPostgresServer> {
  const log = opts.log ?? (() => undefined);
  const target = parsePostgresUrl(opts.postgresUrl);
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const t0 = Date.now();
  for (const [flag, port] of [
    ['--port', opts.port],
    ['--ui-port', opts.uiPort],
  ] as const) {
    if (port && !(await portIsFree(ip, port))) throw new Error(`${flag} ${port} is in use on ${ip}`);
  }
  // Reach the database before anything slow, so a wrong URL fails in seconds.
  await preparePostgres(target);
  const serverBin = await ensureServerPart('server', { log });
  const sqlTool = await ensureServerPart('sql-tool', { log });
  const uiBin = opts.uiPort === null ? null : await ensureServerPart('ui-server', { log });
  const t1 = Date.now();
  log(
    `Setting up Temporal's schemas in ${describeTarget(target)} (schemas ${PERSISTENCE_SCHEMA}, ${VISIBILITY_SCHEMA})...`,
  );
  await setupSchemas(sqlTool, target);
  const t2 = Date.now();

  const configDir = path.join(opts.stateDir, 'config');
  mkdirSync(configDir, { recursive: true });
  const logFile = path.join(opts.stateDir, 'server.log');
  let ui: ChildProcess | null = null;
  let uiUrl: string | null = null;
  let t3 = 0;
  let launched: Launched | undefined;
  // A port picked free can be taken by another program before the server binds it: pick again.
  for (let attempt = 1; ; attempt++) {
    const ports = await pickServerPorts(ip, opts.port);
    writeFileSync(
      path.join(configDir, 'image-sync.yaml'),
      serverConfigYaml({
        target,
        ports,
        ip,
        historyShards: opts.historyShards ?? 4,
        logLevel: opts.logLevel ?? 'warn',
        dynamicConfigFile: DYNAMIC_CONFIG_FILE,
        maxConns: opts.maxConns ?? 20,
      }),
      { mode: 0o600 },
    );
    const logStart = logSize(logFile);
    const current = launch(serverBin, opts.stateDir, logFile, opts.output, ports, ip);
    try {
      await waitForTemporal(current.address, opts.startTimeoutMs ?? 90_000, current.child, 'the Temporal server');
      launched = current;
      break;
    } catch (err) {
      await stopChild(current.child, 20_000);
      await current.exited;
      const last = lastServerErrors(logFile, 3, logStart);
      if (attempt < 3 && /address already in use/i.test(last)) continue;
      throw new Error(
        `the Temporal server did not start: ${(err as Error).message}${last ? `\nlast errors in ${logFile}:\n${last}` : ''}`,
      );
    }
  }
  const { child, exited, ports, address } = launched;
  const stop = async () => {
    if (ui) await stopChild(ui, 5_000);
    await stopChild(child, 20_000);
    await exited;
  };
  try {
    t3 = Date.now();
    await prepareNamespace(address, namespace, 3);
    if (uiBin && opts.uiPort !== null) {
      const uiPort = opts.uiPort || (await freePort(ip));
      const uiDir = path.join(opts.stateDir, 'ui');
      mkdirSync(path.join(uiDir, 'config'), { recursive: true });
      writeFileSync(
        path.join(uiDir, 'config', 'image-sync.yaml'),
        uiConfigYaml({ ip, uiPort, frontend: address, namespace }),
      );
      ui = spawn(uiBin, ['--root', uiDir, '--config', 'config', '--env', 'image-sync', 'start'], {
        cwd: uiDir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const uiLog = createWriteStream(path.join(opts.stateDir, 'ui.log'), { flags: 'a' });
      for (const stream of [ui.stdout, ui.stderr]) stream?.pipe(uiLog, { end: false });
      ui.once('exit', () => uiLog.end());
      uiUrl = `http://${ip === '0.0.0.0' ? 'localhost' : ip}:${uiPort}`;
      await waitForHttp(uiUrl, 30_000, ui);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const t4 = Date.now();
  return {
    address,
    uiUrl,
    namespace,
    pid: child.pid ?? -1,
    uiPid: ui?.pid ?? null,
    ports,
    database: target.database,
    logFile,
    timings: { installMs: t1 - t0, schemaMs: t2 - t1, startMs: t3 - t2, namespaceMs: t4 - t3 },
    exited,
    stop,
  };
}

async function waitForHttp(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Temporal Web UI server exited with code ${child.exitCode}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the Temporal Web UI at ${url} did not answer in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export const PINNED_VERSIONS = { server: TEMPORAL_SERVER_VERSION, ui: TEMPORAL_UI_SERVER_VERSION };
