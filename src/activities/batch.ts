/**
 * Batch activities: read the manifest in pages, pick up a schedule's new files, probe a
 * recording system during an outage, and learn how files started by an earlier run of a batch
 * ended.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { errorText } from '../errors';
import { fileKey, scheduleBatchPrefix, type FileResult, type SyncItem } from '../shared';
import { readInput } from '../batch/input';
import { NormalizedManifestWriter, readItemsPage } from '../source/normalized';
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
/** A schedule's folder files asked about in one look at the ledger. */
const LEDGER_PAGE = 1000;

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
     * the ones modified in the last settleMs for the next run, and writes their manifest. The
     * folder is read as a stream, as `start --dir` reads it (batch/input.ts), and the ledger is
     * asked about its files a page at a time: memory does not grow with the folder or with what
     * the schedule recorded before. Entries the scan does not read, and files gone or not regular
     * by the time they are checked, are counted in skippedInvalid.
     */
    async prepareScheduledBatch(args: {
      scheduleId: string;
      dir: string;
      stateDir: string;
      batchId: string;
      settleMs: number;
    }): Promise<{ manifestPath: string; total: number; skippedInvalid: number }> {
      const prefix = scheduleBatchPrefix(args.scheduleId);
      const settledBefore = Date.now() - args.settleMs;
      const manifestPath = path.join(args.stateDir, 'manifests', `${args.batchId}.ndjson`);
      const writer = await NormalizedManifestWriter.create(manifestPath);
      let page: SyncItem[] = [];
      let seen = 0;
      const flush = async (): Promise<void> => {
        const items = page;
        page = [];
        if (items.length === 0) return;
        const recorded = await mapped(() => ledger.recordedOfBatchesAmong(prefix, items));
        const done = new Set(recorded.map((f) => fileKey(f.orderId, f.fileName)));
        for (const item of items) if (!done.has(fileKey(item.orderId, item.fileName))) await writer.add(item);
      };
      try {
        const summary = await readInput({ dir: args.dir }, { skipInvalid: true, allowEmpty: true }, async (c) => {
          if (++seen % LEDGER_PAGE === 0) Context.current().heartbeat();
          if (c.mtimeMs > settledBefore) return;
          page.push(c.item);
          if (page.length >= LEDGER_PAGE) await flush();
        });
        await flush();
        if (writer.items === 0) {
          await writer.abort();
          return { manifestPath, total: 0, skippedInvalid: summary.skippedCount };
        }
        const { items } = await writer.finish();
        return { manifestPath, total: items, skippedInvalid: summary.skippedCount };
      } catch (error) {
        await writer.abort();
        throw error;
      }
    },

    /** Whether a recording system answers an authenticated request at all. */
    async probeRecordingSystem(args: { target: string }): Promise<void> {
      await mapped(() =>
        systemFor(targets, args.target).list({ limit: 1, signal: Context.current().cancellationSignal }),
      );
    },
  };
}
