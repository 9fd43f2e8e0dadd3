/**
 * The docker-compose stack, checked without Docker: the structure of docker-compose.yml, the
 * files it mounts and builds from, the dynamic config of its Temporal server, and the
 * search-attribute registration script, which runs for real here against a stub `temporal`
 * command and against the Temporal CLI and dev server of the test run.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { FILE_ENV_NAMES, parseEnv } from '../../src/config/env';

const ROOT = path.resolve(__dirname, '..', '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const CONFIG_DIR = path.join(ROOT, 'temporal-config');
const SEARCH_ATTRIBUTES_JSON = path.join(CONFIG_DIR, 'search-attributes.json');
const REGISTER_SCRIPT = path.join(CONFIG_DIR, 'register-search-attributes.sh');
const DYNAMIC_CONFIG = path.join(CONFIG_DIR, 'dynamicconfig', 'development-sql.yaml');
const SCHEMA_SCRIPT = path.join(CONFIG_DIR, 'setup-postgres-schema.sh');
const NAMESPACE_SCRIPT = path.join(CONFIG_DIR, 'create-namespace.sh');

const EXPECTED_SERVICES = [
  'postgresql',
  'temporal-schema',
  'temporal',
  'temporal-namespace',
  'temporal-admin-tools',
  'temporal-ui',
  'recording-system',
  'worker',
];
const WORKER_ENV = [
  'TEMPORAL_ADDRESS',
  'RECORDING_SYSTEM_URL',
  'RECORDING_SYSTEM_TOKEN_FILE',
  'IMAGE_SYNC_LEDGER_URL_FILE',
];
/** Pre-allocated custom search attribute columns per type in Temporal's PostgreSQL visibility schema. */
const SQL_VISIBILITY_SLOTS: Record<string, number> = {
  Keyword: 10,
  Int: 3,
  Double: 3,
  Bool: 3,
  Datetime: 3,
  Text: 3,
  KeywordList: 3,
};

type Env = Record<string, string | number | boolean | null>;

interface LongVolume {
  type?: string;
  source?: string;
  target?: string;
  read_only?: boolean;
  bind?: { create_host_path?: boolean };
}

interface LongPort {
  target?: number | string;
  published?: number | string;
}

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Env | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: (string | number | LongPort)[];
  volumes?: (string | LongVolume)[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  profiles?: string[];
  restart?: string;
  container_name?: string;
  stop_grace_period?: string;
  secrets?: (string | { source: string; target?: string })[];
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string }>;
}

/**
 * The value a service reads from `<NAME>_FILE`: the compose secret mounted at that path, read
 * from its default file (a `${VAR:-default}` path takes its default).
 */
function secretValue(compose: ComposeFile, service: Service, name: string): string {
  const mounted = envOf(service)[`${name}_FILE`] ?? '';
  const match = /^\/run\/secrets\/([\w.-]+)$/.exec(mounted);
  expect(match, `${name}_FILE is a compose secret`).not.toBeNull();
  const secret = match![1]!;
  const names = (service.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
  expect(names, `the service mounts the secret ${secret}`).toContain(secret);
  const file = substituteDefaults(compose.secrets?.[secret]?.file ?? '');
  expect(file).toMatch(/^\.\/docker\/secrets\/.+\.dev$/);
  return readFileSync(path.resolve(ROOT, file), 'utf8').replace(/\n$/, '');
}

interface Mount {
  kind: 'bind' | 'volume';
  source: string;
  target: string;
  createHostPath: boolean;
}

function loadCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_FILE, 'utf8')) as ComposeFile;
}

function searchAttributes(): Record<string, string> {
  return (JSON.parse(readFileSync(SEARCH_ATTRIBUTES_JSON, 'utf8')) as { searchAttributes: Record<string, string> })
    .searchAttributes;
}

function envOf(service: Service): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(service.environment)) {
    for (const item of service.environment) {
      const eq = item.indexOf('=');
      env[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
    }
  } else {
    for (const [key, value] of Object.entries(service.environment ?? {}))
      env[key] = value === null ? '' : String(value);
  }
  return env;
}

/** A compose duration (`45s`, `1m30s`, `500ms`, `1h`) in milliseconds. */
function composeDurationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) throw new Error(`not a duration: ${value}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

/** `${NAME:-default}` as compose reads it with NAME unset. */
function substituteDefaults(value: string): string {
  return value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
}

function words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/).filter(Boolean);
}

function dependenciesOf(service: Service): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, dep?.condition ?? 'service_started']));
}

function isHostPath(source: string): boolean {
  return source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
}

function mountsOf(service: Service): Mount[] {
  return (service.volumes ?? []).map((volume): Mount => {
    if (typeof volume === 'string') {
      const [source = '', target = ''] = volume.split(':');
      return { kind: isHostPath(source) ? 'bind' : 'volume', source, target, createHostPath: true };
    }
    const source = volume.source ?? '';
    return {
      kind: volume.type === 'bind' ? 'bind' : 'volume',
      source,
      target: volume.target ?? '',
      createHostPath: volume.bind?.create_host_path === true,
    };
  });
}

/** The host file that a path inside the service's container comes from, through its bind mounts. */
function hostPathOf(service: Service, containerPath: string): string | undefined {
  for (const mount of mountsOf(service)) {
    if (mount.kind !== 'bind') continue;
    if (containerPath === mount.target) return path.resolve(ROOT, mount.source);
    if (containerPath.startsWith(`${mount.target}/`)) {
      return path.resolve(ROOT, mount.source, containerPath.slice(mount.target.length + 1));
    }
  }
  return undefined;
}

/** [host port, container port] of every published port of the service. */
function publishedPorts(service: Service): [string, string][] {
  return (service.ports ?? []).flatMap((port): [string, string][] => {
    if (typeof port === 'object') {
      return port.published === undefined ? [] : [[String(port.published), String(port.target)]];
    }
    const parts = String(port)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    if (parts.length < 2) return [];
    return [[parts[parts.length - 2]!, parts[parts.length - 1]!]];
  });
}

/** The tag of an image reference, or undefined when it has none. */
function imageTag(image: string): string | undefined {
  const name = image.split('@')[0]!;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > lastSlash ? name.slice(colon + 1) : undefined;
}

function sourceTexts(dir: string): string[] {
  const texts: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) texts.push(...sourceTexts(full));
    else if (/\.(ts|js)$/.test(entry.name)) texts.push(readFileSync(full, 'utf8'));
  }
  return texts;
}

describe('docker-compose.yml', () => {
  const compose = loadCompose();
  const services = compose.services;
  const service = (name: string): Service => {
    const found = services[name];
    if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
    return found;
  };

  it('parses and defines the stack of the design', () => {
    expect(compose).toBeTypeOf('object');
    expect(Object.keys(services)).toEqual(expect.arrayContaining(EXPECTED_SERVICES));
  });

  it('pins every image that is pulled, and builds the project image from docker/Dockerfile', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (svc.build !== undefined) {
        const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
        const dockerfile = path.resolve(ROOT, build.context ?? '.', build.dockerfile ?? 'Dockerfile');
        expect(existsSync(dockerfile), `${name}: ${dockerfile}`).toBe(true);
        continue;
      }
      expect(svc.image, `${name} has an image`).toBeTypeOf('string');
      const tag = imageTag(svc.image!);
      expect(tag, `${name}: ${svc.image} has a tag`).toBeDefined();
      expect(tag, `${name}: ${svc.image}`).not.toBe('latest');
    }
    expect(service('postgresql').image).toBe('postgres:16');
    // Temporal's current images: the server, and admin-tools for schema, namespace and attributes.
    expect(service('temporal').image).toMatch(/^temporalio\/server:1\.29\.\d+$/);
    for (const oneShot of ['temporal-schema', 'temporal-namespace', 'temporal-admin-tools']) {
      expect(service(oneShot).image).toMatch(/^temporalio\/admin-tools:1\.29\.\d+/);
    }
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.image ?? '', `${name} uses the deprecated auto-setup image`).not.toMatch(/auto-setup/);
    }
    expect(service('temporal-ui').image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(service('recording-system').build).toEqual(service('worker').build);
  });

  it('depends only on services that exist, waiting for health only where a healthcheck tells it', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries(dependenciesOf(svc))) {
        expect(Object.keys(services), `${name} depends on ${dependency}`).toContain(dependency);
        expect(dependency, `${name} depends on itself`).not.toBe(name);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        const target = service(dependency);
        if (condition === 'service_healthy') {
          expect(target.healthcheck?.test, `${dependency} needs a healthcheck for ${name}`).toBeDefined();
          expect(target.healthcheck?.disable).not.toBe(true);
        }
        if (condition === 'service_completed_successfully') {
          expect(target.restart ?? 'no', `${dependency} must run once for ${name}`).toBe('no');
        }
      }
    }
    // PostgreSQL → schema → server → namespace → search attributes → workers.
    expect(dependenciesOf(service('temporal-schema'))).toEqual({ postgresql: 'service_healthy' });
    expect(dependenciesOf(service('temporal'))).toEqual({ 'temporal-schema': 'service_completed_successfully' });
    expect(dependenciesOf(service('worker'))).toMatchObject({
      temporal: 'service_healthy',
      'temporal-admin-tools': 'service_completed_successfully',
      'recording-system': 'service_healthy',
      postgresql: 'service_healthy',
    });
  });

  it('mounts host paths that exist in the repository and declares every named volume', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, svc] of Object.entries(services)) {
      for (const mount of mountsOf(svc)) {
        if (mount.kind === 'volume') {
          expect(declared, `${name} uses volume ${mount.source}`).toContain(mount.source);
          continue;
        }
        const host = path.resolve(ROOT, mount.source);
        const inRepo = !path.relative(ROOT, host).startsWith('..');
        if (inRepo && !mount.createHostPath) expect(existsSync(host), `${name} mounts ${mount.source}`).toBe(true);
      }
    }
    expect(mountsOf(service('postgresql'))).toContainEqual(
      expect.objectContaining({ kind: 'volume', target: '/var/lib/postgresql/data' }),
    );
    expect(mountsOf(service('recording-system'))).toContainEqual(
      expect.objectContaining({ kind: 'volume', target: '/data' }),
    );
    expect(mountsOf(service('worker'))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'bind', source: './data/inbox', target: '/data/inbox' }),
        expect.objectContaining({ kind: 'volume', target: '/app/.image-sync' }),
      ]),
    );
  });

  it('publishes Temporal on 7233 and the Web UI on 8233, and nothing that would stop workers scaling', () => {
    expect(publishedPorts(service('temporal'))).toContainEqual(['7233', '7233']);
    expect(publishedPorts(service('temporal-ui'))).toContainEqual(['8233', '8080']);
    expect(envOf(service('temporal-ui')).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(publishedPorts(service('worker'))).toEqual([]);
    expect(service('worker').container_name).toBeUndefined();
  });

  it('runs the Temporal server on PostgreSQL with the mounted dynamic config', () => {
    const temporal = service('temporal');
    const env = envOf(temporal);
    expect(env).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql', DB_PORT: '5432' });
    expect(env.POSTGRES_USER).toBe(envOf(service('postgresql')).POSTGRES_USER);
    expect(env.POSTGRES_PWD).toBe(envOf(service('postgresql')).POSTGRES_PASSWORD);
    // The server image only serves: the schema is set up before it starts, the namespace after.
    expect(dependenciesOf(temporal)).toEqual({ 'temporal-schema': 'service_completed_successfully' });
    const schema = service('temporal-schema');
    expect(dependenciesOf(schema)).toEqual({ postgresql: 'service_healthy' });
    const schemaScript = [...words(schema.entrypoint), ...words(schema.command)].find((w) => w.endsWith('.sh'));
    expect(hostPathOf(schema, schemaScript ?? '')).toBe(SCHEMA_SCRIPT);
    expect(envOf(schema)).toMatchObject({ POSTGRES_SEEDS: 'postgresql', POSTGRES_USER: env.POSTGRES_USER });
    expect(envOf(schema).SQL_PASSWORD).toBe(env.POSTGRES_PWD);
    const namespace = service('temporal-namespace');
    expect(dependenciesOf(namespace)).toEqual({ temporal: 'service_healthy' });
    const namespaceScript = [...words(namespace.entrypoint), ...words(namespace.command)].find((w) =>
      w.endsWith('.sh'),
    );
    expect(hostPathOf(namespace, namespaceScript ?? '')).toBe(NAMESPACE_SCRIPT);
    expect(dependenciesOf(service('temporal-admin-tools'))).toEqual({
      'temporal-namespace': 'service_completed_successfully',
    });
    const configPath = env.DYNAMIC_CONFIG_FILE_PATH ?? '';
    const absolute = path.posix.isAbsolute(configPath) ? configPath : path.posix.join('/etc/temporal', configPath);
    expect(hostPathOf(temporal, absolute)).toBe(DYNAMIC_CONFIG);
    expect(service('postgresql').healthcheck?.test).toBeDefined();
    expect(temporal.healthcheck?.test).toBeDefined();
  });

  it('creates the ledger database the worker connects to, with the server credentials', () => {
    const ledger = new URL(secretValue(loadCompose(), service('worker'), 'IMAGE_SYNC_LEDGER_URL'));
    expect(ledger.protocol).toBe('postgres:');
    expect(Object.keys(services)).toContain(ledger.hostname);
    const postgres = envOf(service(ledger.hostname));
    expect(decodeURIComponent(ledger.username)).toBe(postgres.POSTGRES_USER);
    expect(decodeURIComponent(ledger.password)).toBe(postgres.POSTGRES_PASSWORD);
    const database = ledger.pathname.slice(1);
    const initScripts = mountsOf(service('postgresql')).filter((m) =>
      m.target.startsWith('/docker-entrypoint-initdb.d/'),
    );
    expect(initScripts).toHaveLength(1);
    const sql = readFileSync(path.resolve(ROOT, initScripts[0]!.source), 'utf8');
    expect(sql).toMatch(new RegExp(`^\\s*CREATE DATABASE ${database}\\s*;`, 'im'));
  });

  it('registers the search attributes with the script and file of temporal-config', () => {
    const admin = service('temporal-admin-tools');
    const invocation = [...words(admin.entrypoint), ...words(admin.command)];
    const scriptInContainer = invocation.find((word) => word.endsWith('register-search-attributes.sh'));
    expect(scriptInContainer, invocation.join(' ')).toBeDefined();
    expect(hostPathOf(admin, scriptInContainer!)).toBe(REGISTER_SCRIPT);
    const env = envOf(admin);
    expect(hostPathOf(admin, env.SEARCH_ATTRIBUTES_FILE ?? '')).toBe(SEARCH_ATTRIBUTES_JSON);
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('lists no more search attributes of a type than SQL visibility has columns for', () => {
    const perType: Record<string, number> = {};
    for (const type of Object.values(searchAttributes())) perType[type] = (perType[type] ?? 0) + 1;
    for (const [type, count] of Object.entries(perType)) {
      expect(SQL_VISIBILITY_SLOTS[type], `unknown type ${type}`).toBeDefined();
      expect(count, `${type} attributes`).toBeLessThanOrEqual(SQL_VISIBILITY_SLOTS[type]!);
    }
  });

  it("gives the worker longer to stop than the worker's own shutdown grace", () => {
    const worker = service('worker');
    const env = envOf(worker);
    // The secret files exist inside the container only.
    const config = parseEnv(
      Object.fromEntries(
        Object.entries(env)
          .filter(([k]) => !k.endsWith('_FILE'))
          .map(([k, v]) => [k, substituteDefaults(v)]),
      ),
    );
    const graceMs = config.IMAGE_SYNC_SHUTDOWN_GRACE_MS;
    expect(worker.stop_grace_period, 'stop_grace_period of the worker').toBeDefined();
    const stopMs = composeDurationMs(worker.stop_grace_period!);
    // At least 10 s more: closing the connections and the ledger after the grace takes time too.
    expect(stopMs).toBeGreaterThanOrEqual(graceMs + 10_000);
  });

  it('runs the simulator and the worker with the commands and settings the project reads', () => {
    const simulator = service('recording-system');
    const simArgs = words(simulator.command);
    expect(simArgs.slice(0, 3)).toEqual(['node', 'bin/image-sync.js', 'recording-system']);
    const port = simArgs[simArgs.indexOf('--port') + 1];
    expect(simArgs[simArgs.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(simArgs[simArgs.indexOf('--data-dir') + 1]).toBe('/data');
    expect(words(service('worker').command)).toEqual(['node', 'bin/image-sync.js', 'worker']);

    const env = envOf(service('worker'));
    for (const name of WORKER_ENV) expect(Object.keys(env)).toContain(name);
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(env.RECORDING_SYSTEM_URL).toBe(`http://recording-system:${port}`);
    // The worker and the simulator share one token, from a secret file.
    const compose = loadCompose();
    const token = secretValue(compose, service('worker'), 'RECORDING_SYSTEM_TOKEN');
    expect(token).not.toBe('');
    expect(secretValue(compose, simulator, 'RECORDING_SYSTEM_TOKEN')).toBe(token);
    expect(env.RECORDING_SYSTEM_TOKEN).toBeUndefined();

    // Every variable given to the worker is one the project (or Temporal's envconfig) reads;
    // a <NAME>_FILE is read for a secret NAME.
    const read = [
      ...sourceTexts(path.join(ROOT, 'src')),
      ...sourceTexts(path.join(ROOT, 'node_modules', '@temporalio', 'envconfig', 'lib')),
    ].join('\n');
    for (const name of Object.keys(env)) {
      const secret = name.endsWith('_FILE') && FILE_ENV_NAMES.includes(name.slice(0, -'_FILE'.length));
      expect(secret || read.includes(name), `${name} is read somewhere`).toBe(true);
    }
  });
});

describe('docker/Dockerfile and .dockerignore', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'docker', 'Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').map((line) => line.trim());
  const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it('starts from pinned images of a Node.js LTS still supported in November 2026, and installs with npm ci', () => {
    const bases = lines.filter((line) => /^FROM\s/i.test(line)).map((line) => line.split(/\s+/)[1]!);
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) {
      expect(imageTag(base), base).toBeDefined();
      expect(imageTag(base)).not.toBe('latest');
      // Node 22 (maintenance until April 2027) or 24 (until April 2028).
      expect(base).toMatch(/^node:(22|24)\.\d+[.-]/);
    }
    expect(lines.some((line) => /npm ci\b/.test(line))).toBe(true);
  });

  it('runs the compiled build as a non-root user, with a health check on the worker health endpoint', () => {
    const stages = dockerfile.split(/^FROM\s/im).slice(1);
    const final = stages.at(-1)!;
    expect(stages.slice(0, -1).join('\n')).toMatch(/^RUN .*npm run build/m);
    expect(final).toMatch(/^COPY --from=\S+ .*\/app\/dist \.\/dist$/m);
    // The runtime stage has no sources, so bin/image-sync.js can only run dist/.
    expect(final).not.toMatch(/^COPY .*\bsrc\b/m);
    expect(final).not.toMatch(/tsx/);
    const user = /^USER\s+(\S+)/m.exec(final)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const health = /^HEALTHCHECK\s[\s\S]*?CMD\s+(.*)$/m.exec(final)?.[1] ?? '';
    expect(health).toContain('/health');
    expect(health).toContain('IMAGE_SYNC_METRICS_PORT');
    expect(final).toMatch(/^ENV[\s\S]*IMAGE_SYNC_METRICS_PORT=9464/m);
    expect(JSON.parse(/^CMD\s+(\[.*\])$/m.exec(final)?.[1] ?? '[]')).toEqual(['node', 'bin/image-sync.js', 'worker']);
  });

  it('the worker service serves metrics inside the network, and the codec server is opt-in', () => {
    const compose = loadCompose();
    const worker = compose.services.worker!;
    expect(envOf(worker)).toMatchObject({ IMAGE_SYNC_LOG_FORMAT: 'json', IMAGE_SYNC_METRICS_PORT: '9464' });
    const codec = compose.services['codec-server']!;
    expect(codec.profiles).toEqual(['encryption']);
    const args = words(codec.command);
    expect(args.slice(0, 3)).toEqual(['node', 'bin/image-sync.js', 'codec-server']);
    expect(args[args.indexOf('--cors-origin') + 1]).toBe('http://localhost:8233');
    expect(publishedPorts(codec)).toContainEqual(['8888', '8888']);
    expect(envOf(codec).IMAGE_SYNC_ENCRYPTION_KEYS).toBe(envOf(worker).IMAGE_SYNC_ENCRYPTION_KEYS);
    // It never starts without a credential: its tokens come from a secret file.
    expect(secretValue(compose, codec, 'IMAGE_SYNC_CODEC_TOKENS').length).toBeGreaterThanOrEqual(16);
    expect(envOf(compose.services['temporal-ui']!).TEMPORAL_CODEC_ENDPOINT).toBeDefined();
  });

  it('copies sources that exist and that the build context does not leave out', () => {
    const sources = lines
      .filter((line) => /^COPY\s/i.test(line) && !/--from=/.test(line))
      .flatMap((line) =>
        line
          .split(/\s+/)
          .slice(1, -1)
          .filter((word) => !word.startsWith('--')),
      );
    expect(sources).toEqual(expect.arrayContaining(['bin', 'src', 'package.json', 'package-lock.json']));
    for (const source of sources) {
      expect(existsSync(path.join(ROOT, source)), source).toBe(true);
      expect(ignored, `${source} is in .dockerignore`).not.toContain(source);
    }
    expect(ignored).toEqual(
      expect.arrayContaining(['node_modules', '.temporal', '.image-sync', '.git', 'test-results']),
    );
  });
});

describe('temporal-config/setup-postgres-schema.sh and create-namespace.sh', () => {
  it('are files sh can run', () => {
    for (const script of [SCHEMA_SCRIPT, NAMESPACE_SCRIPT]) {
      expect(readFileSync(script, 'utf8').startsWith('#!/bin/sh\n'), script).toBe(true);
      expect(spawnSync('sh', ['-n', script]).status, script).toBe(0);
    }
  });

  it("sets up both databases with Temporal's SQL tool, and keeps a database that exists", () => {
    const bin = mkdtempSync(path.join(tmpdir(), 'image-sync-schema-'));
    try {
      // A stand-in for temporal-sql-tool: records its calls; `create` fails for `temporal`, as
      // for a database that exists.
      writeFileSync(
        path.join(bin, 'temporal-sql-tool'),
        '#!/bin/sh\necho "$*" >>"$CALLS"\ncase "$*" in *"--db temporal create"*) exit 1 ;; esac\nexit 0\n',
        { mode: 0o755 },
      );
      const calls = path.join(bin, 'calls');
      const result = spawnSync('sh', [SCHEMA_SCRIPT], {
        encoding: 'utf8',
        env: { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, CALLS: calls },
      });
      expect(result.status, result.stderr).toBe(0);
      const lines = readFileSync(calls, 'utf8').trim().split('\n');
      const base = '--plugin postgres12 --ep postgresql -p 5432 -u temporal';
      expect(lines).toEqual([
        `${base} --db temporal create`,
        `${base} --db temporal setup-schema -v 0.0`,
        `${base} --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned`,
        `${base} --db temporal_visibility create`,
        `${base} --db temporal_visibility setup-schema -v 0.0`,
        `${base} --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned`,
      ]);
      expect(result.stdout).toContain('temporal exists');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('temporal-config/dynamicconfig/development-sql.yaml', () => {
  it('is YAML where every key holds a list of values with optional constraints', () => {
    const config = parse(readFileSync(DYNAMIC_CONFIG, 'utf8')) as Record<string, unknown>;
    expect(config).toBeTypeOf('object');
    expect(Object.keys(config).length).toBeGreaterThan(0);
    for (const [key, entries] of Object.entries(config)) {
      expect(key).toMatch(/^[a-z]+\.[A-Za-z0-9.]+$/);
      expect(Array.isArray(entries), key).toBe(true);
      expect((entries as unknown[]).length, key).toBeGreaterThan(0);
      for (const entry of entries as Record<string, unknown>[]) {
        expect(entry, key).toBeTypeOf('object');
        expect(Object.keys(entry), key).toContain('value');
        for (const field of Object.keys(entry)) expect(['value', 'constraints'], key).toContain(field);
        if ('constraints' in entry) expect(entry.constraints, key).toBeTypeOf('object');
      }
    }
    expect(config['system.forceSearchAttributesCacheRefreshOnRead']).toEqual([{ value: true, constraints: {} }]);
    // Task-queue priority (an intake's files ahead of a batch's) needs the new matcher.
    expect(config['matching.useNewMatcher']).toEqual([{ value: true, constraints: {} }]);
  });
});

// ---------------------------------------------------------------------------------------------
// The registration script, run by sh.

/**
 * Stands in for the Temporal CLI. Records each call (arguments joined by tabs) in $STUB_DIR/calls
 * and keeps the registered attributes in $STUB_DIR/registered as "Name Type" lines.
 *   STUB_NAMESPACE_MISSING_FOR=N   the first N `namespace describe` calls fail
 *   STUB_CREATE_FAILURES=N         the first N `search-attribute create` calls fail as unreachable
 *   STUB_CREATE_EXISTING=error     creating an attribute that exists fails with "already exists"
 *                                  (otherwise it succeeds, as the CLI does for the same type)
 */
const STUB_TEMPORAL = String.raw`#!/bin/sh
tab=$(printf '\t')
( IFS=$tab; printf '%s\n' "$*" ) >>"$STUB_DIR/calls"
touch "$STUB_DIR/registered"
missing_for=$STUB_NAMESPACE_MISSING_FOR; [ -n "$missing_for" ] || missing_for=0
create_failures=$STUB_CREATE_FAILURES; [ -n "$create_failures" ] || create_failures=0
bump() { n=$(cat "$STUB_DIR/$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >"$STUB_DIR/$1"; echo "$n"; }
case "$1 $2 $3" in
  "operator namespace describe")
    [ "$(bump describes)" -gt "$missing_for" ] && exit 0
    echo 'Namespace default is not found.' >&2
    exit 1
    ;;
  "operator search-attribute create")
    name='' type=''
    while [ $# -gt 0 ]; do
      case $1 in
        --name) name=$2; shift ;;
        --type) type=$2; shift ;;
      esac
      shift
    done
    if [ "$(bump creates)" -le "$create_failures" ]; then
      echo 'failed reaching server: connection refused' >&2
      exit 1
    fi
    existing=$(sed -n "s/^$name //p" "$STUB_DIR/registered")
    if [ -n "$existing" ] && [ "$existing" != "$type" ]; then
      echo "search attribute $name already exists and has different type $existing" >&2
      exit 1
    fi
    if [ -n "$existing" ] && [ "$STUB_CREATE_EXISTING" = error ]; then
      echo "search attribute $name already exists" >&2
      exit 1
    fi
    [ -n "$existing" ] || echo "$name $type" >>"$STUB_DIR/registered"
    echo 'Search attributes have been added'
    ;;
  "operator search-attribute list")
    printf '{\n  "customAttributes": {'
    sep=''
    while read -r name type; do
      case $type in
        Keyword) indexed=KEYWORD ;; Text) indexed=TEXT ;; Int) indexed=INT ;; Double) indexed=DOUBLE ;;
        Bool) indexed=BOOL ;; Datetime) indexed=DATETIME ;; KeywordList) indexed=KEYWORD_LIST ;;
      esac
      printf '%s\n    "%s": "INDEXED_VALUE_TYPE_%s"' "$sep" "$name" "$indexed"
      sep=','
    done <"$STUB_DIR/registered"
    printf '\n  },\n  "systemAttributes": {\n    "WorkflowId": "INDEXED_VALUE_TYPE_KEYWORD"\n  }\n}\n'
    ;;
  *)
    echo "unexpected call: $*" >&2
    exit 2
    ;;
esac
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[][];
  registered: [string, string][];
}

describe('temporal-config/register-search-attributes.sh', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function tempDir(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'image-sync-compose-'));
    dirs.push(dir);
    return dir;
  }

  function runScript(env: Record<string, string>, bin: string): Omit<Run, 'calls' | 'registered'> {
    const result = spawnSync('sh', [REGISTER_SCRIPT], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: process.env.HOME ?? tmpdir(),
        REGISTER_RETRY_DELAY_SECONDS: '0',
        ...env,
      },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  function withStub(env: Record<string, string> = {}, registered: [string, string][] = []) {
    const stubDir = tempDir();
    writeFileSync(path.join(stubDir, 'temporal'), STUB_TEMPORAL, { mode: 0o755 });
    writeFileSync(path.join(stubDir, 'registered'), registered.map(([n, t]) => `${n} ${t}\n`).join(''));
    return (more: Record<string, string> = {}): Run => {
      const result = runScript(
        { SEARCH_ATTRIBUTES_FILE: SEARCH_ATTRIBUTES_JSON, STUB_DIR: stubDir, ...env, ...more },
        stubDir,
      );
      const read = (file: string) =>
        existsSync(path.join(stubDir, file))
          ? readFileSync(path.join(stubDir, file), 'utf8').split('\n').filter(Boolean)
          : [];
      return {
        ...result,
        calls: read('calls').map((line) => line.split('\t')),
        registered: read('registered').map((line) => line.split(' ') as [string, string]),
      };
    };
  }

  function createCalls(run: Run): { name: string; type: string; args: string[] }[] {
    return run.calls
      .filter((args) => args.slice(0, 3).join(' ') === 'operator search-attribute create')
      .map((args) => ({ name: args[args.indexOf('--name') + 1]!, type: args[args.indexOf('--type') + 1]!, args }));
  }

  function jsonFile(content: string): string {
    const file = path.join(tempDir(), 'search-attributes.json');
    writeFileSync(file, content);
    return file;
  }

  it('is a file sh can run', () => {
    expect(statSync(REGISTER_SCRIPT).isFile()).toBe(true);
    expect(readFileSync(REGISTER_SCRIPT, 'utf8').startsWith('#!/bin/sh\n')).toBe(true);
    expect(spawnSync('sh', ['-n', REGISTER_SCRIPT]).status).toBe(0);
  });

  it('registers exactly the attributes of search-attributes.json, on temporal:7233, after the namespace exists', () => {
    const run = withStub()();
    expect(run.status, run.stderr).toBe(0);
    const creates = createCalls(run);
    expect(creates.map(({ name, type }) => [name, type])).toEqual(Object.entries(searchAttributes()));
    for (const { args } of creates) {
      expect(args[args.indexOf('--address') + 1]).toBe('temporal:7233');
      expect(args[args.indexOf('--namespace') + 1]).toBe('default');
    }
    expect(run.calls[0]!.slice(0, 3)).toEqual(['operator', 'namespace', 'describe']);
    expect(run.calls.at(-1)!.slice(0, 3)).toEqual(['operator', 'search-attribute', 'list']);
    expect(run.registered).toEqual(Object.entries(searchAttributes()));
  });

  it('reads the pairs whatever the layout of the JSON, ignoring other string fields', () => {
    const original = JSON.parse(readFileSync(SEARCH_ATTRIBUTES_JSON, 'utf8')) as Record<string, unknown>;
    const decoy = { $comment: 'not these: "Decoy": "Keyword", {"searchAttributes": {"Other": "Int"}}' };
    for (const content of [
      JSON.stringify({ ...decoy, ...original }),
      JSON.stringify({ ...original, ...decoy }, null, '\t'),
      JSON.stringify(original, null, 8).replace(/\n/g, '\r\n'),
    ]) {
      const run = withStub({ SEARCH_ATTRIBUTES_FILE: jsonFile(content) })();
      expect(run.status, run.stderr).toBe(0);
      expect(createCalls(run).map(({ name, type }) => [name, type])).toEqual(Object.entries(searchAttributes()));
    }
  });

  it('honours TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE', () => {
    const run = withStub({ TEMPORAL_ADDRESS: 'elsewhere:7000', TEMPORAL_NAMESPACE: 'ops' })();
    expect(run.status, run.stderr).toBe(0);
    for (const args of run.calls) {
      expect(args[args.indexOf('--address') + 1]).toBe('elsewhere:7000');
      expect(args[args.indexOf('--namespace') + 1]).toBe('ops');
    }
  });

  it('is idempotent: attributes that already exist with their type count as registered', () => {
    const all = Object.entries(searchAttributes());
    const again = withStub({}, all);
    const first = again();
    expect(first.status, first.stderr).toBe(0);
    expect(first.registered).toEqual(all);
    const strict = withStub({ STUB_CREATE_EXISTING: 'error' }, all.slice(0, 2))();
    expect(strict.status, strict.stderr).toBe(0);
    expect(strict.stdout).toContain('already registered');
    expect(strict.registered).toEqual(all);
  });

  it('fails on an attribute that exists with another type', () => {
    const [name, type] = Object.entries(searchAttributes()).find(([, t]) => t === 'Int')!;
    const run = withStub({}, [[name, 'Keyword']])();
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`${name} already exists with a type other than ${type}`);
  });

  it('retries a failed create, and gives up after REGISTER_ATTEMPTS', () => {
    const flaky = withStub({ STUB_CREATE_FAILURES: '2', REGISTER_ATTEMPTS: '3' })();
    expect(flaky.status, flaky.stderr).toBe(0);
    expect(flaky.registered).toEqual(Object.entries(searchAttributes()));

    const down = withStub({ STUB_CREATE_FAILURES: '100', REGISTER_ATTEMPTS: '2' })();
    expect(down.status).not.toBe(0);
    expect(down.stderr).toMatch(/cannot register \w+ \(\w+\) after 2 tries: .*connection refused/);
    expect(createCalls(down)).toHaveLength(2);
  });

  it('waits for the namespace, and gives up after REGISTER_WAIT_SECONDS', () => {
    const late = withStub({ STUB_NAMESPACE_MISSING_FOR: '3' })();
    expect(late.status, late.stderr).toBe(0);
    const describes = late.calls.filter((args) => args[1] === 'namespace');
    expect(describes).toHaveLength(4);

    const never = withStub({ STUB_NAMESPACE_MISSING_FOR: '1000000', REGISTER_WAIT_SECONDS: '0' })();
    expect(never.status).not.toBe(0);
    expect(never.stderr).toContain('no namespace default at temporal:7233');
    expect(createCalls(never)).toEqual([]);
  });

  it('refuses a file it cannot read fully, before calling the server', () => {
    const cases: [string, RegExp][] = [
      ['{"searchAttributes": {"SyncBatchId": "Keyword", "Bad": "Integer"}}', /Bad has the unknown type Integer/],
      [
        '{"searchAttributes": {"SyncBatchId": "Keyword", "Count": 3}}',
        /cannot read the search attribute entry: "Count": 3/,
      ],
      ['{"searchAttributes": {}}', /lists no searchAttributes/],
      ['{"attributes": {"SyncBatchId": "Keyword"}}', /lists no searchAttributes/],
    ];
    for (const [content, message] of cases) {
      const run = withStub({ SEARCH_ATTRIBUTES_FILE: jsonFile(content) })();
      expect(run.status, content).not.toBe(0);
      expect(run.stderr, content).toMatch(message);
      expect(run.calls, content).toEqual([]);
    }
    const missing = withStub({ SEARCH_ATTRIBUTES_FILE: path.join(tempDir(), 'absent.json') })();
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('cannot read');
  });

  it('works with the real Temporal CLI against the dev server of the test run', () => {
    const bin = tempDir();
    symlinkSync(inject('temporalCliPath'), path.join(bin, 'temporal'));
    const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), SEARCH_ATTRIBUTES_FILE: SEARCH_ATTRIBUTES_JSON };
    const run = runScript(env, bin);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`all ${Object.keys(searchAttributes()).length} search attributes are registered`);

    const [name] = Object.entries(searchAttributes()).find(([, t]) => t === 'Keyword')!;
    const conflict = runScript(
      { ...env, SEARCH_ATTRIBUTES_FILE: jsonFile(`{"searchAttributes": {"${name}": "Int"}}`) },
      bin,
    );
    expect(conflict.status).not.toBe(0);
    expect(conflict.stderr).toContain(`${name} already exists with a type other than Int`);
  });
});
