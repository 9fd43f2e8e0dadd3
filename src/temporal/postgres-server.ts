/**
 * Runs the Temporal server (the pinned `go.temporal.io/server`) on PostgreSQL: checks the
 * database, sets up or upgrades Temporal's persistence and visibility schemas with Temporal's own
 * SQL tool, writes the server's configuration, starts it, creates the namespace, registers the
 * project's search attributes and, when asked, serves the Web UI.
 *
 * One PostgreSQL database holds everything, in two PostgreSQL schemas selected through the
 * connection's search_path: `temporal` (persistence) and `temporal_visibility` (visibility).
 * Every port the server opens (frontend, history, matching and worker, each with a membership
 * port, and the frontend's HTTP port) is either given or picked free; metrics and pprof are off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { Client as PgClient } from 'pg';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT } from './cli-binary';
import { freePort, waitForTemporal } from './dev-server';
import { ensureServerPart, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from './server-binary';
import { loadSearchAttributes, type SearchAttributeTypeName } from './search-attributes';

export const PERSISTENCE_SCHEMA = 'temporal';
export const VISIBILITY_SCHEMA = 'temporal_visibility';
export const DYNAMIC_CONFIG_FILE = path.join(PROJECT_ROOT, 'temporal-config', 'dynamicconfig', 'development-sql.yaml');

export interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** Reads `postgres://user[:password]@host[:port]/database`; one line naming what is wrong otherwise. */
export function parsePostgresUrl(raw: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--postgres must be a URL like postgres://user@host:5432/database, got "${raw}"`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`--postgres must start with postgres:// or postgresql://, got "${url.protocol}//"`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw new Error('--postgres must name a database, as in postgres://user@host:5432/temporal');
  }
  if (!url.hostname) throw new Error('--postgres must name a host, as in postgres://user@127.0.0.1:5432/temporal');
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username) || 'postgres',
    password: decodeURIComponent(url.password),
    database,
  };
}

function describeTarget(t: PostgresTarget): string {
  return `${t.user}@${t.host}:${t.port}/${t.database}`;
}

/**
 * Connects once to the database: a clear error when PostgreSQL does not answer, refuses the
 * user, or the database does not exist. Then creates the two schemas when missing.
 */
export async function preparePostgres(target: PostgresTarget): Promise<void> {
  const client = new PgClient({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password || undefined,
    database: target.database,
    connectionTimeoutMillis: 5_000,
  });
  try {
    await client.connect();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: string };
    await client.end().catch(() => undefined);
    if (e.code === '3D000') {
      throw new Error(
        `PostgreSQL database "${target.database}" does not exist on ${target.host}:${target.port}: create it first (createdb -h ${target.host} -p ${target.port} -U ${target.user} ${target.database})`,
      );
    }
    if (e.code === '28P01' || e.code === '28000') {
      throw new Error(`PostgreSQL refused ${describeTarget(target)}: ${e.message}`);
    }
    throw new Error(`PostgreSQL is not reachable at ${target.host}:${target.port}: ${e.message || e.code}`);
  }
  try {
    for (const schema of [PERSISTENCE_SCHEMA, VISIBILITY_SCHEMA]) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    }
  } finally {
    await client.end();
  }
}

export interface SqlToolRun {
  args: string[];
  output: string;
}

/** Runs Temporal's SQL tool against one of the two schemas. */
async function runSqlTool(
  tool: string,
  target: PostgresTarget,
  schema: string,
  command: string[],
): Promise<SqlToolRun> {
  const args = [
    '--plugin',
    'postgres12',
    '--endpoint',
    target.host,
    '--port',
    String(target.port),
    '--user',
    target.user,
    '--database',
    target.database,
    '--connect-attributes',
    `search_path=${schema}`,
    ...command,
  ];
  // The password goes through the tool's environment variable, never its arguments.
  const env = { ...process.env, SQL_PASSWORD: target.password };
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve({ args, output });
      else {
        const last = lastErrorLine(output);
        reject(new Error(`Temporal's SQL tool failed (${command[0]} in schema ${schema}): ${last}`));
      }
    });
  });
}

function lastErrorLine(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim());
  const error = [...lines].reverse().find((l) => /error|fatal|panic/i.test(l));
  return (error ?? lines.at(-1) ?? 'no output').slice(0, 500);
}

/** Sets up (first time) or upgrades (later) Temporal's persistence and visibility schemas. */
export async function setupSchemas(tool: string, target: PostgresTarget): Promise<void> {
  for (const [schema, schemaName] of [
    [PERSISTENCE_SCHEMA, 'postgresql/v12/temporal'],
    [VISIBILITY_SCHEMA, 'postgresql/v12/visibility'],
  ] as const) {
    // Versioning tables and version 0.0 when missing; a no-op on a schema already set up.
    await runSqlTool(tool, target, schema, ['setup-schema', '-v', '0.0']);
    // Applies every versioned step above the recorded version (embedded in the tool).
    await runSqlTool(tool, target, schema, ['update-schema', '--schema-name', schemaName]);
  }
}

export interface ServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** True when the port can be bound on ip right now. */
function portIsFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

/**
 * Free ports for every service. They are drawn below 32768: Temporal keeps membership ports in a
 * SMALLINT column, so the kernel's ephemeral ports (32768 and up) do not fit.
 */
export async function pickServerPorts(ip: string, frontend: number): Promise<ServerPorts> {
  const picked = new Set<number>([frontend]);
  const unique = async (): Promise<number> => {
    for (;;) {
      const p = 20_000 + Math.floor(Math.random() * 12_000);
      if (!picked.has(p) && (await portIsFree(ip, p))) {
        picked.add(p);
        return p;
      }
    }
  };
  return {
    frontend: frontend || (await unique()),
    frontendHttp: await unique(),
    frontendMembership: await unique(),
    history: await unique(),
    historyMembership: await unique(),
    matching: await unique(),
    matchingMembership: await unique(),
    worker: await unique(),
    workerMembership: await unique(),
  };
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** The server's configuration, written from this template (not copied from Temporal's samples). */
export function serverConfigYaml(args: {
  target: PostgresTarget;
  ports: ServerPorts;
  ip: string;
  historyShards: number;
  logLevel: string;
  dynamicConfigFile: string;
  maxConns: number;
}): string {
  const { target, ports, ip } = args;
  const store = (schema: string, maxConns: number) => `      sql:
        pluginName: postgres12
        databaseName: ${yamlString(target.database)}
        connectAddr: ${yamlString(`${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`)}
        connectProtocol: tcp
        user: ${yamlString(target.user)}
        password: ${yamlString(target.password)}
        connectAttributes:
          search_path: ${schema}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (grpc: number, membership: number, extra = '') => `    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnIP: ${yamlString(ip)}${extra}`;
  return `# Written by image-sync temporal-server at every start; edits are overwritten.
log:
  stdout: true
  level: ${args.logLevel}

persistence:
  defaultStore: image-sync-postgres
  visibilityStore: image-sync-postgres-visibility
  numHistoryShards: ${args.historyShards}
  datastores:
    image-sync-postgres:
${store(PERSISTENCE_SCHEMA, args.maxConns)}
    image-sync-postgres-visibility:
${store(VISIBILITY_SCHEMA, Math.max(2, Math.floor(args.maxConns / 4)))}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: ${yamlString(ip)}

services:
  frontend:
${service(ports.frontend, ports.frontendMembership, `\n      httpPort: ${ports.frontendHttp}`)}
  history:
${service(ports.history, ports.historyMembership)}
  matching:
${service(ports.matching, ports.matchingMembership)}
  worker:
${service(ports.worker, ports.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: ${yamlString(`${ip}:${ports.frontend}`)}

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: ${yamlString(args.dynamicConfigFile)}
  pollInterval: 10s
`;
}

/** The Web UI server's configuration (its own template). */
export function uiConfigYaml(args: { ip: string; uiPort: number; frontend: string; namespace: string }): string {
  return `# Written by image-sync temporal-server at every start.
temporalGrpcAddress: ${yamlString(args.frontend)}
host: ${yamlString(args.ip)}
port: ${args.uiPort}
enableUi: true
defaultNamespace: ${yamlString(args.namespace)}
refreshInterval: 1m
notifyOnNewVersion: false
cors:
  allowOrigins: []
`;
}

const INDEXED_TYPES: Record<SearchAttributeTypeName, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Text: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

const GRPC_ALREADY_EXISTS = 6;

function grpcCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/**
 * Creates the namespace when missing and registers the search attributes; an attribute that
 * already exists with the same type counts as done, another type is an error.
 */
export async function prepareNamespace(
  address: string,
  namespace: string,
  retentionDays: number,
  timeoutMs = 60_000,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
        description: 'image-sync',
      });
    } catch (err) {
      if (grpcCode(err) !== GRPC_ALREADY_EXISTS) throw err;
    }
    const wanted = loadSearchAttributes();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const existing = await connection.operatorService.listSearchAttributes({ namespace });
        const custom = existing.customAttributes ?? {};
        const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
        for (const [key, type] of Object.entries(wanted)) {
          const have = custom[key];
          if (have === undefined) missing[key] = INDEXED_TYPES[type];
          else if (have !== INDEXED_TYPES[type]) {
            throw Object.assign(
              new Error(`search attribute ${key} exists on namespace ${namespace} with another type than ${type}`),
              { fatal: true },
            );
          }
        }
        if (Object.keys(missing).length === 0) break;
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
      } catch (err) {
        // The namespace takes a moment to reach every service's cache after its creation.
        if ((err as { fatal?: boolean }).fatal || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    // Usable from the frontend: a visibility query in the namespace answers.
    for (;;) {
      try {
        await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
}

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
