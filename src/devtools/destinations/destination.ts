/**
 * One real destination server of a given kind, started for the demo and the bench: versitygw
 * (`s3`), sshd with internal-sftp (`sftp`) or lighttpd with mod_webdav (`webdav`), on a free
 * loopback port, with credentials and keys generated for this run.
 *
 * It gives what an image-sync process needs to use it as a target: the targets file's entry and
 * the secret files its `<NAME>_FILE` variables name (mode 0600, never printed), and adapters for
 * this process. The server's processes are listed for CPU readings.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TargetEntry } from '../../config/target-kinds';
import type { RecordingSystem } from '../../recording-system/port';
import { S3RecordingSystem } from '../../recording-system/s3-adapter';
import { SftpRecordingSystem } from '../../recording-system/sftp-adapter';
import { WebDavRecordingSystem } from '../../recording-system/webdav-adapter';
import { descendants } from './process';
import { startS3Server } from './s3-server';
import { startSftpServer } from './sftp-server';
import { startWebDavServer } from './webdav-server';

export const SERVER_KINDS = ['s3', 'sftp', 'webdav'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export interface RunningDestination {
  kind: ServerKind;
  /** What it is and where, for a line of output (no credential). */
  description: string;
  /** The targets file's entry for it (secrets named by variable, never held). */
  entry: TargetEntry;
  /** The environment an image-sync process needs besides the targets file: `<NAME>_FILE` paths only. */
  env: Record<string, string>;
  /** A new adapter to the server, as a worker configured by `entry` would make it. */
  system(opts?: { requestTimeoutMs?: number }): RecordingSystem;
  /** The server's processes now (its sessions included), for CPU readings. */
  pids(): number[];
  close(): Promise<void>;
}

/** Writes a secret to `<dir>/<name>` (0600) and returns the `<VAR>_FILE` variable naming it. */
function secretFile(dir: string, variable: string, value: string): Record<string, string> {
  const file = path.join(dir, variable.toLowerCase());
  writeFileSync(file, value, { mode: 0o600 });
  return { [`${variable}_FILE`]: file };
}

/** Starts a server of `kind` over `dir` (its data, configuration and the secret files go there). */
export async function startDestination(
  kind: ServerKind,
  dir: string,
  opts: { requestTimeoutMs?: number } = {},
): Promise<RunningDestination> {
  const secrets = path.join(dir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const tree = (pid: number | null) => (pid ? [pid, ...descendants(pid)] : []);
  const common = { maxConcurrency: 32, requestTimeoutMs };
  switch (kind) {
    case 's3': {
      const server = await startS3Server({ dir });
      return {
        kind,
        description: `S3-compatible server (versitygw) ${server.endpoint}, bucket ${server.bucket}`,
        entry: {
          kind: 's3',
          endpoint: server.endpoint,
          region: server.region,
          bucket: server.bucket,
          prefix: '',
          forcePathStyle: true,
          accessKeyIdEnv: 'DEMO_S3_ACCESS_KEY_ID',
          secretAccessKeyEnv: 'DEMO_S3_SECRET_ACCESS_KEY',
          ...common,
        },
        env: {
          ...secretFile(secrets, 'DEMO_S3_ACCESS_KEY_ID', server.accessKeyId),
          ...secretFile(secrets, 'DEMO_S3_SECRET_ACCESS_KEY', server.secretAccessKey),
        },
        system: (o = {}) =>
          new S3RecordingSystem({
            ...server,
            prefix: '',
            forcePathStyle: true,
            requestTimeoutMs: o.requestTimeoutMs ?? requestTimeoutMs,
          }),
        pids: () => tree(server.pid()),
        close: () => server.close(),
      };
    }
    case 'sftp': {
      const server = await startSftpServer({ dir });
      return {
        kind,
        description: `SFTP drop (OpenSSH sshd, internal-sftp) ${server.host}:${server.port}, root ${server.root}`,
        entry: {
          kind: 'sftp',
          host: server.host,
          port: server.port,
          username: server.username,
          privateKeyFile: server.privateKeyFile,
          hostKey: server.hostKey,
          root: server.root,
          ...common,
        },
        env: {},
        system: (o = {}) =>
          new SftpRecordingSystem({ ...server, requestTimeoutMs: o.requestTimeoutMs ?? requestTimeoutMs }),
        pids: () => tree(server.pid()),
        close: () => server.close(),
      };
    }
    case 'webdav': {
      const server = await startWebDavServer({ dir });
      return {
        kind,
        description: `WebDAV store (lighttpd, mod_webdav) ${server.url}`,
        entry: {
          kind: 'webdav',
          url: server.url,
          usernameEnv: 'DEMO_WEBDAV_USERNAME',
          passwordEnv: 'DEMO_WEBDAV_PASSWORD',
          ...common,
        },
        env: {
          ...secretFile(secrets, 'DEMO_WEBDAV_USERNAME', server.username),
          ...secretFile(secrets, 'DEMO_WEBDAV_PASSWORD', server.password),
        },
        system: (o = {}) =>
          new WebDavRecordingSystem({
            url: server.url,
            auth: { username: server.username, password: server.password },
            requestTimeoutMs: o.requestTimeoutMs ?? requestTimeoutMs,
          }),
        pids: () => tree(server.pid()),
        close: () => server.close(),
      };
    }
  }
}
