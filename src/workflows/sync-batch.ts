/**
 * syncBatch: fans out one syncFile child per manifest item through a sliding window, takes the
 * children's reports by signal, and continues as new before its history grows large, carrying
 * its window and counts. Operators steer it with the cancel, retry, pause and resume signals.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  SA_BATCH_ID,
  SA_FILES_FAILED,
  SA_FILES_TOTAL,
  SA_ORDER_ID,
  SA_STATE,
  SA_TARGET,
  batchRetrySignal,
  cancelSignal,
  failuresQuery,
  fileDoneSignal,
  fileKey,
  fileWorkflowId,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setConcurrencySignal,
  transportFaultSignal,
  type BatchCarry,
  type BatchResult,
  type BatchState,
  type FailureInfo,
  type FileResult,
  type Progress,
  type SyncBatchInput,
  type SyncItem,
} from '../shared';
import { ACTIVITY_OPTIONS, LEDGER_ACTIVITY_OPTIONS } from './options';
import { syncFile } from './sync-file';

const { loadItems, rollbackRecordedFiles } = proxyActivities<Activities>(ACTIVITY_OPTIONS.batch);
const { probeRecordingSystem } = proxyActivities<Activities>(ACTIVITY_OPTIONS.probe);
const { openBatch, finishBatch } = proxyLocalActivities<Activities>(LEDGER_ACTIVITY_OPTIONS);

/** Items read from the manifest per activity call: small enough to stay far below payload limits. */
export const PAGE_SIZE = 200;
/** Continue as new once a run's history holds this many events. */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;
/** Version marker: the batch waits for its children's completion events before it ends. */
export const AWAIT_CHILD_COMPLETIONS_PATCH = 'await-child-completions';
/** Failures kept for the `failures` query. */
export const MAX_FAILURES_KEPT = 100;

export async function syncBatch(input: SyncBatchInput): Promise<BatchResult> {
  const { batchId, policy, total } = input;
  const info = workflowInfo();
  const c: BatchCarry = input.carry ?? {
    nextIndex: 0,
    inFlight: {},
    counts: { started: 0, inFlight: 0, recorded: 0, rolledBack: 0, rollbackFailed: 0, cancelled: 0, resends: 0 },
    failures: [],
    failed: {},
    redrive: [],
    attempts: {},
    paused: false,
    consecutiveFaults: 0,
    cancelRequested: false,
    maxConcurrency: policy.maxConcurrency,
    stopStarting: false,
    failedBatch: false,
  };
  // All state the handlers touch is declared before them: a run that continued as new gets its
  // buffered signals as soon as a handler is set.
  let finalState: BatchState | undefined;
  let cancelSentToChildren = false;
  let nativeCancel: unknown;
  let page: { start: number; items: SyncItem[] } = { start: 0, items: [] };
  /** Files picked for a start whose manifest item is still being read. */
  let pendingStarts = 0;
  let startsUnderWay = 0;
  /** Completions of the children this run started (the batch waits for them before it ends). */
  const childCompletions: Promise<void>[] = [];

  // --- handlers ---------------------------------------------------------------------------------
  setHandler(fileDoneSignal, (result: FileResult) => onFileDone(result));
  setHandler(cancelSignal, (reason?: string) => {
    if (c.cancelRequested) return;
    c.cancelRequested = true;
    c.cancelReason = reason ?? 'cancelled by operator';
  });
  setHandler(pauseSignal, () => {
    if (c.cancelRequested || c.paused) return;
    c.paused = true;
    show();
  });
  setHandler(resumeSignal, () => {
    if (!c.paused) return;
    c.paused = false;
    c.outage = undefined;
    c.consecutiveFaults = 0;
    show();
  });
  setHandler(transportFaultSignal, (fault) => {
    c.consecutiveFaults += 1;
    const limit = policy.outagePauseAfter;
    if (limit > 0 && c.consecutiveFaults >= limit && !c.outage && !c.cancelRequested) {
      c.outage = { target: fault.target, since: new Date().toISOString(), lastError: fault.error };
      c.paused = true;
      log.warn('recording system looks down: batch paused', { target: fault.target, error: fault.error });
      show();
    }
  });
  setHandler(setConcurrencySignal, (n: number) => {
    if (Number.isInteger(n) && n >= 1 && n <= 2000) c.maxConcurrency = n;
  });
  setHandler(batchRetrySignal, (args?: { files?: string[] }) => {
    if (c.cancelRequested) return;
    const wanted = args?.files && args.files.length > 0 ? args.files : Object.keys(c.failed);
    for (const key of wanted) {
      const failed = c.failed[key];
      if (!failed) continue;
      delete c.failed[key];
      c.counts[countField(failed.state)] -= 1;
      c.failures = c.failures.filter((f) => fileKey(f.orderId, f.fileName) !== key);
      c.attempts[key] = (c.attempts[key] ?? 0) + 1;
      c.redrive.push({ key, index: failed.index });
    }
    // A redrive may bring a batch that had stopped starting files back under its threshold.
    c.stopStarting = c.failedBatch = overThreshold();
    show();
  });
  setHandler(progressQuery, (): Progress => progress());
  setHandler(failuresQuery, (): FailureInfo[] => c.failures.slice(0, MAX_FAILURES_KEPT));

  // --- helpers ----------------------------------------------------------------------------------
  function failedCount(): number {
    return c.counts.rolledBack + c.counts.rollbackFailed;
  }
  function overThreshold(): boolean {
    return total > 0 && (failedCount() * 100) / total > policy.toleratedFailurePercent;
  }
  function inFlightCount(): number {
    return Object.keys(c.inFlight).length + pendingStarts;
  }
  function stateNow(): BatchState {
    return finalState ?? (c.paused ? 'PAUSED' : 'RUNNING');
  }
  function progress(state: BatchState = stateNow()): Progress {
    return { ...c.counts, total, inFlight: inFlightCount(), paused: c.paused, state };
  }
  function show(state: BatchState = stateNow()): void {
    upsertSearchAttributes([
      { key: SA_STATE, value: state },
      { key: SA_FILES_FAILED, value: failedCount() },
    ]);
    describe(state);
  }
  function describe(state: BatchState = stateNow()): void {
    const p = progress(state);
    const done = p.recorded + p.rolledBack + p.rollbackFailed + p.cancelled;
    const lines = [
      `**${state}** batch ${batchId}: ${done} of ${total} files done`,
      `recorded ${p.recorded} · rolled back ${p.rolledBack} · rollback failed ${p.rollbackFailed} · cancelled ${p.cancelled} · in flight ${p.inFlight} · resends ${p.resends}`,
      `max concurrency ${c.maxConcurrency} · max resends ${policy.maxResends}${policy.atomic ? ' · atomic' : ''}`,
    ];
    if (c.outage) {
      lines.push(
        `paused automatically: recording system "${c.outage.target}" looks down since ${c.outage.since} (${c.outage.lastError}); probing every ${Math.round(policy.probeIntervalMs / 1000)} s, resumes by itself`,
      );
    } else if (c.paused) lines.push('paused by an operator: no new file starts until resume');
    if (c.cancelRequested) lines.push(`cancel requested: ${c.cancelReason ?? ''}`);
    if (c.failures.length > 0) {
      lines.push('failed files (latest first):');
      for (const f of c.failures.slice(0, 10)) lines.push(`- ${f.orderId}/${f.fileName}: ${f.state}, ${f.reason}`);
    }
    setCurrentDetails(lines.join('\n\n'));
  }

  function onFileDone(result: FileResult): void {
    const key = fileKey(result.orderId, result.fileName);
    const slot = c.inFlight[key];
    if (!slot) return; // a duplicate report
    delete c.inFlight[key];
    if (result.state === 'RECORDED') c.consecutiveFaults = 0;
    c.counts[countField(result.state)] += 1;
    c.counts.resends += result.resends;
    if (result.state === 'ROLLED_BACK' || result.state === 'ROLLBACK_FAILED') {
      c.failed[key] = { index: slot.index, state: result.state };
      c.failures.unshift({
        orderId: result.orderId,
        fileName: result.fileName,
        state: result.state,
        reason: result.reason ?? 'unknown',
        resends: result.resends,
      });
      if (c.failures.length > MAX_FAILURES_KEPT) c.failures.length = MAX_FAILURES_KEPT;
      if (overThreshold()) c.stopStarting = c.failedBatch = true;
      show();
    } else {
      describe();
    }
  }

  const canStart = () =>
    !c.paused &&
    !c.cancelRequested &&
    !c.stopStarting &&
    inFlightCount() < c.maxConcurrency &&
    (c.redrive.length > 0 || c.nextIndex < total);
  const allDone = () =>
    inFlightCount() === 0 && (c.cancelRequested || c.stopStarting || (c.redrive.length === 0 && c.nextIndex >= total));
  const shouldContinueAsNew = () => {
    const now = workflowInfo();
    return (
      now.historyLength >= (input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS) ||
      now.continueAsNewSuggested
    );
  };

  async function itemAt(index: number): Promise<SyncItem> {
    if (index < page.start || index >= page.start + page.items.length) {
      const items = await loadItems({ manifestPath: input.manifestPath, offset: index, limit: PAGE_SIZE });
      if (items.length === 0) {
        throw ApplicationFailure.nonRetryable(`manifest ${input.manifestPath} has no item ${index}`, 'BadInput');
      }
      page = { start: index, items };
    }
    return page.items[index - page.start]!;
  }

  function startOne(index: number, item: SyncItem): Promise<void> {
    const key = fileKey(item.orderId, item.fileName);
    const attempt = c.attempts[key] ?? (input.redrive ? 1 : 0);
    const workflowId = fileWorkflowId(batchId, item.orderId, item.fileName);
    // Taken before the start, so a report that overtakes the start event still finds its slot.
    c.inFlight[key] = { workflowId, index };
    return startChild(syncFile, {
      workflowId,
      args: [
        {
          batchId,
          item,
          attempt,
          parentWorkflowId: info.workflowId,
          policy: { maxResends: policy.maxResends, resendBackoffMs: policy.resendBackoffMs },
        },
      ],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      staticSummary: `${item.orderId}/${item.fileName} → ${item.target ?? 'default'} (batch ${batchId}${attempt ? `, redrive ${attempt}` : ''})`,
      typedSearchAttributes: [
        { key: SA_BATCH_ID, value: batchId },
        { key: SA_ORDER_ID, value: item.orderId },
        { key: SA_TARGET, value: item.target ?? 'default' },
        { key: SA_STATE, value: 'SENDING' },
      ],
    }).then(
      (child) => {
        // While this run lives, the child's completion reports too; the signal covers later runs.
        const completion = child.result().then(onFileDone, (err: unknown) => {
          if (isCancellation(err)) return; // the child's own report says how it ended
          onFileDone({
            orderId: item.orderId,
            fileName: item.fileName,
            state: 'ROLLBACK_FAILED',
            interactionId: null,
            resends: 0,
            reason: `file workflow ended abnormally: ${String(err)}`,
          });
        });
        childCompletions.push(completion);
      },
      (err: unknown) => {
        if (isCancellation(err)) throw err;
        // Already running from an earlier run of this batch: it reports to this workflow id.
        log.warn('child start failed; waiting for its report', { workflowId, error: String(err) });
      },
    );
  }

  /** Starts as many files as the window allows, reading the manifest a page at a time. */
  async function startAvailable(): Promise<void> {
    const picks: number[] = [];
    while (canStart() && picks.length + inFlightCount() < c.maxConcurrency) {
      const redrive = c.redrive.shift();
      if (redrive) {
        picks.push(redrive.index);
      } else {
        picks.push(c.nextIndex++);
        c.counts.started += 1;
      }
    }
    pendingStarts += picks.length;
    try {
      const items: SyncItem[] = [];
      for (const index of picks) items.push(await itemAt(index));
      const indexes = picks.splice(0);
      pendingStarts -= indexes.length;
      startsUnderWay += 1;
      try {
        await Promise.all(items.map((item, i) => startOne(indexes[i]!, item)));
      } finally {
        startsUnderWay -= 1;
      }
    } finally {
      pendingStarts -= picks.length;
    }
  }

  function cancelChildren(): void {
    cancelSentToChildren = true;
    for (const { workflowId } of Object.values(c.inFlight)) {
      getExternalWorkflowHandle(workflowId)
        .signal(cancelSignal, c.cancelReason)
        .catch((err: unknown) => log.warn('could not cancel file workflow', { workflowId, error: String(err) }));
    }
  }

  // --- main loop --------------------------------------------------------------------------------
  if (!input.carry) {
    await openBatch({ batchId, workflowId: info.workflowId, total });
    upsertSearchAttributes([
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_FILES_TOTAL, value: total },
    ]);
  }
  show();

  // While paused for an outage, probe the recording system and resume when it answers.
  let ended = false;
  const prober = (async () => {
    for (;;) {
      await condition(() => c.outage !== undefined || ended);
      if (ended) return;
      await sleep(policy.probeIntervalMs);
      const outage = c.outage;
      if (!outage || ended) continue;
      const up = await probeRecordingSystem({ target: outage.target }).then(
        () => true,
        () => false,
      );
      if (up && c.outage === outage) {
        c.outage = undefined;
        c.paused = false;
        c.consecutiveFaults = 0;
        log.info('recording system answers again: batch resumed', { target: outage.target });
        show();
      }
    }
  })().catch((err: unknown) => {
    if (!isCancellation(err)) throw err;
  });

  const drain = async () => {
    for (;;) {
      if (c.cancelRequested && !cancelSentToChildren) cancelChildren();
      if (allDone()) return;
      await condition(() => allDone() || (c.cancelRequested && !cancelSentToChildren));
    }
  };

  try {
    for (;;) {
      if (c.cancelRequested) break;
      if (allDone()) break;
      if (shouldContinueAsNew() && pendingStarts === 0 && startsUnderWay === 0) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof syncBatch>({ ...input, carry: c });
      }
      if (canStart()) {
        await startAvailable();
        continue;
      }
      await condition(() => canStart() || allDone() || c.cancelRequested || shouldContinueAsNew());
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    nativeCancel = err;
    c.cancelRequested = true;
    c.cancelReason ??= 'cancellation requested';
  }

  return CancellationScope.nonCancellable(async () => {
    c.outage = undefined;
    if (c.cancelRequested) show();
    await drain();
    // The files report by signal just before they complete: wait for the completions too, so
    // the batch's history (and the Web UI) shows every file of this run closed.
    if (patched(AWAIT_CHILD_COMPLETIONS_PATCH)) await Promise.all(childCompletions);
    let state: BatchState = c.cancelRequested
      ? 'CANCELLED'
      : c.failedBatch
        ? 'FAILED'
        : failedCount() > 0
          ? 'COMPLETED_WITH_FAILURES'
          : 'COMPLETED';
    if (policy.atomic && (state === 'CANCELLED' || state === 'FAILED' || state === 'COMPLETED_WITH_FAILURES')) {
      const undone = await rollbackRecordedFiles({ batchId, reason: `atomic batch ended ${state}` });
      c.counts.recorded -= undone.rolledBack + undone.failed;
      c.counts.rolledBack += undone.rolledBack;
      c.counts.rollbackFailed += undone.failed;
      if (state === 'COMPLETED_WITH_FAILURES') state = 'FAILED';
    }
    const totals = await finishBatch({ batchId, state });
    finalState = state;
    ended = true;
    await prober;
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
      failures: c.failures.slice(0, MAX_FAILURES_KEPT),
      ledger: totals,
    };
    if (nativeCancel) throw nativeCancel;
    return result;
  });
}

function countField(state: FileResult['state']): 'recorded' | 'rolledBack' | 'rollbackFailed' | 'cancelled' {
  switch (state) {
    case 'RECORDED':
      return 'recorded';
    case 'ROLLED_BACK':
      return 'rolledBack';
    case 'ROLLBACK_FAILED':
      return 'rollbackFailed';
    case 'CANCELLED':
      return 'cancelled';
  }
}
