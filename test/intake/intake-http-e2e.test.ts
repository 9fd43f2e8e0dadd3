/**
 * The intake end to end, over HTTP with a real client: the intake server in front of the real
 * backend (Update-with-Start into the intake workflow), the dev server, a worker, the ledger and
 * the simulator. Submitted files end RECORDED and are uploaded once, whatever the platform
 * repeats; refused requests start nothing, and a full intake answers 429. `image-sync
 * intake-server` and `image-sync submit` do the same as processes: a server killed with SIGKILL
 * after its 202 loses nothing, and a server stops gracefully on SIGTERM. A server without a
 * token or a source root refuses to start.
 */
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, describe, expect } from 'vitest';
import { createCodecAuthenticator } from '../../src/codec/auth';
import { makeTestPki } from '../../src/devtools/destinations/pki';
import type { IntakeOrderStatus } from '../../src/intake/backend';
import { resolveSourceRoots } from '../../src/intake/http/confine';
import { startIntakeServer } from '../../src/intake/http/server';
import { intakeBatchId, intakeWorkflowIdOf } from '../../src/intake/workflow-api';
import type { SyncItem } from '../../src/shared';
import { cliEnv, runCli, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { it } from '../helpers/fixture';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn } from './intake-backend-helpers';

const TOKEN = 'intake-e2e-token-0123456789abcdef';

async function post(base: string, orderId: string, key: string, files: unknown[]) {
  const res = await fetch(`${base}/v1/orders/${orderId}/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ files }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function orderStatus(base: string, orderId: string): Promise<IntakeOrderStatus | undefined> {
  const res = await fetch(`${base}/v1/orders/${orderId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status === 404) {
    await res.text();
    return undefined;
  }
  expect(res.status).toBe(200);
  return (await res.json()) as IntakeOrderStatus;
}

function allRecorded(base: string, orderId: string, count: number) {
  return waitFor(
    `${count} files of ${orderId} RECORDED, read over HTTP`,
    async () => {
      const s = await orderStatus(base, orderId);
      return s && s.files.length === count && s.files.every((f) => f.state === 'RECORDED') ? s : undefined;
    },
    180_000,
  );
}

/** The items as submitted under `orderId`, and their request form (paths relative to the root). */
function order(orderId: string, items: SyncItem[], root: string) {
  const asItems = items.map((i) => ({ ...i, orderId }));
  const files = items.map((i) => ({ fileName: i.fileName, path: path.relative(root, i.sourcePath) }));
  return { items: asItems, files };
}

describe('intake over HTTP, end to end', () => {
  afterAll(async () => {
    await stopAllClis();
  });

  it('delivers submitted files once: retried and concurrent submissions with one key upload nothing twice', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { latencyMs: 50 } });
    const { backend, batchId } = intakeOn(h);
    const made = await h.makeFiles(8, 4096, 8);
    const root = path.dirname(path.dirname(made[0]!.sourcePath));
    const server = await startIntakeServer({
      backend,
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
      roots: await resolveSourceRoots([root]),
      port: 0,
      targets: { defaultTarget: 'default', names: ['default'] },
    });
    try {
      const a = order('ord-http-a', made.slice(0, 4), root);
      const b = order('ord-http-b', made.slice(4), root);
      const first = await post(server.url, 'ord-http-a', 'key-a', a.files);
      expect(first).toMatchObject({
        status: 202,
        body: { replayed: false, files: 4, statusUrl: '/v1/orders/ord-http-a' },
      });
      // The platform retries (a lost answer): the same key and body is a replay.
      const again = await post(server.url, 'ord-http-a', 'key-a', [...a.files].reverse());
      expect(again).toMatchObject({ status: 202, body: { replayed: true } });
      // The same key with another body is refused, and starts nothing.
      const other = await post(server.url, 'ord-http-a', 'key-a', a.files.slice(0, 1));
      expect(other.status).toBe(422);
      // Three requests with one key at once: one takes it; the others are told to wait or replay it.
      const racing = await Promise.all([1, 2, 3].map(() => post(server.url, 'ord-http-b', 'key-b', b.files)));
      expect(racing.filter((r) => r.status === 202 && r.body.replayed === false)).toHaveLength(1);
      for (const r of racing) expect([202, 409]).toContain(r.status);

      await allRecorded(server.url, 'ord-http-a', 4);
      await allRecorded(server.url, 'ord-http-b', 4);
      const one = await fetch(`${server.url}/v1/orders/ord-http-a/files/${a.files[0]!.fileName}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(await one.json()).toMatchObject({ fileName: a.files[0]!.fileName, state: 'RECORDED', resends: 0 });
      const uploads = h.simulator.uploadsByFile();
      for (const item of [...a.items, ...b.items])
        expect(uploads.get(`${item.orderId}/${item.fileName}`)?.received, item.fileName).toBe(1);
      await expectOneTruth(h, [batchId], [...a.items, ...b.items], { maxResends: MAX_RESENDS });
    } finally {
      await server.stop(5_000);
      await backend.close();
    }
  }, 300_000);

  it("refused requests start nothing; past the intake's bound the answer is 429 with Retry-After", async ({
    harness,
  }) => {
    const h = await harness();
    const { backend, batchId } = intakeOn(h, { maxWaiting: 2, retryAfterSeconds: 3 });
    const made = await h.makeFiles(3, 1024, 3);
    const root = path.dirname(path.dirname(made[0]!.sourcePath));
    const server = await startIntakeServer({
      backend,
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
      roots: await resolveSourceRoots([root]),
      port: 0,
      maxBodyBytes: 4_096,
      targets: { defaultTarget: 'default', names: ['default'] },
    });
    try {
      const { files } = order('ord-full', made, root);
      const refusals = [
        await fetch(`${server.url}/v1/orders/ord-full/files`, {
          method: 'POST',
          headers: {
            authorization: 'Bearer not-a-known-token-000',
            'idempotency-key': 'k',
            'content-type': 'application/json',
          },
          body: JSON.stringify({ files }),
        }),
        await fetch(`${server.url}/v1/orders/ord-full/files`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': 'k', 'content-type': 'application/json' },
          body: JSON.stringify({ files: [{ fileName: 'x', path: '/etc/hostname' }] }),
        }),
        await fetch(`${server.url}/v1/orders/ord-full/files`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': 'k', 'content-type': 'application/json' },
          body: JSON.stringify({ files: files.map((f) => ({ ...f, contentType: `image/${'x'.repeat(2_000)}` })) }),
        }),
      ];
      expect(refusals.map((r) => r.status)).toEqual([401, 400, 413]);
      for (const r of refusals) await r.text();
      // Nothing was started: no intake workflow, no ledger row.
      await expect(h.client.workflow.getHandle(intakeWorkflowIdOf(batchId)).describe()).rejects.toThrow();
      expect(await h.ledger.listInteractions(batchId)).toEqual([]);

      // Three files never fit an intake holding two: 429, with Retry-After, and the key stays free.
      const full = await post(server.url, 'ord-full', 'k-full', files);
      expect(full.status).toBe(429);
      expect(full.body).toMatchObject({ error: { code: 'saturated', retryAfterSeconds: 3 } });
      const fits = await post(server.url, 'ord-full', 'k-fits', files.slice(0, 2));
      expect(fits.status).toBe(202);
      const status = await allRecorded(server.url, 'ord-full', 2);
      expect(status.files.map((f) => f.fileName).sort()).toEqual(
        files
          .slice(0, 2)
          .map((f) => f.fileName)
          .sort(),
      );
    } finally {
      await server.stop(5_000);
      await backend.close();
    }
  }, 300_000);

  it('image-sync intake-server and image-sync submit: files RECORDED through a SIGKILL of the server, the key again delivers nothing new, SIGTERM stops it', async ({
    harness,
  }) => {
    const h = await harness();
    const made = await h.makeFiles(3, 2048, 3);
    const root = path.dirname(path.dirname(made[0]!.sourcePath));
    const home = await tempDir('intake-e2e');
    const env = cliEnv(home, {
      ...h.env,
      IMAGE_SYNC_INTAKE_TOKENS: TOKEN,
      IMAGE_SYNC_INTAKE_ROOTS: root,
      IMAGE_SYNC_LOG_FORMAT: 'json',
    });
    const listening = /Intake server listening on (http:\/\/\S+)/;
    const killed = spawnCli(['intake-server', '--port', '0'], { env });
    let server = killed;
    try {
      const [, firstUrl] = await killed.waitForStdout(listening, 90_000);
      const { items, files } = order('ord-cli', made, root);
      const args = [
        'submit',
        'ord-cli',
        ...files.flatMap((f) => ['--file', `${f.fileName}=${f.path}`]),
        '--key',
        'cli-key',
        '--json',
      ];
      const submitEnv = (url: string) => cliEnv(home, { IMAGE_SYNC_INTAKE_URL: url, IMAGE_SYNC_INTAKE_TOKEN: TOKEN });
      const first = await runCli(args, { env: submitEnv(firstUrl!) });
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({
        orderId: 'ord-cli',
        files: 3,
        replayed: false,
        idempotencyKey: 'cli-key',
      });
      // Its logs name requests, never the token.
      expect(killed.stderr).toContain('intake request');
      expect(killed.stderr + killed.stdout).not.toContain(TOKEN);

      // The server dies at once after the 202: what it accepted is durable, and a new server serves it.
      killed.signal('SIGKILL');
      expect((await killed.exit(30_000)).signal).toBe('SIGKILL');
      server = spawnCli(['intake-server', '--port', '0'], { env });
      const [, url] = await server.waitForStdout(listening, 90_000);
      await allRecorded(url!, 'ord-cli', 3);
      const second = await runCli(args, { env: submitEnv(url!) });
      expect(second.code, second.stderr).toBe(0);
      expect(JSON.parse(second.stdout)).toMatchObject({ replayed: true });
      const uploads = h.simulator.uploadsByFile();
      for (const item of items) expect(uploads.get(`ord-cli/${item.fileName}`)?.received).toBe(1);
      await expectOneTruth(h, [intakeBatchId('default')], items, { maxResends: 3 });

      server.signal('SIGTERM');
      const ended = await server.exit(60_000);
      expect(ended.code, ended.stderr).toBe(0);
      expect(ended.stdout).toContain('Intake server stopped');
    } finally {
      await killed.stop();
      await server.stop();
      // The intake of this test's task queue is not left running for anything after it.
      await h.client.workflow
        .getHandle(intakeWorkflowIdOf(intakeBatchId('default')))
        .terminate('test over')
        .catch(() => undefined);
    }
  }, 300_000);

  it('intake-server over mutual TLS starts while Temporal is away, and its /health says so', async () => {
    const home = await tempDir('intake-tls');
    const pki = makeTestPki(path.join(home, 'pki'));
    const env = cliEnv(home, {
      IMAGE_SYNC_INTAKE_TOKENS: TOKEN,
      IMAGE_SYNC_INTAKE_ROOTS: home,
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      IMAGE_SYNC_LEDGER_URL: `sqlite:${path.join(home, 'ledger.db')}`,
    });
    const tlsArgs = ['--tls-cert', pki.serverCertFile, '--tls-key', pki.serverKeyFile];
    const server = spawnCli(['intake-server', '--port', '0', ...tlsArgs, '--client-ca', pki.caFile], { env });
    const withCert = new Agent({ connect: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    const withoutCert = new Agent({ connect: { ca: pki.ca } });
    try {
      const [, url] = await server.waitForStdout(
        /Intake server listening on (https:\/\/\S+) .*client certificates required/,
        90_000,
      );
      const health = await fetch(`${url}/health`, { dispatcher: withCert });
      expect(health.status).toBe(503);
      expect(((await health.json()) as { status: string }).status).toMatch(/Temporal/);
      await expect(fetch(`${url}/health`, { dispatcher: withoutCert })).rejects.toThrow();
      server.signal('SIGTERM');
      const ended = await server.exit(60_000);
      expect(ended.code, ended.stderr).toBe(0);
    } finally {
      await server.stop();
      await withCert.close();
      await withoutCert.close();
    }
    // TLS options that do not go together are refused before anything starts.
    const noKey = await runCli(['intake-server', '--port', '0', '--tls-cert', pki.serverCertFile], { env });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/go together/);
    const caAlone = await runCli(['intake-server', '--port', '0', '--client-ca', pki.caFile], { env });
    expect(caAlone.code).toBe(2);
    expect(caAlone.stderr).toMatch(/needs --tls-cert/);
  }, 180_000);

  it('intake-server refuses to start without a token or a source root (exit 2)', async () => {
    const home = await tempDir('intake-refuse');
    const noToken = await runCli(['intake-server', '--port', '0'], {
      env: cliEnv(home, { IMAGE_SYNC_INTAKE_ROOTS: home }),
    });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no intake token/);
    const noRoot = await runCli(['intake-server', '--port', '0'], {
      env: cliEnv(home, { IMAGE_SYNC_INTAKE_TOKENS: TOKEN }),
    });
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toMatch(/no source root/);
    const missingRoot = await runCli(['intake-server', '--port', '0'], {
      env: cliEnv(home, { IMAGE_SYNC_INTAKE_TOKENS: TOKEN, IMAGE_SYNC_INTAKE_ROOTS: path.join(home, 'absent') }),
    });
    expect(missingRoot.code).toBe(2);
    expect(missingRoot.stderr).toMatch(/source root .*absent does not exist/);
    expect(missingRoot.stderr).not.toContain(TOKEN);
  }, 120_000);
});
