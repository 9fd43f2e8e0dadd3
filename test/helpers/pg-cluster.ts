/**
 * A private PostgreSQL cluster for tests that stop, restart or kill the database: made with
 * Debian's postgresql-common tools on a free port with trust authentication, so the machine's
 * main cluster (which other tests use at the same time) is never touched. Dropped at teardown.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { Client } from 'pg';

const TOOLS = ['/usr/bin/pg_createcluster', '/usr/bin/pg_ctlcluster', '/usr/bin/pg_dropcluster'];

/** Why a private cluster cannot be made here, or undefined when it can. */
export function privateClusterUnavailableReason(): string | undefined {
  const missing = TOOLS.filter((t) => !existsSync(t));
  if (missing.length > 0) return `Debian's PostgreSQL cluster tools are absent (${missing.join(', ')})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'creating a private PostgreSQL cluster needs root (pg_createcluster)';
  if (pgVersion() === undefined) return 'no PostgreSQL version under /etc/postgresql';
  return undefined;
}

function pgVersion(): string | undefined {
  if (!existsSync('/etc/postgresql')) return undefined;
  return readdirSync('/etc/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))[0];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface PrivateCluster {
  version: string;
  name: string;
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  start(): void;
  /** Fast shutdown: connections get 57P01 and are closed. */
  stop(): void;
  /** Stop then start; returns how long it took in milliseconds. */
  restart(): number;
  /** Terminates every other backend of the cluster (what a failover does to its clients). */
  dropConnections(): Promise<number>;
  drop(): void;
}

function ctl(version: string, name: string, action: 'start' | 'stop' | 'restart'): void {
  const mode = action === 'start' ? [] : ['--mode', 'fast'];
  execFileSync('pg_ctlcluster', [...mode, version, name, action], { stdio: 'pipe' });
}

/** Creates and starts a private cluster; call `drop()` in teardown. */
export async function createPrivateCluster(): Promise<PrivateCluster> {
  const reason = privateClusterUnavailableReason();
  if (reason) throw new Error(reason);
  const version = pgVersion() as string;
  const name = `imgsync_${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  execFileSync('pg_createcluster', [version, name, '-p', String(port), '--start', '--', '--auth=trust', '--no-sync'], {
    stdio: 'pipe',
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const cluster: PrivateCluster = {
    version,
    name,
    port,
    url,
    start: () => ctl(version, name, 'start'),
    stop: () => ctl(version, name, 'stop'),
    restart: () => {
      const t0 = Date.now();
      ctl(version, name, 'restart');
      return Date.now() - t0;
    },
    dropConnections: async () => {
      const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          'select count(pg_terminate_backend(pid)) as n from pg_stat_activity where pid <> pg_backend_pid() and backend_type = $1',
          ['client backend'],
        );
        return Number(rows[0]?.n ?? 0);
      } finally {
        await client.end();
      }
    },
    drop: () => {
      spawnSync('pg_dropcluster', ['--stop', version, name], { stdio: 'pipe' });
    },
  };
  return cluster;
}
