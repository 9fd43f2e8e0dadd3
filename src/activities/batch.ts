/**
 * Batch activities: read the manifest in pages, pick up a schedule's new files, probe a
 * recording system during an outage, and learn how files started by an earlier run of a batch
 * ended.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { errorText } from '../errors';
import { fileKey, scheduleBatchPrefix, type FileResult, type SyncItem } from '../shared';
import { scanDirectory } from '../source/scan';
import { readItemsPage, writeNormalizedManifest } from '../source/normalized';
import { mapped, systemFor, type ActivityDeps } from './context';

/** A file workflow the batch waits for, and how it ended once it has. */
export interface AwaitedFile {
  workflowId: string;
  /** The run to wait for; the latest run of the workflow id when absent. */
  runId?: string;
}
export type EndedFile = { workflowId: string; result: FileResult } | { workflowId: string; abnormal: string };

/** How often awaitFileResults looks at the files it waits for. */
const AWAIT_POLL_MS = 500;

export function createBatchActivities(deps: ActivityDeps) {
  const { ledger, targets } = deps;

  return {
    /** A page of the batch's normalised manifest. */
    async loadItems(args: { manifestPath: string; offset: number; limit: number }): Promise<SyncItem[]> {
      return readItemsPage(args.manifestPath, args.offset, args.limit);
    },

    /**
     * Waits until at least one of the given file workflows has ended (or maxWaitMs passed) and
     * returns every one that has, with its result. A batch that continued as new learns this way
     * how the files its earlier run started ended: their completion went to that run.
     */
    async awaitFileResults(args: { files: AwaitedFile[]; maxWaitMs: number }): Promise<EndedFile[]> {
      const ctx = Context.current();
      const deadline = Date.now() + args.maxWaitMs;
      for (;;) {
        const ended: EndedFile[] = [];
        for (const f of args.files) {
          const handle = ctx.client.workflow.getHandle(f.workflowId, f.runId);
          const described = await handle.describe();
          if (described.status.name === 'RUNNING') continue;
          try {
            ended.push({ workflowId: f.workflowId, result: (await handle.result()) as FileResult });
          } catch (err) {
            const cause = err instanceof WorkflowFailedError ? (err.cause ?? err) : err;
            ended.push({ workflowId: f.workflowId, abnormal: `${described.status.name}: ${errorText(cause)}` });
          }
        }
        if (ended.length > 0 || Date.now() >= deadline) return ended;
        ctx.heartbeat();
        await ctx.sleep(AWAIT_POLL_MS);
      }
    },

    /**
     * Scans a schedule's folder for the files no earlier run of the schedule recorded, leaving
     * the ones modified in the last settleMs for the next run, and writes their manifest.
     */
    async prepareScheduledBatch(args: {
      scheduleId: string;
      dir: string;
      stateDir: string;
      batchId: string;
      settleMs: number;
    }): Promise<{ manifestPath: string; total: number; skippedInvalid: number }> {
      const scanned = await scanDirectory(args.dir);
      const done = new Set(
        (await mapped(() => ledger.recordedFilesOfBatches(scheduleBatchPrefix(args.scheduleId)))).map((f) =>
          fileKey(f.orderId, f.fileName),
        ),
      );
      const settledBefore = Date.now() - args.settleMs;
      const fresh: SyncItem[] = [];
      for (const item of scanned.items) {
        if (done.has(fileKey(item.orderId, item.fileName))) continue;
        const st = await stat(item.sourcePath).catch(() => undefined);
        if (st && st.mtimeMs <= settledBefore) fresh.push(item);
      }
      const manifestPath = path.join(args.stateDir, 'manifests', `${args.batchId}.ndjson`);
      if (fresh.length > 0) await writeNormalizedManifest(fresh, manifestPath);
      return { manifestPath, total: fresh.length, skippedInvalid: scanned.errors.length };
    },

    /** Whether a recording system answers an authenticated request at all. */
    async probeRecordingSystem(args: { target: string }): Promise<void> {
      await mapped(() =>
        systemFor(targets, args.target).list({ limit: 1, signal: Context.current().cancellationSignal }),
      );
    },
  };
}
