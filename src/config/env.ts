/**
 * The process's configuration: every environment variable image-sync reads
 * (docs/reference/environment.md, written from this schema and env-docs.ts), parsed once at
 * start with one schema. A bad value is refused with one line that names the variable and what
 * it accepts; the CLI exits 2 on it.
 *
 * The schema is made of shapes, one per concern; adding a concern is one more shape in
 * {@link ENV_SHAPES}. Each variable carries the words that say what it accepts, and whether its
 * value is secret (a secret value is never echoed).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { productionEnvShape } from './production-env';
import { DEFAULT_MAX_WAITING, DEFAULT_MAX_WAITING_BYTES } from '../intake/workflow-api';
import { parseLedgerUrl } from '../ledger/url';
import { redactSecrets } from '../ledger/safe-text';
import { resolveSecretFiles, SecretFileError } from './secret-files';

/** One environment variable: its schema (on the trimmed value, absent when unset or empty). */
export interface EnvVar<T extends z.ZodType = z.ZodType> {
  schema: T;
  /** What the variable accepts, for the error line. */
  accepts: string;
  /** Never echo the value (tokens, keys). */
  secret?: boolean;
  /** Echo the value with credentials masked (URLs that may hold a password). */
  redact?: boolean;
  /** May be given as `<NAME>_FILE` (see secret-files.ts); true for every secret and redacted variable. */
  fromFile?: boolean;
}

function envVar<T extends z.ZodType>(
  schema: T,
  accepts: string,
  opts: { secret?: boolean; redact?: boolean; fromFile?: boolean } = {},
) {
  return { schema, accepts, ...opts } satisfies EnvVar<T>;
}

/** A whole number from min to max, written in decimal digits. */
function intInRange(min: number, max: number, fallback: number) {
  return z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((v) => v ?? fallback);
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const existingFile = z.string().refine(isFile).optional();
const noSpace = /^[^\s\p{Cc}]+$/u;
const booleanWords = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'));

export const SHUTDOWN_GRACE_MS_DEFAULT = 30_000;
export const SHUTDOWN_GRACE_MS_MAX = 600_000;
export const STARTUP_TIMEOUT_MS_DEFAULT = 120_000;
export const STARTUP_TIMEOUT_MS_MAX = 3_600_000;
export const RECORDING_SYSTEM_MAX_CONCURRENCY_DEFAULT = 32;
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type EnvLogLevel = (typeof LOG_LEVELS)[number];

/** Temporal's connection, as @temporalio/envconfig reads it (validated here, read there). */
export const temporalEnv = {
  TEMPORAL_ADDRESS: envVar(
    z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]?\d{1,4}))?$/)
      .optional(),
    'host:port, e.g. localhost:7233',
  ),
  TEMPORAL_NAMESPACE: envVar(z.string().regex(noSpace).max(255).optional(), 'a namespace name, no spaces'),
  TEMPORAL_API_KEY: envVar(z.string().regex(noSpace).optional(), 'an API key without spaces', { secret: true }),
  TEMPORAL_PROFILE: envVar(
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .optional(),
    'a profile name: letters, digits, _ . -',
  ),
  TEMPORAL_CONFIG_FILE: envVar(existingFile, 'the path of an existing TOML file'),
  TEMPORAL_TLS: envVar(booleanWords, 'true, false, 1 or 0'),
  TEMPORAL_TLS_CLIENT_CERT_PATH: envVar(existingFile, 'the path of an existing PEM file'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: envVar(existingFile, 'the path of an existing PEM file'),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: envVar(existingFile, 'the path of an existing PEM file'),
  TEMPORAL_TLS_CLIENT_CERT_DATA: envVar(z.string().includes('-----BEGIN').optional(), 'PEM text', { secret: true }),
  TEMPORAL_TLS_CLIENT_KEY_DATA: envVar(z.string().includes('-----BEGIN').optional(), 'PEM text', { secret: true }),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: envVar(z.string().includes('-----BEGIN').optional(), 'PEM text'),
  TEMPORAL_TLS_SERVER_NAME: envVar(z.string().regex(noSpace).optional(), 'a host name'),
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: envVar(booleanWords, 'true, false, 1 or 0'),
};

/** The task queue of the workers and batches. */
export const taskQueueEnv = {
  IMAGE_SYNC_TASK_QUEUE: envVar(
    z
      .string()
      .regex(noSpace)
      .max(255)
      .optional()
      .transform((v) => v ?? 'image-sync'),
    'a task queue name: no spaces, at most 255 characters',
  ),
};

/** The default recording system, and the file of several. */
export const recordingSystemEnv = {
  RECORDING_SYSTEM_URL: envVar(
    z
      .url({ protocol: /^https?$/ })
      .optional()
      .transform((v) => v ?? 'http://127.0.0.1:8787'),
    'an http:// or https:// URL',
    { redact: true },
  ),
  RECORDING_SYSTEM_TOKEN: envVar(z.string().regex(noSpace).optional(), 'a bearer token without spaces', {
    secret: true,
  }),
  RECORDING_SYSTEM_MAX_CONCURRENCY: envVar(
    intInRange(1, 1000, RECORDING_SYSTEM_MAX_CONCURRENCY_DEFAULT),
    'a whole number from 1 to 1000',
  ),
  IMAGE_SYNC_TARGETS_FILE: envVar(existingFile, 'the path of an existing JSON file of targets'),
};

/** The ledger's database. */
export const ledgerEnv = {
  IMAGE_SYNC_LEDGER_URL: envVar(
    z
      .string()
      .refine((v) => {
        try {
          parseLedgerUrl(v);
          return true;
        } catch {
          return false;
        }
      })
      .optional()
      .transform((v) => v ?? 'sqlite:./.image-sync/ledger.db'),
    'sqlite:<path>, sqlite::memory: or postgres://user[:password]@host[:port]/database[?schema=name]',
    { redact: true },
  ),
};

/** The worker process. */
export const workerEnv = {
  IMAGE_SYNC_LOG_LEVEL: envVar(
    z
      .string()
      .transform((v) => v.toUpperCase())
      .pipe(z.enum(LOG_LEVELS))
      .optional()
      .transform((v): EnvLogLevel => v ?? 'INFO'),
    `one of ${LOG_LEVELS.join(', ')} (any case)`,
  ),
  IMAGE_SYNC_SHUTDOWN_GRACE_MS: envVar(
    intInRange(0, SHUTDOWN_GRACE_MS_MAX, SHUTDOWN_GRACE_MS_DEFAULT),
    `milliseconds, a whole number from 0 to ${SHUTDOWN_GRACE_MS_MAX}`,
  ),
  IMAGE_SYNC_STARTUP_TIMEOUT_MS: envVar(
    intInRange(1_000, STARTUP_TIMEOUT_MS_MAX, STARTUP_TIMEOUT_MS_DEFAULT),
    `milliseconds, a whole number from 1000 to ${STARTUP_TIMEOUT_MS_MAX}`,
  ),
};

/** A list in one value: items separated by commas or new lines (a file holds one a line). */
const itemList = (item: z.ZodString) =>
  z
    .string()
    .optional()
    .transform((v) =>
      (v ?? '')
        .split(/[,\n]/)
        .map((t) => t.trim())
        .filter((t) => t.length > 0),
    )
    .pipe(z.array(item));

/** Who may call the codec server (src/codec/auth.ts): bearer tokens, their hashes, or JWTs. */
export const codecEnv = {
  IMAGE_SYNC_CODEC_TOKENS: envVar(
    itemList(z.string().regex(noSpace).min(16)),
    'bearer tokens of at least 16 characters without spaces, separated by commas or new lines',
    { secret: true },
  ),
  IMAGE_SYNC_CODEC_TOKEN_HASHES: envVar(
    itemList(z.string().regex(/^sha256:[0-9a-fA-F]{64}$/)),
    'sha256:<64 hex digits> of each token, separated by commas or new lines',
    { fromFile: true },
  ),
  IMAGE_SYNC_CODEC_JWKS_URL: envVar(
    z.url({ protocol: /^https?$/ }).optional(),
    'the http:// or https:// URL of a JSON Web Key Set',
  ),
  IMAGE_SYNC_CODEC_JWT_ISSUER: envVar(z.string().regex(noSpace).optional(), 'the issuer (iss) JWTs must name'),
  IMAGE_SYNC_CODEC_JWT_AUDIENCE: envVar(z.string().regex(noSpace).optional(), 'the audience (aud) JWTs must name'),
};

export const INTAKE_PORT_DEFAULT = 8790;
export const INTAKE_MAX_BODY_BYTES_DEFAULT = 1024 * 1024;
export const INTAKE_MAX_BODY_BYTES_MAX = 64 * 1024 * 1024;
/** More waiting files than this would make each of the intake's submissions slow to check. */
export const INTAKE_MAX_WAITING_MAX = 100_000;
export const INTAKE_MAX_WAITING_BYTES_MIN = 16 * 1024;

/** The intake server (`image-sync intake-server`) and its client (`image-sync submit`). */
export const intakeEnv = {
  IMAGE_SYNC_INTAKE_TOKENS: envVar(
    itemList(z.string().regex(noSpace).min(16)),
    'bearer tokens of at least 16 characters without spaces, separated by commas or new lines',
    { secret: true },
  ),
  IMAGE_SYNC_INTAKE_ROOTS: envVar(
    z
      .string()
      .optional()
      .transform((v) =>
        (v ?? '')
          .split(':')
          .map((d) => d.trim())
          .filter((d) => d.length > 0),
      )
      .pipe(z.array(z.string().startsWith('/'))),
    'absolute folder paths separated by ":"',
  ),
  IMAGE_SYNC_INTAKE_PORT: envVar(intInRange(0, 65535, INTAKE_PORT_DEFAULT), 'a port number from 0 to 65535'),
  IMAGE_SYNC_INTAKE_MAX_BODY_BYTES: envVar(
    intInRange(1024, INTAKE_MAX_BODY_BYTES_MAX, INTAKE_MAX_BODY_BYTES_DEFAULT),
    `bytes, a whole number from 1024 to ${INTAKE_MAX_BODY_BYTES_MAX}`,
  ),
  IMAGE_SYNC_INTAKE_MAX_WAITING: envVar(
    intInRange(1, INTAKE_MAX_WAITING_MAX, DEFAULT_MAX_WAITING),
    `files, a whole number from 1 to ${INTAKE_MAX_WAITING_MAX}`,
  ),
  IMAGE_SYNC_INTAKE_MAX_WAITING_BYTES: envVar(
    intInRange(INTAKE_MAX_WAITING_BYTES_MIN, DEFAULT_MAX_WAITING_BYTES, DEFAULT_MAX_WAITING_BYTES),
    `bytes, a whole number from ${INTAKE_MAX_WAITING_BYTES_MIN} to ${DEFAULT_MAX_WAITING_BYTES}`,
  ),
  IMAGE_SYNC_INTAKE_TLS_CERT: envVar(existingFile, 'the path of an existing PEM file'),
  IMAGE_SYNC_INTAKE_TLS_KEY: envVar(existingFile, 'the path of an existing PEM file'),
  IMAGE_SYNC_INTAKE_CLIENT_CA: envVar(existingFile, 'the path of an existing PEM file'),
  IMAGE_SYNC_INTAKE_URL: envVar(
    z
      .url({ protocol: /^https?$/ })
      .optional()
      .transform((v) => v ?? `http://127.0.0.1:${INTAKE_PORT_DEFAULT}`),
    'an http:// or https:// URL',
  ),
  IMAGE_SYNC_INTAKE_TOKEN: envVar(z.string().regex(noSpace).optional(), 'a bearer token without spaces', {
    secret: true,
  }),
};

/** Tools the CLI runs. */
export const toolsEnv = {
  TEMPORAL_CLI_PATH: envVar(z.string().refine(isExecutableFile).optional(), 'the path of an executable file'),
  TEMPORAL_SERVER_PATH: envVar(z.string().refine(isExecutableFile).optional(), 'the path of an executable file'),
  TEMPORAL_SQL_TOOL_PATH: envVar(z.string().refine(isExecutableFile).optional(), 'the path of an executable file'),
  TEMPORAL_UI_SERVER_PATH: envVar(z.string().refine(isExecutableFile).optional(), 'the path of an executable file'),
};

/** Running in production: log format, metrics port, payload encryption keys (production-env.ts). */
export const productionEnv = {
  IMAGE_SYNC_LOG_FORMAT: envVar(productionEnvShape.IMAGE_SYNC_LOG_FORMAT, 'json or text'),
  IMAGE_SYNC_METRICS_PORT: envVar(productionEnvShape.IMAGE_SYNC_METRICS_PORT, 'a port number from 0 to 65535'),
  IMAGE_SYNC_ENCRYPTION_KEYS: envVar(
    productionEnvShape.IMAGE_SYNC_ENCRYPTION_KEYS,
    'id:base64key[,id:base64key...] with key ids of letters, digits, . _ - and 32-byte keys in base64',
    { secret: true },
  ),
};

export const NOTIFY_TIMEOUT_MS_DEFAULT = 30_000;
export const NOTIFY_TIMEOUT_MS_MAX = 600_000;

/** A comma-separated list of http:// or https:// URLs. */
const urlList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u.length > 0),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/ })));

/** Where batches POST their events, how long one delivery may take, and the key that signs them. */
export const notifyEnv = {
  IMAGE_SYNC_NOTIFY_URLS: envVar(urlList, 'comma-separated http:// or https:// URLs', { redact: true }),
  IMAGE_SYNC_NOTIFY_TIMEOUT_MS: envVar(
    intInRange(1_000, NOTIFY_TIMEOUT_MS_MAX, NOTIFY_TIMEOUT_MS_DEFAULT),
    `milliseconds, a whole number from 1000 to ${NOTIFY_TIMEOUT_MS_MAX}`,
  ),
  IMAGE_SYNC_NOTIFY_SECRET: envVar(z.string().min(16).optional(), 'a secret of at least 16 characters', {
    secret: true,
  }),
};

/** Every variable, by concern. One more concern is one more line here. */
export const ENV_SHAPES = {
  ...temporalEnv,
  ...taskQueueEnv,
  ...recordingSystemEnv,
  ...ledgerEnv,
  ...workerEnv,
  ...toolsEnv,
  ...productionEnv,
  ...notifyEnv,
  ...codecEnv,
  ...intakeEnv,
};

type Shapes = typeof ENV_SHAPES;
export type Env = { readonly [K in keyof Shapes]: z.output<Shapes[K]['schema']> };

/** The names of every variable the configuration reads. */
export const ENV_NAMES = Object.keys(ENV_SHAPES) as (keyof Shapes)[];

/** The variables that may also be given as `<NAME>_FILE`. */
export const FILE_ENV_NAMES: string[] = ENV_NAMES.filter((name) => {
  const spec: EnvVar = ENV_SHAPES[name];
  return spec.secret || spec.redact || spec.fromFile;
});

/** A variable with a value the schema refuses; the message is the one line to print. */
export class EnvError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnvError';
  }
}

function shown(spec: EnvVar, raw: string): string {
  if (spec.secret) return '(hidden)';
  const text = spec.redact ? redactSecrets(raw) : raw;
  return JSON.stringify(text).slice(1, -1);
}

/**
 * Parses the variables of `raw`. An unset or blank variable takes its default. Throws
 * {@link EnvError} for the first variable (in {@link ENV_NAMES} order) with a bad value.
 */
export function parseEnv(given: NodeJS.ProcessEnv): Env {
  // process.env takes the file values in place, for the readers that read it directly.
  const raw = given === process.env ? given : { ...given };
  try {
    resolveSecretFiles(raw, FILE_ENV_NAMES);
  } catch (err) {
    if (err instanceof SecretFileError) throw new EnvError(err.variable, err.message);
    throw err;
  }
  const out: Record<string, unknown> = {};
  for (const name of ENV_NAMES) {
    const spec: EnvVar = ENV_SHAPES[name];
    const value = raw[name]?.trim() || undefined;
    const result = spec.schema.safeParse(value);
    if (!result.success) {
      throw new EnvError(name, `${name}=${shown(spec, raw[name] ?? '')} is invalid: ${spec.accepts}`);
    }
    out[name] = result.data;
  }
  return Object.freeze(out) as Env;
}

let loaded: Env | undefined;

/** The configuration of this process, parsed from process.env on first use. */
export function appEnv(): Env {
  loaded ??= parseEnv(process.env);
  return loaded;
}

/** Parses process.env again (after the process set variables for itself, as the demo does). */
export function reloadAppEnv(): Env {
  loaded = parseEnv(process.env);
  return loaded;
}

/** The configuration for `env`: the process's own parse when it is process.env. */
export function envFrom(env: NodeJS.ProcessEnv): Env {
  return env === process.env ? appEnv() : parseEnv(env);
}
