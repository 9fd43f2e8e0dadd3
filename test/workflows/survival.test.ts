/**
 * A batch that survives its surroundings: a few hundred files to a faulty recording system,
 * the ledger on PostgreSQL, and during the batch the database restarted, the simulator process
 * killed and started again on the same data folder, and the worker process killed (SIGKILL)
 * and replaced. The worker and the simulator run as separate processes, as in production;
 * PostgreSQL is a private cluster made for the test (never the machine's main one). At the end
 * the consistency invariant holds for every file.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBatch } from '../../src/batch/start';
import { fixedTargets } from '../../src/config/targets';
import { checkBatchConsistency } from '../../src/consistency/invariant';
import { openLedger, type Ledger } from '../../src/ledger';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { cliEnv, spawnCli, stopAllClis, tempDir, type CliProcess } from '../cli/helpers';
import {
  createPrivateCluster,
  freePort,
  privateClusterUnavailableReason,
  type PrivateCluster,
} from '../helpers/pg-cluster';
import { waitFor } from '../helpers/wait';

const TOKEN = 'survival-token-7c1e';
const FILES = 300;
const MAX_RESENDS = 3;
const OUTAGE_MS = 60_000;
const reason = privateClusterUnavailableReason();

describe.skipIf(reason !== undefined)(
  `a batch on PostgreSQL surviving its surroundings${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    let cluster: PrivateCluster;
    let ledger: Ledger;
    let ledgerUrl: string;
    let connection: Connection;
    let client: Client;
    let workDir: string;
    let home: string;
    let simPort: number;
    const taskQueue = `survival-${randomUUID()}`;

    beforeAll(async () => {
      cluster = await createPrivateCluster();
      ledgerUrl = `${cluster.url}?schema=survival_${randomUUID().slice(0, 8)}`;
      ledger = await openLedger(ledgerUrl);
      connection = await Connection.connect({ address: inject('temporalAddress') });
      client = new Client({ connection });
      workDir = await tempDir('survival');
      home = await tempDir('survival-home');
      simPort = await freePort();
    });

    afterAll(async () => {
      await stopAllClis();
      await ledger?.close().catch(() => undefined);
      await connection?.close();
      cluster?.drop();
    });

    const simulatorArgs = (dataDir: string) => [
      'recording-system',
      '--port',
      String(simPort),
      '--data-dir',
      path.join(workDir, dataDir),
      '--token',
      TOKEN,
      '--fail-rate',
      '0.05',
      '--drop-rate',
      '0.02',
      '--corrupt-rate',
      '0.02',
      '--reject-rate',
      '0.01',
      '--latency-ms',
      '20',
    ];
    const env = () =>
      cliEnv(home, {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        IMAGE_SYNC_TASK_QUEUE: taskQueue,
        RECORDING_SYSTEM_URL: `http://127.0.0.1:${simPort}`,
        RECORDING_SYSTEM_TOKEN: TOKEN,
        IMAGE_SYNC_LEDGER_URL: ledgerUrl,
        IMAGE_SYNC_LOG_LEVEL: 'ERROR',
      });
    /** A simulator process on `simPort`, keeping its files in workDir/<dataDir>. */
    const startSimulator = async (dataDir: string): Promise<CliProcess> => {
      const sim = spawnCli(simulatorArgs(dataDir), { env: env() });
      await sim.waitForStdout(/listening on/, 60_000);
      return sim;
    };
    const startWorker = async (): Promise<CliProcess> => {
      const worker = spawnCli(['worker'], { env: env() });
      await worker.waitForStdout(/Worker polling/, 60_000);
      return worker;
    };

    it(`${FILES} files with faults survive a PostgreSQL restart, a simulator kill and a worker SIGKILL`, async () => {
      const timings: Record<string, number> = {};
      let sim = await startSimulator('recording-system');
      let worker = await startWorker();
      const srcDir = path.join(workDir, 'src');
      await generateBlobFiles(srcDir, { count: FILES, size: 4096, filesPerOrder: 10 });
      const scanned = await scanDirectory(srcDir);
      expect(scanned.errors).toEqual([]);
      const batchId = `survival-${randomUUID().slice(0, 8)}`;
      const t0 = Date.now();
      const { handle } = await startBatch(client, scanned.items, {
        taskQueue,
        batchId,
        stateDir: workDir,
        policy: { maxConcurrency: 40, maxResends: MAX_RESENDS, resendBackoffMs: 200, probeIntervalMs: 1000 },
      });
      const settled = async () => {
        const { files } = await ledger.batchCounts(batchId);
        return (['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'CANCELLED'] as const).reduce(
          (n, status) => n + (files[status] ?? 0),
          0,
        );
      };
      const settledAtLeast = (n: number) => waitFor(`${n} files settled`, async () => (await settled()) >= n, 120_000);

      // 1. PostgreSQL restarts under the worker.
      await settledAtLeast(FILES * 0.15);
      timings.postgresRestartMs = cluster.restart();
      timings.postgresRestartAtMs = Date.now() - t0;
      const afterRestart = await settled();
      await settledAtLeast(afterRestart + 10); // progress resumes on the same worker
      expect(worker.running).toBe(true);

      // 2. The simulator process is killed and started again on the same data folder.
      await settledAtLeast(FILES * 0.35);
      const tKill = Date.now();
      sim.signal('SIGKILL');
      await sim.exit(10_000);
      sim = await startSimulator('recording-system'); // the same data folder
      timings.simulatorRestartMs = Date.now() - tKill;
      timings.simulatorRestartAtMs = tKill - t0;
      expect(worker.running).toBe(true);

      // 3. The worker process is killed without warning and replaced.
      await settledAtLeast(FILES * 0.55);
      const tWorker = Date.now();
      expect(worker.running).toBe(true); // the first worker lived through both restarts
      worker.signal('SIGKILL');
      const killed = await worker.exit(10_000);
      expect(killed.signal).toBe('SIGKILL');
      worker = await startWorker();
      timings.workerReplaceMs = Date.now() - tWorker;
      timings.workerReplaceAtMs = tWorker - t0;

      const result = await handle.result();
      timings.batchMs = Date.now() - t0;
      console.info(
        `survival timings: ${JSON.stringify(timings)}; result ${JSON.stringify({ ...result, failures: result.failures.length })}`,
      );
      expect(result.total).toBe(FILES);
      expect(['COMPLETED', 'COMPLETED_WITH_FAILURES']).toContain(result.state);
      expect(result.recorded + result.rolledBack + result.rollbackFailed + result.cancelled).toBe(FILES);
      expect(result.recorded).toBeGreaterThan(FILES * 0.9);

      // The invariant, file by file, against what the (restarted) simulator holds.
      const targets = fixedTargets(
        new Map([
          [
            'default',
            new HttpRecordingSystem({ baseUrl: `http://127.0.0.1:${simPort}`, token: TOKEN, requestTimeoutMs: 10_000 }),
          ],
        ]),
      );
      const report = await checkBatchConsistency({ ledger, targets, batchId, maxResends: MAX_RESENDS });
      expect(report.files).toBe(FILES);
      expect(report.drifts).toEqual([]);
      const latest = await ledger.latestInteractions(batchId);
      expect(latest).toHaveLength(FILES);
      expect(latest.filter((r) => r.status === 'RECORDED')).toHaveLength(result.recorded);
      // Nothing written twice: one event per (interaction, event key) and one rollback row per interaction.
      const rollbacks = await ledger.listRollbacks(batchId);
      expect(new Set(rollbacks.map((r) => r.interaction_id)).size).toBe(rollbacks.length);

      worker.signal('SIGTERM');
      expect((await worker.exit(60_000)).code).toBe(0);
      sim.signal('SIGTERM');
      await sim.exit(10_000);
    }, 300_000);

    it('a PostgreSQL outage of a minute mid-batch: the worker waits it out and the batch finishes consistent', async () => {
      const files = 60;
      // A recording system of its own: the files' names are those of the first test's batch.
      const sim = await startSimulator('recording-system-outage');
      const worker = await startWorker();
      const srcDir = path.join(workDir, 'src-outage');
      await generateBlobFiles(srcDir, { count: files, size: 2048, filesPerOrder: 10, seed: 2 });
      const scanned = await scanDirectory(srcDir);
      const batchId = `outage-${randomUUID().slice(0, 8)}`;
      const t0 = Date.now();
      const { handle } = await startBatch(client, scanned.items, {
        taskQueue,
        batchId,
        stateDir: workDir,
        policy: { maxConcurrency: 10, maxResends: MAX_RESENDS, resendBackoffMs: 200, probeIntervalMs: 1000 },
      });
      await waitFor(
        'ten files recorded',
        async () => ((await ledger.batchCounts(batchId)).files.RECORDED ?? 0) >= 10,
        120_000,
      );
      cluster.stop();
      const downAt = Date.now() - t0;
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      expect(worker.running).toBe(true);
      cluster.start();
      const upAt = Date.now() - t0;
      const result = await handle.result();
      const endAt = Date.now() - t0;
      console.info(
        `outage timings: ${JSON.stringify({ downAtMs: downAt, upAtMs: upAt, outageMs: upAt - downAt, batchEndAtMs: endAt })}; result ${JSON.stringify({ ...result, failures: result.failures.map((f) => f.reason) })}`,
      );
      expect(result.total).toBe(files);
      expect(['COMPLETED', 'COMPLETED_WITH_FAILURES']).toContain(result.state);
      const targets = fixedTargets(
        new Map([
          [
            'default',
            new HttpRecordingSystem({ baseUrl: `http://127.0.0.1:${simPort}`, token: TOKEN, requestTimeoutMs: 10_000 }),
          ],
        ]),
      );
      const report = await checkBatchConsistency({ ledger, targets, batchId, maxResends: MAX_RESENDS });
      expect(report.drifts).toEqual([]);
      expect(report.files).toBe(files);
      expect(worker.running).toBe(true);
      worker.signal('SIGTERM');
      expect((await worker.exit(60_000)).code).toBe(0);
      sim.signal('SIGTERM');
      await sim.exit(10_000);
    }, 300_000);
  },
);
