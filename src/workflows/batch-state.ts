/**
 * The batch's state as plain functions over what it carries from run to run (BatchCarry): the
 * window, the counts, the failure threshold, redrives, pause and resume, the outage auto-pause
 * and the details a person reads. No Temporal calls here: syncBatch is the loop that uses them,
 * and the unit tests drive them without a server.
 *
 * The carry stays the same size however many files fail: it keeps counts, the files in flight,
 * the latest failures (at most MAX_FAILURES_KEPT) and how far the batch has read its redrive
 * queue. Which files failed, and their redrives, are in the ledger.
 *
 * Functions that change the state change the carry they are given, and say what changed.
 */
import { POLICY_BOUNDS } from '../config/policy-bounds';
import { describeLimits } from './batch-limits';
import {
  fileKey,
  MAX_FAILURES_KEPT,
  type BatchCarry,
  type BatchPolicy,
  type BatchState,
  type FailureInfo,
  type FileResult,
  type Progress,
  type SyncItem,
} from '../shared';

export { MAX_FAILURES_KEPT };
/** The longest failure reason a batch keeps; the ledger has the whole text. */
export const MAX_REASON_KEPT = 300;
/** The most files a batch may have in flight. */
export const MAX_CONCURRENCY_LIMIT = POLICY_BOUNDS.maxConcurrency.max;

/** What a batch needs besides its carry to answer questions about itself. */
export interface BatchFrame {
  batchId: string;
  total: number;
  policy: BatchPolicy;
  /** Files picked for a start whose manifest item is still being read. */
  pendingStarts: number;
  /** A redrive run of an ended batch: its redrives count as started files. */
  redriveRun?: boolean;
  /** Latest failures kept (MAX_FAILURES_KEPT when absent). */
  failuresKept?: number;
}

/**
 * A new batch's carry; a redrive run of an ended batch starts no manifest file and reads the
 * positions [from, to) of the batch's redrive queue.
 */
export function newCarry(policy: BatchPolicy, redrive?: { from: number; to: number }): BatchCarry {
  return {
    nextIndex: redrive ? Number.MAX_SAFE_INTEGER : 0,
    inFlight: {},
    counts: { started: 0, inFlight: 0, recorded: 0, rolledBack: 0, rollbackFailed: 0, cancelled: 0, resends: 0 },
    recentFailures: [],
    redrive: redrive ? { queued: redrive.to, taken: redrive.from } : { queued: 0, taken: 0 },
    paused: false,
    consecutiveFaults: 0,
    cancelRequested: false,
    maxConcurrency: policy.maxConcurrency,
    stopStarting: false,
    failedBatch: false,
  };
}

export function failedCount(c: BatchCarry): number {
  return c.counts.rolledBack + c.counts.rollbackFailed;
}

export function overThreshold(c: BatchCarry, f: Pick<BatchFrame, 'total' | 'policy'>): boolean {
  return f.total > 0 && (failedCount(c) * 100) / f.total > f.policy.toleratedFailurePercent;
}

export function inFlightCount(c: BatchCarry, f: Pick<BatchFrame, 'pendingStarts'>): number {
  let n = f.pendingStarts;
  for (const _ in c.inFlight) n += 1;
  return n;
}

/** Whether another file may start now. */
export function canStart(c: BatchCarry, f: BatchFrame): boolean {
  return (
    !c.paused &&
    !c.cancelRequested &&
    !c.stopStarting &&
    inFlightCount(c, f) < c.maxConcurrency &&
    (redrivesWaiting(c) || c.nextIndex < f.total)
  );
}

/** Whether queued redrives wait for a slot. */
export function redrivesWaiting(c: BatchCarry): boolean {
  return c.redrive.taken < c.redrive.queued;
}

/** Whether nothing is in flight and nothing more will start. */
export function allDone(c: BatchCarry, f: BatchFrame): boolean {
  return (
    inFlightCount(c, f) === 0 &&
    (c.cancelRequested || c.stopStarting || (!redrivesWaiting(c) && c.nextIndex >= f.total))
  );
}

/** A file to start: an index of the manifest, or a position of the batch's redrive queue. */
export type StartPick = { index: number } | { redrive: number };

/** Takes the files to start now: redrives first, then new files of the manifest. */
export function takeStarts(c: BatchCarry, f: BatchFrame): StartPick[] {
  const picks: StartPick[] = [];
  const frame = { ...f };
  while (canStart(c, frame)) {
    if (redrivesWaiting(c)) {
      picks.push({ redrive: c.redrive.taken++ });
      if (f.redriveRun) c.counts.started += 1;
    } else {
      picks.push({ index: c.nextIndex++ });
      c.counts.started += 1;
    }
    frame.pendingStarts += 1;
  }
  return picks;
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

/**
 * Counts how one file ended, once: a second report of the same file is a duplicate. A failed
 * file (a redrive candidate in the ledger) joins the latest failures and may take the batch past
 * its failure threshold.
 */
export function applyFileResult(
  c: BatchCarry,
  result: FileResult,
  f: Pick<BatchFrame, 'total' | 'policy' | 'failuresKept'>,
): 'duplicate' | 'failed' | 'done' {
  const key = fileKey(result.orderId, result.fileName);
  const slot = c.inFlight[key];
  if (!slot) return 'duplicate';
  delete c.inFlight[key];
  if (result.state === 'RECORDED') c.consecutiveFaults = 0;
  c.counts[countField(result.state)] += 1;
  c.counts.resends += result.resends;
  if (result.state !== 'ROLLED_BACK' && result.state !== 'ROLLBACK_FAILED') return 'done';
  const reason = result.reason ?? 'unknown';
  c.recentFailures.unshift({
    orderId: result.orderId,
    fileName: result.fileName,
    state: result.state,
    reason: reason.length > MAX_REASON_KEPT ? `${reason.slice(0, MAX_REASON_KEPT - 1)}…` : reason,
    resends: result.resends,
  });
  const kept = Math.min(f.failuresKept ?? MAX_FAILURES_KEPT, MAX_FAILURES_KEPT);
  if (c.recentFailures.length > kept) c.recentFailures.length = kept;
  if (overThreshold(c, f)) c.stopStarting = c.failedBatch = true;
  return 'failed';
}

/** What a retry queued in the ledger (see activities/redrive.ts). */
export interface RedrivesQueuedTally {
  /** The batch's queue end after the retry. */
  end: number;
  /** Of the files queued, how many had ended ROLLED_BACK and how many ROLLBACK_FAILED. */
  rolledBack: number;
  rollbackFailed: number;
}

/**
 * Takes the files a retry queued in the ledger into the batch: they wait for a slot, are no
 * longer counted as failed, and leave the latest failures (the named ones; all for a retry of
 * every failed file).
 */
export function noteRedrivesQueued(
  c: BatchCarry,
  f: Pick<BatchFrame, 'total' | 'policy'>,
  queued: RedrivesQueuedTally,
  files?: string[],
): void {
  c.redrive.queued = Math.max(c.redrive.queued, queued.end);
  // Files that failed in an earlier run of the batch were never counted by this one.
  c.counts.rolledBack = Math.max(0, c.counts.rolledBack - queued.rolledBack);
  c.counts.rollbackFailed = Math.max(0, c.counts.rollbackFailed - queued.rollbackFailed);
  if (files && files.length > 0) {
    const named = new Set(files);
    c.recentFailures = c.recentFailures.filter((x) => !named.has(fileKey(x.orderId, x.fileName)));
  } else {
    c.recentFailures = [];
  }
  // A redrive may bring a batch that had stopped starting files back under its threshold.
  c.stopStarting = c.failedBatch = overThreshold(c, f);
}

// --- why an operator action cannot apply (the updates' validators); undefined: it can ---------

export function whyNotCancel(c: BatchCarry): string | undefined {
  return c.cancelRequested ? 'the batch is already cancelled' : undefined;
}

export function whyNotPause(c: BatchCarry): string | undefined {
  if (c.cancelRequested) return 'the batch is cancelled';
  return c.paused ? 'the batch is already paused' : undefined;
}

export function whyNotResume(c: BatchCarry): string | undefined {
  if (c.cancelRequested) return 'the batch is cancelled';
  return c.paused ? undefined : 'the batch is not paused';
}

export function whyNotSetConcurrency(c: BatchCarry, n: unknown): string | undefined {
  if (c.cancelRequested) return 'the batch is cancelled';
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY_LIMIT)
    return `max concurrency must be a whole number from 1 to ${MAX_CONCURRENCY_LIMIT}, got ${String(n)}`;
  return undefined;
}

/**
 * Why a retry cannot apply, as far as the batch knows by itself; which files are redrive
 * candidates is the ledger's to say (the CLI asks it before the update, the handler after).
 */
export function whyNotRetry(c: BatchCarry): string | undefined {
  if (c.cancelRequested) return 'the batch is cancelled';
  return failedCount(c) === 0 ? NOTHING_TO_REDRIVE : undefined;
}

export const NOTHING_TO_REDRIVE = 'nothing to redrive: the batch has no failed files';

/** Pauses the batch (no file starts); false when it was paused already or is cancelled. */
export function pause(c: BatchCarry): boolean {
  if (c.cancelRequested || c.paused) return false;
  c.paused = true;
  return true;
}

/** Resumes the batch, ending an outage pause too; false when it was not paused. */
export function resume(c: BatchCarry): boolean {
  if (!c.paused) return false;
  c.paused = false;
  c.outage = undefined;
  c.consecutiveFaults = 0;
  return true;
}

/** Asks for the batch's cancellation; false when it was asked already. */
export function requestCancel(c: BatchCarry, reason?: string): boolean {
  if (c.cancelRequested) return false;
  c.cancelRequested = true;
  c.cancelReason = reason ?? 'cancelled by operator';
  return true;
}

export function setMaxConcurrency(c: BatchCarry, n: number): boolean {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY_LIMIT) return false;
  c.maxConcurrency = n;
  return true;
}

/**
 * Counts a transport fault; after `outagePauseAfter` in a row the batch pauses itself for an
 * outage of that target. Returns true when this fault paused it.
 */
export function noteTransportFault(
  c: BatchCarry,
  policy: BatchPolicy,
  fault: { target: string; error: string },
  nowIso: string,
): boolean {
  c.consecutiveFaults += 1;
  const limit = policy.outagePauseAfter;
  if (limit <= 0 || c.consecutiveFaults < limit || c.outage || c.cancelRequested) return false;
  c.outage = { target: fault.target, since: nowIso, lastError: fault.error };
  c.paused = true;
  return true;
}

/** A probe answered: the outage pause ends, unless another one began since. */
export function endOutage(c: BatchCarry, outage: NonNullable<BatchCarry['outage']>): boolean {
  if (c.outage !== outage) return false;
  c.outage = undefined;
  c.paused = false;
  c.consecutiveFaults = 0;
  return true;
}

/** How the batch ends, before an atomic batch's rollback. */
export function endState(c: BatchCarry): BatchState {
  if (c.cancelRequested) return 'CANCELLED';
  if (c.failedBatch) return 'FAILED';
  return failedCount(c) > 0 ? 'COMPLETED_WITH_FAILURES' : 'COMPLETED';
}

export function runningState(c: BatchCarry): BatchState {
  return c.paused ? 'PAUSED' : 'RUNNING';
}

export function progressOf(c: BatchCarry, f: BatchFrame, state: BatchState): Progress {
  const pause = c.outage ? { by: 'outage' as const, ...c.outage } : { by: 'operator' as const };
  return {
    ...c.counts,
    total: f.total,
    inFlight: inFlightCount(c, f),
    paused: c.paused,
    state,
    ...(c.paused ? { pause } : {}),
    maxConcurrency: c.maxConcurrency,
    ...(c.limits ? { limits: c.limits } : {}),
  };
}

/** The result counted for a file workflow that ended without one (failed, terminated, timed out). */
export function abnormalEnd(item: Pick<SyncItem, 'orderId' | 'fileName'>, reason: string): FileResult {
  return {
    orderId: item.orderId,
    fileName: item.fileName,
    state: 'ROLLBACK_FAILED',
    interactionId: null,
    resends: 0,
    reason: `file workflow ended abnormally: ${reason}`,
  };
}

/** The counts every notification of the batch carries. */
export function notifyFields(c: BatchCarry, f: BatchFrame, state: BatchState) {
  const { recorded, rolledBack, rollbackFailed, cancelled } = c.counts;
  return { batchId: f.batchId, state, total: f.total, recorded, rolledBack, rollbackFailed, cancelled };
}

/** Counts a notification that could not be delivered, for the details. */
export function noteNotifyFailure(c: BatchCarry, text: string): void {
  c.notifyFailures = { count: (c.notifyFailures?.count ?? 0) + 1, last: text };
}

export function failuresOf(c: BatchCarry): FailureInfo[] {
  return c.recentFailures.slice(0, MAX_FAILURES_KEPT);
}

/** The batch's current details, in words, as the Web UI shows them. */
export function describeBatch(c: BatchCarry, f: BatchFrame, state: BatchState): string {
  const p = progressOf(c, f, state);
  const done = p.recorded + p.rolledBack + p.rollbackFailed + p.cancelled;
  const lines = [
    `**${state}** batch ${f.batchId}: ${done} of ${f.total} files done`,
    `recorded ${p.recorded} · rolled back ${p.rolledBack} · rollback failed ${p.rollbackFailed} · cancelled ${p.cancelled} · in flight ${p.inFlight} · resends ${p.resends}`,
    `max concurrency ${c.maxConcurrency} · max resends ${f.policy.maxResends}${f.policy.atomic ? ' · atomic' : ''}`,
  ];
  if (c.outage) {
    lines.push(
      `paused automatically: recording system "${c.outage.target}" looks down since ${c.outage.since} (${c.outage.lastError}); probing every ${Math.round(f.policy.probeIntervalMs / 1000)} s, resumes by itself`,
    );
  } else if (c.paused) lines.push('paused by an operator: no new file starts until resume');
  const limits = describeLimits(c.limits);
  if (limits) lines.push(limits);
  if (c.notifyFailures) {
    lines.push(`notifications not delivered: ${c.notifyFailures.count} (last: ${c.notifyFailures.last})`);
  }
  if (c.cancelRequested) lines.push(`cancel requested: ${c.cancelReason ?? ''}`);
  if (c.redrive.taken < c.redrive.queued) lines.push(`redrives waiting: ${c.redrive.queued - c.redrive.taken}`);
  if (c.recentFailures.length > 0) {
    lines.push('failed files (latest first):');
    for (const x of c.recentFailures.slice(0, 10)) lines.push(`- ${x.orderId}/${x.fileName}: ${x.state}, ${x.reason}`);
  }
  return lines.join('\n\n');
}
