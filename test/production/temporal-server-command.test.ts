/**
 * `image-sync temporal-server --postgres URL`: clear one-line errors for a bad URL, a missing
 * database and an unreachable PostgreSQL; on a real database it sets up Temporal's schemas,
 * serves gRPC with the namespace and image-sync's search attributes and the Web UI, stops
 * cleanly on Ctrl-C and SIGTERM, and a second start on the same database keeps what the first
 * one held.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/temporal/dev-server';
import { ensureServerPart } from '../../src/temporal/server-binary';
import { cliEnv, PROJECT_ROOT, processExists, runCli, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { createDatabase, databaseExists, dropDatabase, pgUrlFor, uniqueDatabaseName } from './helpers';

const SEARCH_ATTRIBUTES = Object.keys(
  (
    JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'temporal-config', 'search-attributes.json'), 'utf8')) as {
      searchAttributes: Record<string, string>;
    }
  ).searchAttributes,
);

describe('image-sync temporal-server', () => {
  let dir: string;
  const database = uniqueDatabaseName('image_sync_cmd');

  beforeAll(async () => {
    await ensureServerPart('server');
    await ensureServerPart('sql-tool');
    await ensureServerPart('ui-server');
    dir = await tempDir('temporal-server');
    await createDatabase(database);
  });
  afterEach(async () => {
    await stopAllClis();
  });
  afterAll(async () => {
    await stopAllClis();
    await dropDatabase(database);
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => cliEnv(dir);

  it('refuses a URL that is not a PostgreSQL URL, as bad input', async () => {
    const r = await runCli(['temporal-server', '--postgres', 'mysql://root@127.0.0.1/x'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('image-sync: --postgres must start with postgres:// or postgresql://, got "mysql://"');
    const noDb = await runCli(['temporal-server', '--postgres', 'postgres://postgres@127.0.0.1:5432'], { env: env() });
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain('--postgres must name a database');
  });

  it('says so when the database is missing, and creates nothing', async () => {
    const missing = uniqueDatabaseName('image_sync_missing');
    const r = await runCli(['temporal-server', '--postgres', pgUrlFor(missing), '--state-dir', path.join(dir, 'm')], {
      env: env(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`PostgreSQL database "${missing}" does not exist`);
    expect(await databaseExists(missing)).toBe(false);
  });

  it('says so when PostgreSQL is not reachable', async () => {
    const port = await freePort();
    const r = await runCli(
      ['temporal-server', '--postgres', `postgres://postgres@127.0.0.1:${port}/temporal`, '--state-dir', dir],
      { env: env() },
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      new RegExp(`^image-sync: PostgreSQL is not reachable at 127\\.0\\.0\\.1:${port}: `),
    );
  });

  it('says so when the frontend port is taken, before touching the database', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const missing = uniqueDatabaseName('image_sync_missing');
      const r = await runCli(['temporal-server', '--postgres', pgUrlFor(missing), '--port', String(port)], {
        env: env(),
      });
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`image-sync: --port ${port} is in use on 127.0.0.1`);
    } finally {
      busy.close();
    }
  });

  it('serves Temporal on PostgreSQL with the search attributes and the Web UI; stops cleanly; restarts on the same data', async () => {
    const port = await freePort();
    const uiPort = await freePort();
    const args = [
      'temporal-server',
      '--postgres',
      pgUrlFor(database),
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
      '--state-dir',
      path.join(dir, 'state'),
    ];
    const first = spawnCli(args, { env: env() });
    await first.waitForStdout(/Press Ctrl-C to stop\./, 120_000);
    const serverPid = Number(first.stdout.match(/running on PostgreSQL \(pid (\d+)\)/)?.[1]);
    expect(first.stdout).toContain(`gRPC address: 127.0.0.1:${port}`);
    expect(first.stdout).toContain(`Web UI:       http://127.0.0.1:${uiPort}`);

    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    const workflowId = `parked-${randomUUID()}`;
    try {
      const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(listed.customAttributes ?? {}).sort()).toEqual([...SEARCH_ATTRIBUTES].sort());
      // The Web UI server reads the same server.
      const ui = await fetch(`http://127.0.0.1:${uiPort}/api/v1/namespaces/default/search-attributes`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toContain('SyncBatchId');
      // A workflow no worker serves stays open across the restart below.
      await new Client({ connection }).workflow.start('noWorkerServesThis', {
        taskQueue: `nobody-${randomUUID()}`,
        workflowId,
      });
    } finally {
      await connection.close();
    }

    first.signal('SIGINT');
    const r1 = await first.exit(60_000);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toContain('Stopped.');
    expect(processExists(serverPid)).toBe(false);

    // Again on the same database: the schemas are there already, the workflow too.
    const second = spawnCli(args, { env: env() });
    await second.waitForStdout(/Press Ctrl-C to stop\./, 120_000);
    const again = await Connection.connect({ address: `127.0.0.1:${port}` });
    try {
      const described = await new Client({ connection: again }).workflow.getHandle(workflowId).describe();
      expect(described.status.name).toBe('RUNNING');
    } finally {
      await again.close();
    }
    second.signal('SIGTERM');
    const r2 = await second.exit(60_000);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toContain('Stopped.');
  }, 240_000);
});
