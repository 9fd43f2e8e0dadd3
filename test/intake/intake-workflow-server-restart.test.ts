/**
 * The Temporal server restarting under a running intake: a private dev server (its own SQLite
 * file) is stopped while files are being delivered, and started again on the same port and file.
 * While it is down a submission is answered `unavailable` and takes nothing; afterwards the
 * intake goes on, every accepted file is delivered once, and the invariant holds.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { fixedTargets } from '../../src/config/targets';
import { checkBatchConsistency } from '../../src/consistency/invariant';
import { startSimulator } from '../../src/devtools/simulator/simulator';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { createIntakeBackend } from '../../src/intake/temporal-backend';
import { openLedger, type Ledger } from '../../src/ledger';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { scanDirectory } from '../../src/source/scan';
import { freePort, startDevServer, type RunningDevServer } from '../../src/temporal/dev-server';
import { cliEnv, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { waitFor } from '../helpers/wait';
import { submission } from './intake-backend-helpers';

const TOKEN = 'intake-restart-token-7c21';

describe('the Temporal server restarting under an intake', () => {
  let server: RunningDevServer | undefined;
  let ledger: Ledger | undefined;
  let sim: Awaited<ReturnType<typeof startSimulator>> | undefined;
  const connections: Connection[] = [];

  afterAll(async () => {
    for (const c of connections) await c.close().catch(() => undefined);
    await stopAllClis();
    await server?.stop();
    await sim?.close();
    await ledger?.close();
  });

  it('loses nothing accepted, and answers unavailable while the server is down', async () => {
    const workDir = await tempDir('intake-restart');
    const dbFile = path.join(workDir, 'temporal.db');
    const port = await freePort();
    const start = () => startDevServer({ dbFile, port, uiPort: null, logLevel: 'error' });
    server = await start();
    sim = await startSimulator({ dataDir: path.join(workDir, 'rs'), token: TOKEN, port: 0, latencyMs: 150 });
    const ledgerUrl = `sqlite:${path.join(workDir, 'ledger.db')}`;
    ledger = await openLedger(ledgerUrl);
    const taskQueue = `intake-restart-${randomUUID()}`;
    const worker = spawnCli(['worker'], {
      env: cliEnv(await tempDir('intake-restart-home'), {
        TEMPORAL_ADDRESS: server.address,
        IMAGE_SYNC_TASK_QUEUE: taskQueue,
        RECORDING_SYSTEM_URL: sim.url,
        RECORDING_SYSTEM_TOKEN: TOKEN,
        IMAGE_SYNC_LEDGER_URL: ledgerUrl,
        IMAGE_SYNC_LOG_LEVEL: 'ERROR',
      }),
    });
    await worker.waitForStdout(/Worker polling/, 120_000);

    const srcDir = path.join(workDir, 'src');
    await generateBlobFiles(srcDir, { count: 30, size: 2048, filesPerOrder: 30 });
    const { items: scanned } = await scanDirectory(srcDir);
    const items = scanned.map((i) => ({ ...i, orderId: 'ord-t' }));
    const backendOn = async (submitTimeoutMs: number) => {
      const connection = await Connection.connect({ address: server!.address });
      connections.push(connection);
      const backend = createIntakeBackend({
        client: new Client({ connection }),
        ledger: ledger!,
        taskQueue,
        submitTimeoutMs,
        policy: { maxConcurrency: 4, resendBackoffMs: 200, probeIntervalMs: 1000 },
      });
      return backend;
    };
    const before = await backendOn(60_000);
    expect(await before.submit(submission('ord-t', items.slice(0, 20)))).toMatchObject({ kind: 'accepted' });
    const recorded = async () =>
      (await ledger!.latestInteractions('intake-default')).filter((r) => r.status === 'RECORDED').length;
    await waitFor('five files recorded', async () => (await recorded()) >= 5, 120_000);

    await server.stop();
    const late = submission('ord-t', items.slice(20));
    const whileDown = await createIntakeBackend({
      client: new Client({ connection: connections[0]! }),
      ledger,
      taskQueue,
      submitTimeoutMs: 3_000,
    }).submit(late);
    expect(whileDown.kind).toBe('unavailable');
    expect(worker.running).toBe(true);
    server = await start();

    // The platform retries the refused submission with the same key once the server is back.
    const after = await backendOn(60_000);
    expect(await after.submit(late)).toMatchObject({ kind: 'accepted', replayed: false });
    await waitFor('all thirty files recorded', async () => (await recorded()) === 30, 180_000);
    const status = await after.orderStatus('ord-t');
    expect(status?.files.filter((f) => f.state === 'RECORDED')).toHaveLength(30);

    const targets = fixedTargets(
      new Map([['default', new HttpRecordingSystem({ baseUrl: sim.url, token: TOKEN, requestTimeoutMs: 10_000 })]]),
    );
    const report = await checkBatchConsistency({ ledger, targets, batchId: 'intake-default', maxResends: 3 });
    expect(report.files).toBe(30);
    expect(report.drifts).toEqual([]);
    for (const [file, u] of sim.uploadsByFile()) {
      expect(u.senders, `${file}: interactions that uploaded it`).toBe(1);
      expect(u.stored, `${file}: copies stored`).toBe(1);
    }
    worker.signal('SIGTERM');
    expect((await worker.exit(60_000)).code).toBe(0);
  }, 420_000);
});
