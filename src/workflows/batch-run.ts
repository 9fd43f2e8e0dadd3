/**
 * What a running batch and the intake (a batch without an end) do alike beside their main loop:
 * learn how the files an earlier run started ended, probe a recording system while paused for
 * its outage, and tell the files in flight of a cancel.
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  sleep,
} from '@temporalio/workflow';
import type { EndedFile } from '../activities';
import { cancelSignal, type BatchCarry, type BatchPolicy, type FileResult } from '../shared';
import { awaitFileResults, probeRecordingSystem } from './batch-activities';
import * as batch from './batch-state';

/** How long one awaitFileResults call waits for a file of an earlier run to end. */
export const AWAIT_FILES_MAX_WAIT_MS = 50_000;

export interface AwaitedFiles {
  c: BatchCarry;
  /** Workflow id to file key, of the files in flight whose ends this run learns by activity. */
  awaited: Map<string, string>;
  ended: () => boolean;
  onFileDone: (result: FileResult) => void;
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
