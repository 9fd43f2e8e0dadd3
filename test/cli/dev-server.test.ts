/**
 * `image-sync dev-server`: Temporal's dev server on the given ports with a persistent SQLite
 * file, image-sync's search attributes registered, the Web UI served, a clean stop on SIGTERM
 * and SIGINT, and workflows that survive a restart on the same file.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/temporal/dev-server';
import {
  cliEnv,
  PROJECT_ROOT,
  processExists,
  runProgram,
  spawnCli,
  stopAllClis,
  tempDir,
  type CliProcess,
} from './helpers';

const SEARCH_ATTRIBUTES = (
  JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'temporal-config', 'search-attributes.json'), 'utf8')) as {
    searchAttributes: Record<string, string>;
  }
).searchAttributes;

interface Started {
  proc: CliProcess;
  address: string;
  uiUrl: string;
  serverPid: number;
}

describe('image-sync dev-server', () => {
  let dir: string;
  let dbFile: string;
  let port: number;
  let uiPort: number;
  const cliPath = inject('temporalCliPath');

  beforeAll(async () => {
    dir = await tempDir('dev-server');
    dbFile = path.join(dir, 'state', 'temporal.db');
    port = await freePort();
    uiPort = await freePort();
  });
  afterEach(async () => {
    await stopAllClis();
  });
  afterAll(async () => {
    await stopAllClis();
    await rm(dir, { recursive: true, force: true });
  });

  async function startCommand(): Promise<Started> {
    const proc = spawnCli(['dev-server', '--port', String(port), '--ui-port', String(uiPort), '--db-file', dbFile], {
      env: cliEnv(dir, { TEMPORAL_CLI_PATH: cliPath }),
      cwd: dir,
    });
    await proc.waitForStdout(/Press Ctrl-C to stop\./, 90_000);
    const address = proc.stdout.match(/gRPC address: (\S+)/)?.[1];
    const uiUrl = proc.stdout.match(/Web UI: +(\S+)/)?.[1];
    const serverPid = Number(proc.stdout.match(/\(pid (\d+),/)?.[1]);
    expect(address).toBe(`127.0.0.1:${port}`);
    expect(uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
    expect(Number.isInteger(serverPid) && serverPid > 0).toBe(true);
    return { proc, address: address!, uiUrl: uiUrl!, serverPid };
  }

  async function withClient<T>(address: string, fn: (client: Client) => Promise<T>): Promise<T> {
    const connection = await Connection.connect({ address });
    try {
      return await fn(new Client({ connection }));
    } finally {
      await connection.close();
    }
  }

  async function uiAnswers(url: string): Promise<number> {
    const deadline = Date.now() + 20_000;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        return res.status;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new Error(`the Web UI at ${url} did not answer: ${String(last)}`);
  }

  const workflowId = `cli-dev-server-${randomUUID()}`;

  it('serves gRPC with the search attributes and the Web UI, keeps a running workflow across a SIGTERM restart, and stops on SIGINT', async () => {
    // First start: the server answers, knows the search attributes, and the UI is up.
    const first = await startCommand();
    expect(first.proc.stdout).toContain(path.resolve(dbFile));

    const health = await runProgram(cliPath, ['operator', 'cluster', 'health', '--address', first.address], {
      env: cliEnv(dir),
    });
    expect(health.code).toBe(0);
    expect(health.stdout).toMatch(/\bSERVING\b/);

    const list = await runProgram(cliPath, ['operator', 'search-attribute', 'list', '--address', first.address], {
      env: cliEnv(dir),
    });
    expect(list.code).toBe(0);
    const listed = new Map(
      list.stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((cols) => cols.length === 2)
        .map(([name, type]) => [name!, type!]),
    );
    expect(Object.keys(SEARCH_ATTRIBUTES)).toHaveLength(7);
    for (const [key, type] of Object.entries(SEARCH_ATTRIBUTES)) expect(listed.get(key), key).toBe(type);

    expect(await uiAnswers(first.uiUrl)).toBe(200);

    // A workflow no worker polls stays RUNNING.
    await withClient(first.address, async (client) => {
      await client.workflow.start('syncBatch', {
        workflowId,
        taskQueue: `nobody-polls-${randomUUID()}`,
        args: [{ batchId: 'dev-server-test', manifestPath: '/nonexistent', total: 0, policy: {} }],
      });
      expect((await client.workflow.getHandle(workflowId).describe()).status.name).toBe('RUNNING');
    });

    // SIGTERM: a clean stop that takes the Temporal server with it.
    first.proc.signal('SIGTERM');
    const stopped = await first.proc.exit(30_000);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain('Stopped.');
    expect(processExists(first.serverPid)).toBe(false);

    // Second start on the same file and ports: the workflow is still there, still running.
    const second = await startCommand();
    expect(second.serverPid).not.toBe(first.serverPid);
    await withClient(second.address, async (client) => {
      const handle = client.workflow.getHandle(workflowId);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      await handle.terminate('dev-server test done');
      expect((await handle.describe()).status.name).toBe('TERMINATED');
    });

    // SIGINT (Ctrl-C) stops it cleanly too.
    second.proc.signal('SIGINT');
    const interrupted = await second.proc.exit(30_000);
    expect(interrupted.code).toBe(0);
    expect(interrupted.stdout).toContain('Stopped.');
    expect(interrupted.stderr).not.toMatch(/image-sync: /);
    expect(processExists(second.serverPid)).toBe(false);
  }, 240_000);
});
