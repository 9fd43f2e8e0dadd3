/**
 * A batch's carried state does not grow with its failures. On a dev server whose payload limit
 * (`limit.blobSize.error`) is lowered far below what one entry per failed file would need, a
 * batch whose every file fails continues as new several times and completes, each file counted
 * once; a redrive of all of them then records every one. On both ledger backends.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redriveBatch } from '../../src/batch/redrive';
import { startBatch } from '../../src/batch/start';
import { checkBatchConsistency } from '../../src/consistency/invariant';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { startStack, type Stack } from '../../src/devtools/stack';
import { fileKey, MAX_FAILURES_KEPT, type SyncItem } from '../../src/shared';
import { scanDirectory } from '../../src/source/scan';
import { startDevServer, type RunningDevServer } from '../../src/temporal/dev-server';
import { BACKENDS } from '../ledger/backends';
import { TEST_TOKEN, testEncryptionKeys } from '../helpers/harness';

/** The payload limit of this file's dev server: every payload larger fails its command. */
const BLOB_LIMIT = 10 * 1024;
const FILES = 500;
/**
 * What bounds the batch's payloads, scaled down with the limit: its window (files in flight are
 * carried), its pages of items, and the latest failures it keeps.
 */
const BATCH = { maxConcurrency: 24, pageSize: 20, failuresKept: 10, continueAsNewAfterEvents: 400 };

/** Every payload of a history event, with the event's type (for the largest of each kind). */
function payloadsOf(event: temporal.api.history.v1.IHistoryEvent): { kind: string; bytes: number }[] {
  const out: { kind: string; bytes: number }[] = [];
  const walk = (value: unknown, kind: string): void => {
    if (!value || typeof value !== 'object') return;
    if (value instanceof Uint8Array) return;
    const payloads = (value as { payloads?: { data?: Uint8Array | null }[] }).payloads;
    if (Array.isArray(payloads)) {
      out.push({ kind, bytes: payloads.reduce((n, p) => n + (p.data?.length ?? 0), 0) });
      return;
    }
    for (const [key, inner] of Object.entries(value)) walk(inner, key.endsWith('Attributes') ? key : kind);
  };
  walk(event, 'event');
  return out;
}

/**
 * The largest payload of each kind in the latest run of a workflow and the runs it continued
 * from (each run's start event names the run before it), and how many runs continued as new.
 */
async function payloadSizes(client: Client, workflowId: string) {
  const largest = new Map<string, number>();
  let continuedAsNew = 0;
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const events: temporal.api.history.v1.IHistoryEvent[] =
      (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    for (const event of events) {
      if (event.workflowExecutionContinuedAsNewEventAttributes) continuedAsNew += 1;
      for (const { kind, bytes } of payloadsOf(event)) largest.set(kind, Math.max(largest.get(kind) ?? 0, bytes));
    }
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return { largest, continuedAsNew };
}

describe('bounded batch state under a lowered payload limit', () => {
  let server: RunningDevServer;
  let bundle: { code: string };

  beforeAll(async () => {
    server = await startDevServer({
      dbFile: null,
      port: 0,
      uiPort: null,
      logLevel: 'error',
      dynamicConfig: { 'limit.blobSize.error': BLOB_LIMIT, 'limit.blobSize.warn': BLOB_LIMIT / 2 },
    });
    bundle = { code: await readFile(inject('workflowBundlePath'), 'utf8') };
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    for (const backend of BACKENDS) await backend.cleanup();
  });

  describe.each(BACKENDS.filter((b) => !b.skipped))('on the $name ledger', (backend) => {
    let stack: Stack;
    let items: SyncItem[];

    beforeAll(async () => {
      await backend.check();
      stack = await startStack({
        temporal: { address: server.address },
        tempDirPrefix: 'image-sync-bounded-',
        taskQueue: `bounded-${randomUUID()}`,
        token: TEST_TOKEN,
        ledgerUrl: await backend.freshUrl(),
        simulator: { rejectRate: 1 },
        requestTimeoutMs: 5_000,
        encryptionKeys: testEncryptionKeys(),
        workflowBundle: bundle,
        worker: { kind: 'in-process', heartbeatEveryMs: 500 },
      });
      const dir = path.join(stack.workDir, 'src');
      await generateBlobFiles(dir, { count: FILES, size: 16, filesPerOrder: 50 });
      items = (await scanDirectory(dir)).items;
    }, 120_000);
    afterAll(async () => {
      await stack?.close();
    });

    it(
      'completes with every file failed and counted once, then redrives all of them',
      { timeout: 600_000 },
      async () => {
        const startedAt = Date.now();
        // What one entry per failed file (as { index, state }) would weigh in the carried state.
        const perFileState = JSON.stringify(
          Object.fromEntries(
            items.map((it, index) => [fileKey(it.orderId, it.fileName), { index, state: 'ROLLED_BACK' }]),
          ),
        ).length;
        expect(perFileState).toBeGreaterThan(3 * BLOB_LIMIT);

        const { batchId, handle } = await startBatch(stack.client, items, {
          taskQueue: stack.taskQueue,
          batchId: `bounded-${randomUUID().slice(0, 8)}`,
          stateDir: stack.workDir,
          policy: { maxConcurrency: BATCH.maxConcurrency, maxResends: 0, resendBackoffMs: 10 },
          continueAsNewAfterEvents: BATCH.continueAsNewAfterEvents,
          pageSize: BATCH.pageSize,
          failuresKept: BATCH.failuresKept,
        });
        const first = await handle.result();
        expect(first).toMatchObject({ state: 'COMPLETED_WITH_FAILURES', total: FILES, recorded: 0, rolledBack: FILES });
        expect(first.failures).toHaveLength(BATCH.failuresKept);
        // Each file once: one interaction, rolled back, and one rollback row.
        expect(await stack.ledger.listInteractions(batchId)).toHaveLength(FILES);
        expect((await stack.ledger.batchCounts(batchId)).files).toEqual({ ROLLED_BACK: FILES });
        expect(first.ledger).toEqual({ recorded: 0, rolledBack: FILES, failed: FILES });
        const failedPass = await payloadSizes(stack.client, handle.workflowId);
        expect(failedPass.continuedAsNew).toBeGreaterThan(2);
        const firstDone = Date.now();

        stack.simulator.setFaults({ rejectRate: 0 });
        const redrive = await redriveBatch(stack.client, stack.ledger, batchId, stack.taskQueue);
        expect(redrive.count).toBe(FILES);
        expect(redrive.files).toHaveLength(MAX_FAILURES_KEPT);
        const second = await stack.client.workflow.getHandle(handle.workflowId).result();
        expect(second).toMatchObject({ state: 'COMPLETED', total: FILES, recorded: FILES, rolledBack: 0 });
        expect((await stack.ledger.batchCounts(batchId)).files).toEqual({ RECORDED: FILES });
        expect(await stack.ledger.listInteractions(batchId)).toHaveLength(2 * FILES);
        const queue = await stack.ledger.queuedRedrives(batchId, { from: 0, limit: FILES + 1 });
        expect(queue).toHaveLength(FILES);
        expect(queue.every((r) => r.attempt === 1)).toBe(true);
        const report = await checkBatchConsistency({
          ledger: stack.ledger,
          targets: stack.targets,
          batchId,
          maxResends: 0,
        });
        expect(report.drifts).toEqual([]);

        const redrivePass = await payloadSizes(stack.client, handle.workflowId);
        expect(redrivePass.continuedAsNew).toBeGreaterThan(0);
        const largest = new Map(failedPass.largest);
        for (const [kind, bytes] of redrivePass.largest) largest.set(kind, Math.max(largest.get(kind) ?? 0, bytes));
        const canInput = largest.get('workflowExecutionContinuedAsNewEventAttributes') ?? 0;
        expect(canInput).toBeGreaterThan(0);
        expect(Math.max(...largest.values())).toBeLessThan(BLOB_LIMIT);
        const both = { largest, continuedAsNew: failedPass.continuedAsNew + redrivePass.continuedAsNew };
        console.log(
          `[bounded-state ${backend.name}] ${FILES} files: one entry per failed file would weigh ${perFileState} B; ` +
            `limit ${BLOB_LIMIT} B; ${both.continuedAsNew} continue-as-new, largest input ${canInput} B; ` +
            `largest payloads ${JSON.stringify(Object.fromEntries(both.largest))}; ` +
            `failing pass ${((firstDone - startedAt) / 1000).toFixed(1)} s, redrive ${((Date.now() - firstDone) / 1000).toFixed(1)} s`,
        );
      },
    );
  });
});
