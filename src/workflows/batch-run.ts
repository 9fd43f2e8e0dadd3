/**
 * What a running batch and the intake (a batch without an end) do alike beside their main loop:
 * start a file's workflow in its slot of the window, learn how the files an earlier run started
 * ended, probe a recording system while paused for its outage, and tell the files in flight of a
 * cancel.
 */
import {
  CancellationScope,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  sleep,
  startChild,
} from '@temporalio/workflow';
import type { EndedFile, QueuedRedrive } from '../activities';
import {
  SA_BATCH_ID,
  SA_ORDER_ID,
  SA_STATE,
  SA_TARGET,
  cancelSignal,
  fileKey,
  fileWorkflowId,
  type BatchCarry,
  type BatchPolicy,
  type FileResult,
} from '../shared';
import { awaitFileResults, probeRecordingSystem } from './batch-activities';
import { isPaced } from './batch-limits';
import * as batch from './batch-state';
import { syncFile } from './sync-file';

/** How long one awaitFileResults call waits for a file of an earlier run to end. */
export const AWAIT_FILES_MAX_WAIT_MS = 50_000;

export interface AwaitedFiles {
  c: BatchCarry;
  /** Workflow id to file key, of the files in flight whose ends this run learns by activity. */
  awaited: Map<string, string>;
  ended: () => boolean;
  onFileDone: (result: FileResult) => void;
}

/** A batch's or an intake's run, as starting its files needs it. */
export interface FileStarts extends AwaitedFiles {
  batchId: string;
  policy: BatchPolicy;
  /** The batch's (or intake's) own workflow id: its files report transport faults to it. */
  parentWorkflowId: string;
}

/**
 * Starts one file's workflow, in the slot of the window it takes at once; its end reaches
 * `onFileDone`. A file whose workflow is already running (left by an earlier run) is learned of
 * by the awaited-files watcher instead.
 */
export function startFile(
  run: FileStarts,
  { item, attempt }: QueuedRedrive,
  how: { target: string; summary: string; priority?: { priorityKey: number } },
): Promise<void> {
  const { c, batchId, policy, awaited, onFileDone } = run;
  const key = fileKey(item.orderId, item.fileName);
  const workflowId = fileWorkflowId(batchId, item.orderId, item.fileName);
  // Taken before the start, so a completion that overtakes the start still finds its slot.
  const slot: (typeof c.inFlight)[string] = { workflowId };
  c.inFlight[key] = slot;
  return startChild(syncFile, {
    workflowId,
    args: [
      {
        batchId,
        item,
        attempt,
        parentWorkflowId: run.parentWorkflowId,
        ...(isPaced(c.limits) ? { paced: true } : {}),
        policy: {
          maxResends: policy.maxResends,
          resendBackoffMs: policy.resendBackoffMs,
          localSendMaxBytes: policy.localSendMaxBytes,
          ...(policy.resendRecorded ? { resendRecorded: true } : {}),
          ...(policy.claimPatienceMs !== undefined ? { claimPatienceMs: policy.claimPatienceMs } : {}),
        },
      },
    ],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    ...(how.priority ? { priority: how.priority } : {}),
    staticSummary: how.summary,
    typedSearchAttributes: [
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_ORDER_ID, value: item.orderId },
      { key: SA_TARGET, value: how.target },
      { key: SA_STATE, value: 'SENDING' },
    ],
  }).then(
    (child) => {
      slot.runId = child.firstExecutionRunId;
      void child.result().then(onFileDone, (err: unknown) => onFileDone(batch.abnormalEnd(item, String(err))));
    },
    (err: unknown) => {
      // Already running (left by an earlier run): learn how it ends by activity.
      log.warn('file workflow already running; waiting for it to end', { workflowId, error: String(err) });
      awaited.set(workflowId, key);
    },
  );
}

/** Learns how the files an earlier run started ended; never cancelled, like the drain. */
export function watchAwaited({ c, awaited, ended, onFileDone }: AwaitedFiles): Promise<void> {
  const applyEnded = (r: EndedFile): void => {
    const key = awaited.get(r.workflowId);
    if (key === undefined) return;
    awaited.delete(r.workflowId);
    if ('result' in r) return onFileDone(r.result);
    if (!c.inFlight[key]) return;
    const [orderId, ...rest] = key.split('/');
    onFileDone(batch.abnormalEnd({ orderId: orderId!, fileName: rest.join('/') }, r.abnormal));
  };
  return CancellationScope.nonCancellable(async () => {
    for (;;) {
      await condition(() => awaited.size > 0 || ended());
      if (ended()) return;
      const files = [...awaited.keys()].map((workflowId) => ({
        workflowId,
        runId: c.inFlight[awaited.get(workflowId)!]?.runId,
      }));
      const results = await awaitFileResults({ files, maxWaitMs: AWAIT_FILES_MAX_WAIT_MS });
      for (const r of results) applyEnded(r);
    }
  });
}

/**
 * While paused for an outage, probes the recording system every `policy.probeIntervalMs` and resumes
 * (`announce`) when it answers; ends with the run.
 */
export function probeDuringOutages(opts: {
  c: BatchCarry;
  policy: Pick<BatchPolicy, 'probeIntervalMs'>;
  ended: () => boolean;
  /** What resumes, in the log line: `batch` or `intake`. */
  what: string;
  announce: (event: 'batch.resumed', by: string, more: Record<string, unknown>) => void;
}): Promise<void> {
  const { c, ended } = opts;
  return (async () => {
    for (;;) {
      await condition(() => c.outage !== undefined || ended());
      if (ended()) return;
      await sleep(opts.policy.probeIntervalMs);
      const outage = c.outage;
      if (!outage || ended()) continue;
      const up = await probeRecordingSystem({ target: outage.target }).then(
        () => true,
        () => false,
      );
      if (up && batch.endOutage(c, outage)) {
        log.info(`recording system answers again: ${opts.what} resumed`, { target: outage.target });
        opts.announce('batch.resumed', 'outage over', { target: outage.target });
      }
    }
  })().catch((err: unknown) => {
    if (!isCancellation(err)) throw err;
  });
}

/** Tells every file in flight of the batch's cancel, by signal; a file that cannot be told is logged. */
export function signalCancelToFiles(c: BatchCarry): void {
  for (const { workflowId } of Object.values(c.inFlight)) {
    getExternalWorkflowHandle(workflowId)
      .signal(cancelSignal, c.cancelReason)
      .catch((err: unknown) => log.warn('could not cancel file workflow', { workflowId, error: String(err) }));
  }
}
