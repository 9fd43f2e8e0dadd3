/**
 * An intake server whose SQLite ledger cannot fsync its WAL (the disk fails under it) answers the
 * submission it could not make durable with 503, then stops, exit 1, saying why; a server started
 * again takes the submission (under its key once the key's lease has run out), and its files end
 * RECORDED.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fetch } from 'undici';
import { afterAll, describe, expect } from 'vitest';
import type { IntakeOrderStatus } from '../../src/intake/backend';
import { intakeBatchId, intakeWorkflowIdOf } from '../../src/intake/workflow-api';
import { cliEnv, PROJECT_ROOT, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

const TOKEN = 'intake-ledger-lost-token-0123456789';
const FSYNC_FAULT = pathToFileURL(path.join(PROJECT_ROOT, 'test', 'helpers', 'fsync-fault.mjs')).href;
const LISTENING = /Intake server listening on (http:\/\/\S+)/;

describe('an intake server whose ledger is lost', () => {
  afterAll(async () => {
    await stopAllClis();
  });

  it('answers 503, stops with exit 1 saying why, and the next server takes the submission', async ({ harness }) => {
    const h = await harness();
    const made = await h.makeFiles(2, 2048, 2);
    const root = path.dirname(path.dirname(made[0]!.sourcePath));
    const home = await tempDir('intake-ledger-lost');
    const marker = path.join(home, 'fsync-fails');
    const env = cliEnv(home, { ...h.env, IMAGE_SYNC_INTAKE_TOKENS: TOKEN, IMAGE_SYNC_INTAKE_ROOTS: root });
    const body = JSON.stringify({
      files: made.map((i) => ({ fileName: i.fileName, path: path.relative(root, i.sourcePath) })),
    });
    const submit = (base: string, key: string) =>
      fetch(`${base}/v1/orders/ord-lost/files`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'idempotency-key': key,
          'content-type': 'application/json',
        },
        body,
      }).then(async (res) => ({ status: res.status, body: await res.text() }));

    const failing = spawnCli(['intake-server', '--port', '0'], {
      env: { ...env, NODE_OPTIONS: `--import=${FSYNC_FAULT}`, IMAGE_SYNC_TEST_FSYNC_FAILS_WHILE: marker },
    });
    const fresh = { server: failing };
    try {
      const [, firstUrl] = await failing.waitForStdout(LISTENING, 90_000);
      await writeFile(marker, '');
      const refused = await submit(firstUrl!, 'lost-key');
      expect(refused.status, refused.body).toBe(503);
      const ended = await failing.exit(60_000);
      expect(ended.code, ended.stdout + ended.stderr).toBe(1);
      expect(ended.stderr).toMatch(/ledger lost \(SQLite file [^)]*\): fsync of \S+-wal failed: EIO/);
      await rm(marker);

      fresh.server = spawnCli(['intake-server', '--port', '0'], { env });
      const [, url] = await fresh.server.waitForStdout(LISTENING, 90_000);
      // The key's take may have reached the disk: it is free again once its lease has run out.
      const same = await submit(url!, 'lost-key');
      expect([202, 409], same.body).toContain(same.status);
      if (same.status === 409) expect(same.body).toContain('in_progress');
      const taken = same.status === 202 ? same : await submit(url!, 'another-key');
      expect(taken.status, taken.body).toBe(202);
      await waitFor(
        'the order RECORDED, read over HTTP',
        async () => {
          const res = await fetch(`${url}/v1/orders/ord-lost`, { headers: { authorization: `Bearer ${TOKEN}` } });
          if (res.status !== 200) return void (await res.text());
          const status = (await res.json()) as IntakeOrderStatus;
          return status.files.length === made.length && status.files.every((f) => f.state === 'RECORDED')
            ? status
            : undefined;
        },
        180_000,
      );
      fresh.server.signal('SIGTERM');
      expect((await fresh.server.exit(60_000)).code).toBe(0);
    } finally {
      await failing.stop();
      await fresh.server.stop();
      await h.client.workflow
        .getHandle(intakeWorkflowIdOf(intakeBatchId('default')))
        .terminate('test over')
        .catch(() => undefined);
    }
  }, 300_000);
});
