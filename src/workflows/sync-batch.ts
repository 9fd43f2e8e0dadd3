/**
 * syncBatch: fans out one syncFile child per manifest item through a sliding window, and
 * continues as new before its history grows large, carrying its window and counts. Operators
 * steer it with the cancel, retry, pause and resume signals.
 *
 * The batch hears how each file ended once, from the child's completion event: a child costs the
 * batch its start and its completion, and nothing more. A run that continues as new carries the
 * files still in flight; their completions go to the run that started them, which has closed,
 * so the next run asks how they ended (awaitFileResults) and counts each once.
 *
 * Its carried state does not grow with the batch: failed files and their redrives are in the
 * ledger (a retry queues them there, and the batch reads its redrive queue a page at a time).
 * The state changes themselves are plain functions in batch-state.ts.
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { QueuedRedrive } from '../activities';
import { FailureType } from '../failures';
import {
  SA_BATCH_ID,
  SA_FILES_FAILED,
  SA_FILES_TOTAL,
  SA_STATE,
  fileKey,
  type BatchResult,
  type BatchState,
  type FileResult,
  type NotifyEventName,
  type SyncBatchInput,
  type SyncItem,
} from '../shared';
import { finishBatch, loadItems, loadRedrives, openBatch, rollbackRecordedFiles } from './batch-activities';
import { probeDuringOutages, signalCancelToFiles, startFile, watchAwaited, type FileStarts } from './batch-run';
import * as batch from './batch-state';
import { setBatchHandlers } from './batch-handlers';
import { createNotifier } from './notifier';
import { ledgerPatiently } from './ledger-patience';

/** Items read from the manifest per activity call: small enough to stay far below payload limits. */
export const PAGE_SIZE = 200;
/** Continue as new once a run's history holds this many events. */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 8_000;
export { MAX_FAILURES_KEPT } from './batch-state';

export async function syncBatch(input: SyncBatchInput): Promise<BatchResult> {
  const { batchId, policy, total } = input;
  const info = workflowInfo();
  const c = input.carry ?? batch.newCarry(policy, input.redrive);
  // All state the handlers touch is declared before them: a run that continued as new gets its
  // buffered signals as soon as a handler is set.
  const frame: batch.BatchFrame = {
    batchId,
    total,
    policy,
    pendingStarts: 0,
    redriveRun: !!input.redrive,
    failuresKept: input.failuresKept,
  };
  const pageSize = Math.max(1, Math.min(input.pageSize ?? PAGE_SIZE, PAGE_SIZE));
  let finalState: BatchState | undefined;
  let cancelSentToChildren = false;
  let nativeCancel: unknown;
  let ended = false;
  let page: { start: number; items: SyncItem[] } = { start: 0, items: [] };
  let redrivePage: { start: number; items: QueuedRedrive[] } = { start: 0, items: [] };
  let startsUnderWay = 0;
  /** Files this run did not start (an earlier run did), by workflow id: learnt by activity. */
  const awaited = new Map<string, string>();
  for (const [key, slot] of Object.entries(c.inFlight)) awaited.set(slot.workflowId, key);

  const stateNow = (): BatchState => finalState ?? batch.runningState(c);
  const describe = (state: BatchState = stateNow()) => setCurrentDetails(batch.describeBatch(c, frame, state));
  const tell = (detail: string) => setCurrentDetails(`${detail}\n\n${batch.describeBatch(c, frame, stateNow())}`);
  const show = (state: BatchState = stateNow()) => {
    upsertSearchAttributes([
      { key: SA_STATE, value: state },
      { key: SA_FILES_FAILED, value: batch.failedCount(c) },
    ]);
    describe(state);
  };
  const notifier = createNotifier(input.notify, (text) => {
    batch.noteNotifyFailure(c, text);
    describe();
  });
  const emit = (event: NotifyEventName, detail?: Record<string, unknown>) =>
    notifier.emit(event, { ...batch.notifyFields(c, frame, stateNow()), ...(detail ? { detail } : {}) });
  const onFileDone = (result: FileResult) => {
    const wasFailing = c.failedBatch;
    const outcome = batch.applyFileResult(c, result, frame);
    if (outcome === 'failed') show();
    else if (outcome === 'done') describe();
    if (c.failedBatch && !wasFailing) {
      emit('batch.threshold_exceeded', {
        failed: batch.failedCount(c),
        toleratedFailurePercent: policy.toleratedFailurePercent,
      });
    }
  };
  /** Shows a pause or a resume and tells the receivers, with who or what caused it. */
  const announce = (event: 'batch.paused' | 'batch.resumed', by: string, more: Record<string, unknown> = {}) => {
    show();
    emit(event, { by, ...more });
  };
  setBatchHandlers({ c, frame, stateNow, show, describe, tell, announce });

  // --- starting files ---------------------------------------------------------------------------
  /**
   * The file a pick names when its page has been read already, without a promise: the SDK
   * records a stack trace for every promise workflow code makes, and most starts find their
   * file at hand. Undefined when a page is to be read first (fileToStart).
   */
  function fileAtHand(pick: batch.StartPick): QueuedRedrive | undefined {
    if ('redrive' in pick) return redrivePage.items[pick.redrive - redrivePage.start];
    const item = page.items[pick.index - page.start];
    return item && { item, attempt: 0 };
  }

  /** The file a pick names that is not at hand: reads the page of the manifest or redrive queue that starts with it. */
  async function fileToStart(pick: batch.StartPick): Promise<QueuedRedrive> {
    if ('redrive' in pick) {
      const items = await loadRedrives({ batchId, from: pick.redrive, limit: pageSize });
      if (items.length === 0) {
        throw ApplicationFailure.nonRetryable(
          `redrive queue of ${batchId} has no position ${pick.redrive}`,
          FailureType.BadInput,
        );
      }
      redrivePage = { start: pick.redrive, items };
    } else {
      const items = await loadItems({ manifestPath: input.manifestPath, offset: pick.index, limit: pageSize });
      if (items.length === 0) {
        throw ApplicationFailure.nonRetryable(
          `manifest ${input.manifestPath} has no item ${pick.index}`,
          FailureType.BadInput,
        );
      }
      page = { start: pick.index, items };
    }
    return fileAtHand(pick)!;
  }

  const run: FileStarts = {
    c,
    awaited,
    ended: () => ended,
    onFileDone,
    batchId,
    policy,
    parentWorkflowId: info.workflowId,
  };
  function startOne(file: QueuedRedrive): Promise<void> {
    const { item, attempt } = file;
    const target = item.target ?? 'default';
    const key = fileKey(item.orderId, item.fileName);
    const summary = `${key} → ${target} (batch ${batchId}${attempt ? `, redrive ${attempt}` : ''})`;
    return startFile(run, file, { target, summary });
  }

  /**
   * Starts as many files as the window allows, reading the manifest and the redrive queue a
   * page at a time.
   */
  async function startAvailable(): Promise<void> {
    const picks = batch.takeStarts(c, frame);
    frame.pendingStarts += picks.length;
    try {
      const files: QueuedRedrive[] = [];
      for (const pick of picks) files.push(fileAtHand(pick) ?? (await fileToStart(pick)));
      frame.pendingStarts -= picks.splice(0).length;
      startsUnderWay += 1;
      // Children are started outside the batch's cancellation: a cancelled batch tells its
      // files by signal and still waits for each to end. The loop does not wait for these
      // starts to be confirmed: it goes on filling slots as files end.
      void CancellationScope.nonCancellable(() => Promise.all(files.map(startOne))).finally(() => {
        startsUnderWay -= 1;
      });
    } finally {
      frame.pendingStarts -= picks.length;
    }
  }

  function cancelChildren(): void {
    cancelSentToChildren = true;
    signalCancelToFiles(c);
  }

  const shouldContinueAsNew = () => {
    const now = workflowInfo();
    return (
      now.historyLength >= (input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS) ||
      now.continueAsNewSuggested
    );
  };

  // --- main loop --------------------------------------------------------------------------------
  if (!input.carry) {
    c.limits = await ledgerPatiently(
      () => openBatch({ batchId, workflowId: info.workflowId, total, limits: input.limits }),
      tell,
    );
    upsertSearchAttributes([
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_FILES_TOTAL, value: total },
    ]);
  }
  show();
  const watcher = watchAwaited(run);

  const prober = probeDuringOutages({ c, policy, ended: () => ended, what: 'batch', announce });

  try {
    for (;;) {
      if (c.cancelRequested || batch.allDone(c, frame)) break;
      if (shouldContinueAsNew() && frame.pendingStarts === 0) {
        if (startsUnderWay > 0) {
          // The next run carries the files in flight by run id: the starts under way end first.
          await condition(() => startsUnderWay === 0);
          continue;
        }
        await condition(allHandlersFinished);
        await notifier.settle();
        await continueAsNew<typeof syncBatch>({ ...input, carry: c });
      }
      if (batch.canStart(c, frame)) {
        await startAvailable();
        continue;
      }
      await condition(
        () => batch.canStart(c, frame) || batch.allDone(c, frame) || c.cancelRequested || shouldContinueAsNew(),
      );
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    nativeCancel = err;
    batch.requestCancel(c, 'cancellation requested');
  }

  return CancellationScope.nonCancellable(async () => {
    // A file is told of a cancel by signal once its start is confirmed: a signal sent before
    // the child exists would find no workflow.
    if (startsUnderWay > 0) await condition(() => startsUnderWay === 0);
    c.outage = undefined;
    if (c.cancelRequested) show();
    // Every file started ends, and is counted, before the batch does.
    for (;;) {
      if (c.cancelRequested && !cancelSentToChildren) cancelChildren();
      if (batch.allDone(c, frame)) break;
      await condition(() => batch.allDone(c, frame) || (c.cancelRequested && !cancelSentToChildren));
    }
    let state = batch.endState(c);
    if (policy.atomic && state !== 'COMPLETED') {
      const undone = await rollbackRecordedFiles({ batchId, reason: `atomic batch ended ${state}` });
      c.counts.recorded -= undone.rolledBack + undone.failed;
      c.counts.rolledBack += undone.rolledBack;
      c.counts.rollbackFailed += undone.failed;
      if (state === 'COMPLETED_WITH_FAILURES') state = 'FAILED';
    }
    const totals = await ledgerPatiently(() => finishBatch({ batchId, state }), tell);
    finalState = state;
    ended = true;
    await Promise.all([prober, watcher]);
    emit('batch.finished', { resends: c.counts.resends });
    // The end waits for the event, at most the notification's own timeout.
    await notifier.settle();
    show(state);
    const result: BatchResult = {
      batchId,
      state,
      total,
      recorded: c.counts.recorded,
      rolledBack: c.counts.rolledBack,
      rollbackFailed: c.counts.rollbackFailed,
      cancelled: c.counts.cancelled,
      resends: c.counts.resends,
      failures: batch.failuresOf(c),
      ledger: totals,
    };
    if (nativeCancel) throw nativeCancel;
    return result;
  });
}
