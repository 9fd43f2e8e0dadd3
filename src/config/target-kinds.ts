/**
 * The kinds of recording-system target a targets file may name, and how each one's entry is
 * checked and resolved: `http` (image-sync's own contract, optionally over TLS with a client
 * certificate), `s3` (an S3-compatible object store), `sftp` (an SFTP drop) and `webdav`
 * (a WebDAV document store).
 *
 * Credentials are never written in the file: an entry names the environment variable that holds
 * each secret (`tokenEnv`, `accessKeyIdEnv`, ...); the variable `<NAME>_FILE` may name a file
 * holding it instead. Key and certificate files are named by path. Every problem is reported
 * as `target <name>, field <field>: <why>` and never quotes a secret.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorText } from '../errors';

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const envName = z.string().regex(ENV_NAME, 'must name an environment variable (A-Z, 0-9, _)');
const filePath = z.string().min(1, 'must be a file path');

/** Settings every kind shares: the target's share of the worker and the batch's limits. */
const common = {
  maxConcurrency: z.number().int().min(1).max(1000).default(32),
  requestTimeoutMs: z.number().int().min(100).default(30_000),
  /** Bytes per second of uploads to this target, per batch, across all workers. */
  maxBytesPerSecond: z.number().positive().optional(),
  /** Requests (sends and verifications) per second to this target, per batch, across all workers. */
  maxRequestsPerSecond: z.number().positive().optional(),
};

const httpEntry = z.strictObject({
  kind: z.literal('http'),
  url: z.url(),
  tokenEnv: envName,
  /** CA certificates (PEM) trusted for the server's certificate, in addition to Node's own. */
  caFile: filePath.optional(),
  /** The client certificate and its key (PEM) for mutual TLS: both or neither. */
  certFile: filePath.optional(),
  keyFile: filePath.optional(),
  ...common,
});

const s3Entry = z.strictObject({
  kind: z.literal('s3'),
  endpoint: z.url(),
  region: z.string().min(1).default('us-east-1'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
  /** Prepended to every key: key = prefix + `<orderId>/<fileName>`. */
  prefix: z
    .string()
    .regex(/^([^/\s][^\s]*\/)?$/, 'must be empty or end with "/" (and not start with one)')
    .default(''),
  forcePathStyle: z.boolean().default(false),
  accessKeyIdEnv: envName,
  secretAccessKeyEnv: envName,
  caFile: filePath.optional(),
  ...common,
});

const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}$/;

const sftpEntry = z.strictObject({
  kind: z.literal('sftp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1),
  /** The private key (OpenSSH or PEM): from a file, or from an environment variable. */
  privateKeyFile: filePath.optional(),
  privateKeyEnv: envName.optional(),
  passphraseEnv: envName.optional(),
  /** The server's public host key, as in known_hosts: `ssh-ed25519 AAAA...`. No trust on first use. */
  hostKey: z.string().trim().regex(HOST_KEY, 'must be the server public key as "ssh-ed25519 AAAA..."'),
  /** The folder files land under: `<root>/<orderId>/<fileName>`. */
  root: z.string().regex(/^\/.*/, 'must be an absolute path').default('/'),
  ...common,
});

const webdavEntry = z.strictObject({
  kind: z.literal('webdav'),
  /** The root collection: a file lands at `<url>/<orderId>/<fileName>`. */
  url: z.url(),
  usernameEnv: envName.optional(),
  passwordEnv: envName.optional(),
  tokenEnv: envName.optional(),
  caFile: filePath.optional(),
  ...common,
});

/** Kinds a later release may add; an entry naming one is refused with that reason. */
export const KINDS_NOT_YET: string[] = [];

export const targetEntrySchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !('kind' in raw) ? { ...raw, kind: 'http' } : raw),
  z.discriminatedUnion('kind', [httpEntry, s3Entry, sftpEntry, webdavEntry], {
    error: 'must be one of http, s3, sftp, webdav',
  }),
);

/** The reason for an entry's kind that this release does not accept. */
export function kindProblem(kind: unknown): string {
  return KINDS_NOT_YET.includes(String(kind))
    ? `${String(kind)} targets are not supported by this release`
    : 'must be one of http, s3, sftp, webdav';
}
export type TargetEntry = z.output<typeof targetEntrySchema>;
export type TargetKind = TargetEntry['kind'];

interface CommonSettings {
  name: string;
  maxConcurrency: number;
  requestTimeoutMs: number;
  maxBytesPerSecond?: number;
  maxRequestsPerSecond?: number;
}

export interface HttpTarget extends CommonSettings {
  kind: 'http';
  url: string;
  token: string;
  /** TLS material, read from the named files. */
  tls?: { ca?: string; cert?: string; key?: string };
}

export interface S3Target extends CommonSettings {
  kind: 's3';
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  ca?: string;
}

export interface SftpTarget extends CommonSettings {
  kind: 'sftp';
  host: string;
  port: number;
  username: string;
  privateKey: string;
  passphrase?: string;
  hostKey: string;
  root: string;
}

export interface WebDavTarget extends CommonSettings {
  kind: 'webdav';
  url: string;
  auth: { username: string; password: string } | { token: string };
  ca?: string;
}

export type TargetConfig = HttpTarget | S3Target | SftpTarget | WebDavTarget;

/** A target entry that cannot be used: names the target and the field. */
export class TargetConfigError extends Error {
  constructor(
    readonly target: string,
    readonly field: string,
    reason: string,
  ) {
    super(`target ${target}, field ${field}: ${reason}`);
    this.name = 'TargetConfigError';
  }
}

/**
 * The secret an entry's field names: the variable's value, or the content of the file the
 * variable `<NAME>_FILE` names. The message never holds the value.
 */
export function secretOf(env: NodeJS.ProcessEnv, target: string, field: string, name: string): string {
  const direct = env[name];
  if (direct) return direct;
  const file = env[`${name}_FILE`];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TargetConfigError(target, field, `cannot read ${name}_FILE: ${errorText(err)}`);
    }
    const trimmed = text.replace(/\r?\n$/, '');
    if (trimmed) return trimmed;
    throw new TargetConfigError(target, field, `the file ${name}_FILE names is empty`);
  }
  throw new TargetConfigError(target, field, `environment variable ${name} is not set (nor ${name}_FILE)`);
}

function fileOf(target: string, field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TargetConfigError(
      target,
      field,
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`,
    );
  }
}

function commonOf(name: string, e: TargetEntry): CommonSettings {
  return {
    name,
    maxConcurrency: e.maxConcurrency,
    requestTimeoutMs: e.requestTimeoutMs,
    ...(e.maxBytesPerSecond ? { maxBytesPerSecond: e.maxBytesPerSecond } : {}),
    ...(e.maxRequestsPerSecond ? { maxRequestsPerSecond: e.maxRequestsPerSecond } : {}),
  };
}

/** Resolves one checked entry: reads its secrets and files. Throws TargetConfigError. */
export function resolveTarget(name: string, e: TargetEntry, env: NodeJS.ProcessEnv): TargetConfig {
  switch (e.kind) {
    case 'http': {
      if (Boolean(e.certFile) !== Boolean(e.keyFile)) {
        throw new TargetConfigError(name, e.certFile ? 'keyFile' : 'certFile', 'certFile and keyFile go together');
      }
      const tls = {
        ...(e.caFile ? { ca: fileOf(name, 'caFile', e.caFile) } : {}),
        ...(e.certFile ? { cert: fileOf(name, 'certFile', e.certFile) } : {}),
        ...(e.keyFile ? { key: fileOf(name, 'keyFile', e.keyFile) } : {}),
      };
      if (Object.keys(tls).length && !e.url.startsWith('https:')) {
        throw new TargetConfigError(name, 'url', 'caFile, certFile and keyFile need an https:// URL');
      }
      return {
        ...commonOf(name, e),
        kind: 'http',
        url: e.url,
        token: secretOf(env, name, 'tokenEnv', e.tokenEnv),
        ...(Object.keys(tls).length ? { tls } : {}),
      };
    }
    case 's3':
      return {
        ...commonOf(name, e),
        kind: 's3',
        endpoint: e.endpoint,
        region: e.region,
        bucket: e.bucket,
        prefix: e.prefix,
        forcePathStyle: e.forcePathStyle,
        accessKeyId: secretOf(env, name, 'accessKeyIdEnv', e.accessKeyIdEnv),
        secretAccessKey: secretOf(env, name, 'secretAccessKeyEnv', e.secretAccessKeyEnv),
        ...(e.caFile ? { ca: fileOf(name, 'caFile', e.caFile) } : {}),
      };
    case 'sftp': {
      if (Boolean(e.privateKeyFile) === Boolean(e.privateKeyEnv)) {
        throw new TargetConfigError(name, 'privateKeyFile', 'give exactly one of privateKeyFile and privateKeyEnv');
      }
      const privateKey = e.privateKeyFile
        ? fileOf(name, 'privateKeyFile', e.privateKeyFile)
        : secretOf(env, name, 'privateKeyEnv', e.privateKeyEnv!);
      return {
        ...commonOf(name, e),
        kind: 'sftp',
        host: e.host,
        port: e.port,
        username: e.username,
        privateKey,
        ...(e.passphraseEnv ? { passphrase: secretOf(env, name, 'passphraseEnv', e.passphraseEnv) } : {}),
        hostKey: e.hostKey,
        root: e.root.replace(/\/+$/, '') || '/',
      };
    }
    case 'webdav': {
      const basic = Boolean(e.usernameEnv || e.passwordEnv);
      if (basic === Boolean(e.tokenEnv)) {
        throw new TargetConfigError(name, 'tokenEnv', 'give either usernameEnv and passwordEnv, or tokenEnv');
      }
      if (basic && !(e.usernameEnv && e.passwordEnv)) {
        throw new TargetConfigError(
          name,
          e.usernameEnv ? 'passwordEnv' : 'usernameEnv',
          'usernameEnv and passwordEnv go together',
        );
      }
      if (e.caFile && !e.url.startsWith('https:')) {
        throw new TargetConfigError(name, 'url', 'caFile needs an https:// URL');
      }
      return {
        ...commonOf(name, e),
        kind: 'webdav',
        url: e.url,
        auth: e.tokenEnv
          ? { token: secretOf(env, name, 'tokenEnv', e.tokenEnv) }
          : {
              username: secretOf(env, name, 'usernameEnv', e.usernameEnv!),
              password: secretOf(env, name, 'passwordEnv', e.passwordEnv!),
            },
        ...(e.caFile ? { ca: fileOf(name, 'caFile', e.caFile) } : {}),
      };
    }
  }
}
