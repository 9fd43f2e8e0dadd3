/**
 * intake: the long-running workflow that takes an order's files submitted in real time (through
 * the intake server) and delivers each with one syncFile child, as a batch does.
 *
 * One intake runs per target, with the workflow id of its ledger batch, `intake-<target>`
 * (../intake/workflow-api.ts): submissions arrive by Update-with-Start (the backend starts the
 * intake if none runs), and everything a batch guarantees holds for its files, since they are
 * the batch's own machinery: the file workflow (verification, resends under the threshold,
 * non-cancellable compensation, the ledger, the per-file claim), the limits, the outage pause,
 * the notifications, and the operator actions (batch-handlers.ts: pause, resume, cancel, retry,
 * set-concurrency, set-limits, the progress and failures queries).
 *
 * Per target rather than per order: the number of long-running workflows is bounded by the
 * targets file, not by the platform's orders, and a pause, a limit or an outage pause applies to
 * everything sent to that target, as on a batch.
 *
 * State stays bounded. The intake carries the batch's carry (counts, the files in flight, the
 * latest failures), the files accepted and not yet started (at most `maxWaiting`: a submission
 * that would pass it is refused by the update's validator, before it enters history, and the
 * platform is told to come back later), and the keys of the latest RECENT_KEYS_KEPT submissions.
 * It continues as new before its history grows large; no per-file history crosses runs. Files in
 * flight when it continues are awaited by activity, as a batch awaits them.
 *
 * A cancelled intake ends once every file in flight has ended; files still waiting are not
 * started (the result counts them, and the ledger notes them, so the order's status says
 * CANCELLED for them), and the next submission starts a new intake.
 */
import {
  ApplicationFailure,
  CancellationScope,
  proxyActivities,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, QueuedRedrive } from '../activities';
import { FailureType } from '../failures';
import {
  INTAKE_CLOSED_FAILURE,
  INTAKE_PRIORITY_KEY,
  DEFAULT_MAX_WAITING_BYTES,
  RECENT_KEYS_KEPT,
  SATURATED_FAILURE,
  submitUpdate,
  type IntakeInput,
  type IntakeParcel,
  type IntakeReceipt,
} from '../intake/workflow-api';
import {
  SA_BATCH_ID,
  SA_FILES_FAILED,
  SA_STATE,
  SA_TARGET,
  fileKey,
  fileWorkflowId,
  type BatchResult,
  type BatchState,
  type FileResult,
  type NotifyEventName,
  type SyncItem,
} from '../shared';
import { finishBatch, loadRedrives, openBatch } from './batch-activities';
import { probeDuringOutages, signalCancelToFiles, startFile, watchAwaited, type FileStarts } from './batch-run';
import * as batch from './batch-state';
import { setBatchHandlers } from './batch-handlers';
import { createNotifier } from './notifier';
import { ledgerPatiently } from './ledger-patience';
import { ACTIVITY_OPTIONS } from './options';

const { dropIntakeFiles } = proxyActivities<Activities>(ACTIVITY_OPTIONS.batch);

/** Continue as new once a run's history holds this many events. */
export const INTAKE_CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;
/** Redrives read from the ledger per activity call. */
const REDRIVE_PAGE = 200;

/** What the intake returns once cancelled: the batch's result, and the files it never started. */
export interface IntakeResult extends BatchResult {
  notStarted: number;
}

/** A waiting file's size as the intake carries it: its JSON, in UTF-8 bytes. */
function carriedBytes(item: SyncItem): number {
  return new TextEncoder().encode(JSON.stringify(item)).length;
}

export async function intake(input: IntakeInput): Promise<IntakeResult> {
  const { target, policy } = input;
  /** The waiting bounds: the intake's own, then those the latest submission brought from its server. */
  let bounds = { maxWaiting: input.maxWaiting, maxWaitingBytes: input.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES };
  const { batchId } = input;
  const info = workflowInfo();
  const c = input.carry?.batch ?? batch.newCarry(policy);
  const waiting: SyncItem[] = input.carry?.waiting ?? [];
  const recentKeys: string[] = input.carry?.recentKeys ?? [];
  let accepted = input.carry?.accepted ?? 0;
  const frame: batch.BatchFrame = { batchId, total: accepted, policy, pendingStarts: 0 };
  let finalState: BatchState | undefined;
  let cancelSentToChildren = false;
  let nativeCancel: unknown;
  let ended = false;
  let startsUnderWay = 0;
  let redrivePage: { start: number; items: QueuedRedrive[] } = { start: 0, items: [] };
  const awaited = new Map<string, string>();
  for (const [key, slot] of Object.entries(c.inFlight)) awaited.set(slot.workflowId, key);

  const stateNow = (): BatchState => finalState ?? batch.runningState(c);
  const details = (state: BatchState) =>
    `intake for target ${target}: ${waiting.length} waiting (at most ${bounds.maxWaiting}), ${accepted} accepted in all\n\n` +
    batch.describeBatch(c, frame, state);
  const describe = (state: BatchState = stateNow()) => setCurrentDetails(details(state));
  const tell = (detail: string) => setCurrentDetails(`${detail}\n\n${details(stateNow())}`);
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
    const outcome = batch.applyFileResult(c, result, frame);
    if (outcome === 'failed') show();
    else if (outcome === 'done') describe();
  };
  const announce = (event: 'batch.paused' | 'batch.resumed', by: string, more: Record<string, unknown> = {}) => {
    show();
    emit(event, { by, ...more });
  };
  setBatchHandlers({ c, frame, stateNow, show, describe, tell, announce });

  // --- submissions ------------------------------------------------------------------------------
  const waitingIndex = (item: SyncItem) =>
    waiting.findIndex((w) => w.orderId === item.orderId && w.fileName === item.fileName);

  setHandler(
    submitUpdate,
    (parcel: IntakeParcel): IntakeReceipt => {
      if (recentKeys.includes(parcel.idempotencyKey)) return { accepted: 0, waiting: waiting.length, replayed: true };
      if (parcel.bounds) bounds = parcel.bounds;
      let added = 0;
      for (const file of parcel.files) {
        const item: SyncItem = { ...file, target };
        const at = waitingIndex(item);
        // Submitted again before it started: the latest submission's reference is the one sent.
        if (at >= 0) waiting[at] = item;
        else {
          waiting.push(item);
          added += 1;
        }
      }
      accepted += added;
      frame.total = accepted;
      recentKeys.push(parcel.idempotencyKey);
      if (recentKeys.length > RECENT_KEYS_KEPT) recentKeys.splice(0, recentKeys.length - RECENT_KEYS_KEPT);
      describe();
      return { accepted: added, waiting: waiting.length, replayed: false };
    },
    {
      validator: (parcel: IntakeParcel) => {
        if (c.cancelRequested || ended) {
          throw ApplicationFailure.nonRetryable(`the intake of target ${target} is cancelled`, INTAKE_CLOSED_FAILURE);
        }
        if (typeof parcel !== 'object' || parcel === null || !Array.isArray(parcel.files)) {
          throw ApplicationFailure.nonRetryable('a submission lists its files', FailureType.BadInput);
        }
        if (recentKeys.includes(parcel.idempotencyKey)) return;
        const { maxWaiting, maxWaitingBytes } = parcel.bounds ?? bounds;
        // Where each file already waits (it is replaced in place), or -1: it joins the queue.
        const places = parcel.files.map((f) => waitingIndex(f));
        const joining = places.filter((at) => at < 0).length;
        if (waiting.length + joining > maxWaiting) {
          throw ApplicationFailure.nonRetryable(
            `${waiting.length} files wait to be sent to target ${target}; ${joining} more would pass the intake's bound of ${maxWaiting}`,
            SATURATED_FAILURE,
          );
        }
        // The waiting files travel in each continue-as-new's input: bounded in bytes too.
        const bytesNow = waiting.reduce((n, w) => n + carriedBytes(w), 0);
        let bytesAfter = bytesNow;
        parcel.files.forEach((file, i) => {
          const at = places[i]!;
          bytesAfter += carriedBytes({ ...file, target }) - (at >= 0 ? carriedBytes(waiting[at]!) : 0);
        });
        if (bytesAfter > maxWaitingBytes) {
          throw ApplicationFailure.nonRetryable(
            `the files waiting for target ${target} take ${bytesNow} bytes as the intake carries them; this submission would bring them to ${bytesAfter}, past the intake's bound of ${maxWaitingBytes} bytes`,
            SATURATED_FAILURE,
          );
        }
      },
    },
  );

  // --- starting files ---------------------------------------------------------------------------
  async function redriveAt(position: number): Promise<QueuedRedrive> {
    if (position < redrivePage.start || position >= redrivePage.start + redrivePage.items.length) {
      const items = await loadRedrives({ batchId, from: position, limit: REDRIVE_PAGE });
      if (items.length === 0) {
        throw ApplicationFailure.nonRetryable(
          `redrive queue of ${batchId} has no position ${position}`,
          FailureType.BadInput,
        );
      }
      redrivePage = { start: position, items };
    }
    return redrivePage.items[position - redrivePage.start]!;
  }

  /** The first waiting file that is not in flight now (a file submitted again waits for its first send). */
  const nextWaiting = (): number => waiting.findIndex((w) => !(fileKey(w.orderId, w.fileName) in c.inFlight));

  const canStart = () =>
    !c.paused &&
    !c.cancelRequested &&
    batch.inFlightCount(c, frame) < c.maxConcurrency &&
    (batch.redrivesWaiting(c) || nextWaiting() >= 0);

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
    const key = fileKey(file.item.orderId, file.item.fileName);
    const summary = `${key} → ${target} (intake${file.attempt ? `, redrive ${file.attempt}` : ''})`;
    return startFile(run, file, { target, summary, priority: { priorityKey: INTAKE_PRIORITY_KEY } });
  }

  /** Starts what the window allows: queued redrives first, then waiting files, oldest first. */
  async function startAvailable(): Promise<void> {
    const files: QueuedRedrive[] = [];
    let redrives = 0;
    try {
      while (canStart()) {
        if (batch.redrivesWaiting(c)) {
          // Counted in the window while its queue entry is read.
          frame.pendingStarts += 1;
          redrives += 1;
          files.push(await redriveAt(c.redrive.taken++));
        } else {
          const item = waiting.splice(nextWaiting(), 1)[0]!;
          c.counts.started += 1;
          files.push({ item, attempt: 0 });
          // Taken now, so the window and nextWaiting see it before its start is under way.
          c.inFlight[fileKey(item.orderId, item.fileName)] = {
            workflowId: fileWorkflowId(batchId, item.orderId, item.fileName),
          };
        }
      }
    } finally {
      frame.pendingStarts -= redrives;
    }
    if (files.length === 0) return;
    startsUnderWay += 1;
    // Not awaited: the loop goes on filling slots as files end while these starts are confirmed.
    void CancellationScope.nonCancellable(() => Promise.all(files.map(startOne))).finally(() => {
      startsUnderWay -= 1;
      describe();
    });
  }

  function cancelChildren(): void {
    cancelSentToChildren = true;
    signalCancelToFiles(c);
  }

  const shouldContinueAsNew = () => {
    const now = workflowInfo();
    return (
      now.historyLength >= (input.continueAsNewAfterEvents ?? INTAKE_CONTINUE_AS_NEW_AFTER_EVENTS) ||
      now.continueAsNewSuggested
    );
  };

  // --- main loop --------------------------------------------------------------------------------
  if (!input.carry) {
    c.limits = await ledgerPatiently(
      () => openBatch({ batchId, workflowId: info.workflowId, total: 0, limits: undefined }),
      tell,
    );
    upsertSearchAttributes([
      { key: SA_BATCH_ID, value: batchId },
      { key: SA_TARGET, value: target },
    ]);
  }
  show();
  const watcher = watchAwaited(run);

  const prober = probeDuringOutages({ c, policy, ended: () => ended, what: 'intake', announce });

  try {
    for (;;) {
      if (c.cancelRequested) break;
      if (shouldContinueAsNew() && frame.pendingStarts === 0) {
        if (startsUnderWay > 0) {
          // The next run carries the files in flight by run id: the starts under way end first.
          await condition(() => startsUnderWay === 0);
          continue;
        }
        await condition(allHandlersFinished);
        await notifier.settle();
        await continueAsNew<typeof intake>({
          ...input,
          carry: { batch: c, waiting, accepted, recentKeys },
        });
      }
      if (canStart()) {
        await startAvailable();
        continue;
      }
      await condition(() => canStart() || c.cancelRequested || shouldContinueAsNew());
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
    show();
    for (;;) {
      if (!cancelSentToChildren) cancelChildren();
      if (batch.allDone(c, frame)) break;
      await condition(() => batch.allDone(c, frame));
    }
    const state: BatchState = 'CANCELLED';
    if (waiting.length > 0) {
      const files = waiting.map((w) => ({ orderId: w.orderId, fileName: w.fileName, target }));
      await ledgerPatiently(() => dropIntakeFiles({ files }), tell);
    }
    const totals = await ledgerPatiently(() => finishBatch({ batchId, state }), tell);
    finalState = state;
    ended = true;
    await Promise.all([prober, watcher]);
    emit('batch.finished', { resends: c.counts.resends, notStarted: waiting.length });
    await notifier.settle();
    await condition(allHandlersFinished);
    show(state);
    const result: IntakeResult = {
      batchId,
      state,
      total: accepted,
      recorded: c.counts.recorded,
      rolledBack: c.counts.rolledBack,
      rollbackFailed: c.counts.rollbackFailed,
      cancelled: c.counts.cancelled,
      resends: c.counts.resends,
      failures: batch.failuresOf(c),
      ledger: totals,
      notStarted: waiting.length,
    };
    if (nativeCancel) throw nativeCancel;
    return result;
  });
}
