/**
 * The Temporal server restarting under a running batch: a private dev server (its own SQLite
 * file, never the run's shared server) is stopped mid-batch and started again on the same port
 * and file. The worker process keeps running, and the batch finishes with the invariant holding.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { startBatch } from '../../src/batch/start';
import { fixedTargets } from '../../src/config/targets';
import { checkBatchConsistency } from '../../src/consistency/invariant';
import { openLedger, type Ledger } from '../../src/ledger';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { startSimulator } from '../../src/devtools/simulator/simulator';
import type { BatchResult } from '../../src/shared';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { freePort, startDevServer, type RunningDevServer } from '../../src/temporal/dev-server';
import { cliEnv, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { waitFor } from '../helpers/wait';

const TOKEN = 'temporal-restart-token-51a0';

describe('the Temporal server restarting mid-batch', () => {
  let server: RunningDevServer | undefined;
  let ledger: Ledger | undefined;
  let sim: Awaited<ReturnType<typeof startSimulator>> | undefined;

  afterAll(async () => {
    await stopAllClis();
    await server?.stop();
    await sim?.close();
    await ledger?.close();
  });

  it('the worker rides it out and the batch ends consistent', async () => {
    const workDir = await tempDir('temporal-restart');
    const dbFile = path.join(workDir, 'temporal.db');
    const port = await freePort();
    const start = () => startDevServer({ dbFile, port, uiPort: null, logLevel: 'error' });
    server = await start();
    sim = await startSimulator({ dataDir: path.join(workDir, 'rs'), token: TOKEN, port: 0, latencyMs: 100 });
    const ledgerUrl = `sqlite:${path.join(workDir, 'ledger.db')}`;
    ledger = await openLedger(ledgerUrl);
    const taskQueue = `restart-${randomUUID()}`;
    const worker = spawnCli(['worker'], {
      env: cliEnv(await tempDir('temporal-restart-home'), {
        TEMPORAL_ADDRESS: server.address,
        IMAGE_SYNC_TASK_QUEUE: taskQueue,
        RECORDING_SYSTEM_URL: sim.url,
        RECORDING_SYSTEM_TOKEN: TOKEN,
        IMAGE_SYNC_LEDGER_URL: ledgerUrl,
        IMAGE_SYNC_LOG_LEVEL: 'ERROR',
      }),
    });
    await worker.waitForStdout(/Worker polling/, 60_000);

    const files = 60;
    const srcDir = path.join(workDir, 'src');
    await generateBlobFiles(srcDir, { count: files, size: 2048, filesPerOrder: 10 });
    const { items } = await scanDirectory(srcDir);
    const batchId = `restart-${randomUUID().slice(0, 8)}`;
    let connection = await Connection.connect({ address: server.address });
    const t0 = Date.now();
    await startBatch(new Client({ connection }), items, {
      taskQueue,
      batchId,
      stateDir: workDir,
      policy: { maxConcurrency: 5, resendBackoffMs: 200, probeIntervalMs: 1000 },
    });
    const recorded = async () => (await ledger!.batchCounts(batchId)).files.RECORDED ?? 0;
    await waitFor('ten files recorded', async () => (await recorded()) >= 10, 120_000);
    await connection.close();

    const tStop = Date.now();
    await server.stop();
    const downAt = tStop - t0;
    await new Promise((r) => setTimeout(r, 5_000));
    expect(worker.running).toBe(true);
    server = await start();
    const restartMs = Date.now() - tStop;

    connection = await Connection.connect({ address: server.address });
    try {
      const handle = new Client({ connection }).workflow.getHandle(`sync-batch/${batchId}`);
      const result = (await handle.result()) as BatchResult;
      console.info(
        `temporal restart timings: ${JSON.stringify({ downAtMs: downAt, downForMs: restartMs, batchEndAtMs: Date.now() - t0 })}`,
      );
      expect(result.state).toBe('COMPLETED');
      expect(result.recorded).toBe(files);
    } finally {
      await connection.close();
    }
    expect(worker.running).toBe(true);
    const targets = fixedTargets(
      new Map([['default', new HttpRecordingSystem({ baseUrl: sim.url, token: TOKEN, requestTimeoutMs: 10_000 })]]),
    );
    const report = await checkBatchConsistency({ ledger, targets, batchId, maxResends: 3 });
    expect(report.files).toBe(files);
    expect(report.drifts).toEqual([]);
    worker.signal('SIGTERM');
    expect((await worker.exit(60_000)).code).toBe(0);
  }, 300_000);
});
