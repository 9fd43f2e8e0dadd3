/**
 * What each environment variable of the schema (env.ts) means, for people: its type, its
 * meaning, its default when the schema's own default needs words, and the group it belongs
 * to. The top-level `--help` and the generated reference (docs/reference/environment.md) are
 * written from this table and the schema together; a variable added to the schema without an
 * entry here fails the reference test.
 */
import { ENV_NAMES, ENV_SHAPES, FILE_ENV_NAMES } from './env';

/** The kind of value a variable takes, as the reference names it. */
export type EnvType =
  | 'string'
  | 'integer'
  | 'boolean'
  | 'enum'
  | 'url'
  | 'url list'
  | 'host:port'
  | 'file path'
  | 'executable path'
  | 'PEM text'
  | 'key list';

export type EnvGroup =
  'Temporal' | 'Recording systems' | 'Ledger' | 'Worker' | 'Notifications' | 'Codec server' | 'Intake server' | 'Tools';

export interface EnvDoc {
  group: EnvGroup;
  type: EnvType;
  /** One line: what the variable sets. */
  meaning: string;
  /** The default in words, when the parsed default alone would not say it. */
  defaultText?: string;
}

export const ENV_DOCS: Record<string, EnvDoc> = {
  TEMPORAL_ADDRESS: {
    group: 'Temporal',
    type: 'host:port',
    meaning: 'Temporal frontend to connect to',
    defaultText: 'localhost:7233',
  },
  TEMPORAL_NAMESPACE: { group: 'Temporal', type: 'string', meaning: 'Temporal namespace', defaultText: 'default' },
  TEMPORAL_API_KEY: {
    group: 'Temporal',
    type: 'string',
    meaning: 'API key for Temporal Cloud or a server that asks for one',
  },
  TEMPORAL_PROFILE: {
    group: 'Temporal',
    type: 'string',
    meaning: "profile of Temporal's TOML configuration file",
    defaultText: 'default',
  },
  TEMPORAL_CONFIG_FILE: {
    group: 'Temporal',
    type: 'file path',
    meaning: "Temporal's TOML configuration file",
    defaultText: "Temporal's own path",
  },
  TEMPORAL_TLS: {
    group: 'Temporal',
    type: 'boolean',
    meaning: 'use TLS to Temporal',
    defaultText: 'off; on when a TLS file or key is given',
  },
  TEMPORAL_TLS_CLIENT_CERT_PATH: { group: 'Temporal', type: 'file path', meaning: 'mTLS client certificate' },
  TEMPORAL_TLS_CLIENT_KEY_PATH: { group: 'Temporal', type: 'file path', meaning: 'mTLS client key' },
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: {
    group: 'Temporal',
    type: 'file path',
    meaning: "CA of Temporal's server certificate",
  },
  TEMPORAL_TLS_CLIENT_CERT_DATA: { group: 'Temporal', type: 'PEM text', meaning: 'mTLS client certificate, as text' },
  TEMPORAL_TLS_CLIENT_KEY_DATA: { group: 'Temporal', type: 'PEM text', meaning: 'mTLS client key, as text' },
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: { group: 'Temporal', type: 'PEM text', meaning: 'server CA, as text' },
  TEMPORAL_TLS_SERVER_NAME: { group: 'Temporal', type: 'string', meaning: 'TLS server name override' },
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: {
    group: 'Temporal',
    type: 'boolean',
    meaning: 'skip TLS host name verification',
  },
  IMAGE_SYNC_TASK_QUEUE: { group: 'Temporal', type: 'string', meaning: 'task queue of the workers and batches' },
  RECORDING_SYSTEM_URL: { group: 'Recording systems', type: 'url', meaning: 'the default recording system' },
  RECORDING_SYSTEM_TOKEN: {
    group: 'Recording systems',
    type: 'string',
    meaning: 'its bearer token (worker, reconcile, report, recording-system)',
  },
  RECORDING_SYSTEM_MAX_CONCURRENCY: {
    group: 'Recording systems',
    type: 'integer',
    meaning: 'requests in flight to the default recording system, per worker',
  },
  IMAGE_SYNC_TARGETS_FILE: {
    group: 'Recording systems',
    type: 'file path',
    meaning: 'JSON file of several recording systems (docs/deploy.md, "Targets")',
  },
  IMAGE_SYNC_LEDGER_URL: {
    group: 'Ledger',
    type: 'url',
    meaning: "the ledger's database; ?schema=NAME picks a PostgreSQL schema",
  },
  IMAGE_SYNC_LOG_LEVEL: { group: 'Worker', type: 'enum', meaning: 'worker log level' },
  IMAGE_SYNC_SHUTDOWN_GRACE_MS: {
    group: 'Worker',
    type: 'integer',
    meaning: 'on SIGTERM or SIGINT, how long a worker lets the work in flight finish',
  },
  IMAGE_SYNC_STARTUP_TIMEOUT_MS: {
    group: 'Worker',
    type: 'integer',
    meaning: 'how long a worker retries an unreachable ledger or Temporal at start before it exits 1',
  },
  IMAGE_SYNC_LOG_FORMAT: {
    group: 'Worker',
    type: 'enum',
    meaning: 'worker logs: one JSON object a line, or text',
    defaultText: 'text on a terminal, json otherwise',
  },
  IMAGE_SYNC_METRICS_PORT: {
    group: 'Worker',
    type: 'integer',
    meaning: "the worker's Prometheus /metrics and /health port",
    defaultText: 'off',
  },
  IMAGE_SYNC_ENCRYPTION_KEYS: {
    group: 'Worker',
    type: 'key list',
    meaning: 'AES-256-GCM payload keys: the first encrypts, all decrypt',
    defaultText: 'none, payloads in clear',
  },
  IMAGE_SYNC_NOTIFY_URLS: {
    group: 'Notifications',
    type: 'url list',
    meaning: 'where every batch started here POSTs its events, besides --notify',
  },
  IMAGE_SYNC_NOTIFY_TIMEOUT_MS: {
    group: 'Notifications',
    type: 'integer',
    meaning: 'how long one event may take to reach one URL, retries included',
  },
  IMAGE_SYNC_NOTIFY_SECRET: {
    group: 'Notifications',
    type: 'string',
    meaning: 'the workers sign each notification with it (HMAC-SHA256)',
    defaultText: 'none, unsigned',
  },
  IMAGE_SYNC_CODEC_TOKENS: {
    group: 'Codec server',
    type: 'string',
    meaning: 'bearer tokens the codec server accepts, separated by commas or new lines',
  },
  IMAGE_SYNC_CODEC_TOKEN_HASHES: {
    group: 'Codec server',
    type: 'string',
    meaning: 'the same tokens by their SHA-256 only (sha256:<hex>), separated by commas or new lines',
  },
  IMAGE_SYNC_CODEC_JWKS_URL: {
    group: 'Codec server',
    type: 'url',
    meaning: 'the codec server accepts JWTs signed by a key of this JSON Web Key Set (an identity provider)',
  },
  IMAGE_SYNC_CODEC_JWT_ISSUER: { group: 'Codec server', type: 'string', meaning: 'the issuer those JWTs must name' },
  IMAGE_SYNC_CODEC_JWT_AUDIENCE: {
    group: 'Codec server',
    type: 'string',
    meaning: 'the audience those JWTs must name',
  },
  IMAGE_SYNC_INTAKE_TOKENS: {
    group: 'Intake server',
    type: 'string',
    meaning: 'bearer tokens the intake server accepts, separated by commas or new lines (docs/intake-api.md)',
  },
  IMAGE_SYNC_INTAKE_ROOTS: {
    group: 'Intake server',
    type: 'string',
    meaning:
      'the folders submitted paths must resolve into (symbolic links followed); relative paths start at the first',
  },
  IMAGE_SYNC_INTAKE_PORT: { group: 'Intake server', type: 'integer', meaning: "the intake server's port (--port)" },
  IMAGE_SYNC_INTAKE_MAX_BODY_BYTES: {
    group: 'Intake server',
    type: 'integer',
    meaning: 'a submission body larger than this is refused with 413',
  },
  IMAGE_SYNC_INTAKE_MAX_WAITING: {
    group: 'Intake server',
    type: 'integer',
    meaning:
      'files an intake holds accepted and not yet started; a submission past it is answered 429 (checked at each submission, so a change applies to a running intake)',
  },
  IMAGE_SYNC_INTAKE_MAX_WAITING_BYTES: {
    group: 'Intake server',
    type: 'integer',
    meaning:
      "the same in bytes, as the intake carries the files (their JSON) into each continue-as-new; at most the default, which keeps that input under the Temporal server's 2 MiB",
  },
  IMAGE_SYNC_INTAKE_TLS_CERT: {
    group: 'Intake server',
    type: 'file path',
    meaning: 'serve HTTPS with this certificate (PEM) (--tls-cert)',
    defaultText: 'none, plain HTTP',
  },
  IMAGE_SYNC_INTAKE_TLS_KEY: {
    group: 'Intake server',
    type: 'file path',
    meaning: 'its private key (PEM) (--tls-key)',
  },
  IMAGE_SYNC_INTAKE_CLIENT_CA: {
    group: 'Intake server',
    type: 'file path',
    meaning: 'mutual TLS: only clients with a certificate signed by this CA (PEM) get through (--client-ca)',
    defaultText: 'none, no client certificate asked',
  },
  IMAGE_SYNC_INTAKE_URL: { group: 'Intake server', type: 'url', meaning: 'the intake server submit calls (--url)' },
  IMAGE_SYNC_INTAKE_TOKEN: {
    group: 'Intake server',
    type: 'string',
    meaning: 'the bearer token submit sends (--token-file)',
  },
  TEMPORAL_CLI_PATH: {
    group: 'Tools',
    type: 'executable path',
    meaning: 'a Temporal CLI to use instead of finding or installing one',
  },
  TEMPORAL_SERVER_PATH: {
    group: 'Tools',
    type: 'executable path',
    meaning: 'a Temporal server for temporal-server, instead of the pinned one it installs',
  },
  TEMPORAL_SQL_TOOL_PATH: {
    group: 'Tools',
    type: 'executable path',
    meaning: "Temporal's SQL tool for temporal-server, instead of the pinned one",
  },
  TEMPORAL_UI_SERVER_PATH: {
    group: 'Tools',
    type: 'executable path',
    meaning: 'the Web UI server for temporal-server, instead of the pinned one',
  },
};

export const ENV_GROUPS: EnvGroup[] = [
  'Temporal',
  'Recording systems',
  'Ledger',
  'Worker',
  'Notifications',
  'Codec server',
  'Intake server',
  'Tools',
];

/** One variable as the reference and the help show it. */
export interface EnvEntry extends EnvDoc {
  name: string;
  accepts: string;
  /** The default, in words; "none" when unset means off or absent. */
  defaultShown: string;
  secret: boolean;
  /** May be given as `<NAME>_FILE` too. */
  fromFile: boolean;
}

function defaultOf(name: string): string {
  const spec = (
    ENV_SHAPES as Record<string, { schema: { safeParse(v: unknown): { success: boolean; data?: unknown } } }>
  )[name]!;
  const parsed = spec.schema.safeParse(undefined);
  const value = parsed.success ? parsed.data : undefined;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return 'none';
  return String(value);
}

/**
 * Every variable of the schema with its documentation, in schema order. Throws when the schema
 * and {@link ENV_DOCS} disagree, so neither can grow alone.
 */
export function envEntries(): EnvEntry[] {
  const missing = ENV_NAMES.filter((n) => !ENV_DOCS[n]);
  const extra = Object.keys(ENV_DOCS).filter((n) => !(ENV_NAMES as string[]).includes(n));
  if (missing.length > 0 || extra.length > 0)
    throw new Error(
      `src/config/env-docs.ts and the schema in env.ts disagree: ${[
        ...missing.map((n) => `${n} has no entry`),
        ...extra.map((n) => `${n} is not in the schema`),
      ].join('; ')}`,
    );
  return ENV_NAMES.map((name) => {
    const spec = ENV_SHAPES[name] as { accepts: string; secret?: boolean };
    const doc = ENV_DOCS[name]!;
    return {
      name,
      ...doc,
      accepts: spec.accepts,
      defaultShown: doc.defaultText ?? defaultOf(name),
      secret: spec.secret === true,
      fromFile: FILE_ENV_NAMES.includes(name),
    };
  });
}

/** The environment as the top-level --help lists it: by group, one line per variable. */
export function envHelpText(): string {
  const entries = envEntries();
  const width = Math.max(...entries.map((e) => e.name.length)) + 2;
  const lines = ['Environment (docs/reference/environment.md):'];
  for (const group of ENV_GROUPS) {
    const inGroup = entries.filter((e) => e.group === group);
    if (inGroup.length === 0) continue;
    lines.push(`  ${group}:`);
    for (const e of inGroup) {
      const dflt = e.defaultShown === 'none' ? '' : ` (default: ${e.defaultShown})`;
      lines.push(`    ${e.name.padEnd(width)}${e.type}: ${e.meaning}${dflt}`);
    }
  }
  lines.push('A bad value stops every command with exit code 2 and one line naming the variable.');
  return lines.join('\n');
}
