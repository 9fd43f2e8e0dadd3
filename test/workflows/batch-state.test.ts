/**
 * The batch's state transitions, without a server: the window, counts, threshold, redrive,
 * pause, outage and the details text.
 */
import { describe, expect, it } from 'vitest';
import {
  allDone,
  applyFileResult,
  canStart,
  describeBatch,
  endOutage,
  endState,
  inFlightCount,
  newCarry,
  noteTransportFault,
  pause,
  MAX_FAILURES_KEPT,
  MAX_REASON_KEPT,
  noteRedrivesQueued,
  progressOf,
  requestCancel,
  resume,
  setMaxConcurrency,
  takeStarts,
  whyNotCancel,
  whyNotPause,
  whyNotResume,
  whyNotRetry,
  whyNotSetConcurrency,
  type BatchFrame,
} from '../../src/workflows/batch-state';
import { DEFAULT_POLICY, fileKey, type BatchCarry, type FileResult } from '../../src/shared';

function frame(total: number, policy: Partial<BatchFrame['policy']> = {}): BatchFrame {
  return { batchId: 'b1', total, policy: { ...DEFAULT_POLICY, ...policy }, pendingStarts: 0 };
}

/**
 * Starts the files takeStarts picks, as syncBatch does: a manifest index i is file O/f<i>, a
 * redrive queue position p is `redrives[p]` (a manifest index). Returns the indexes started.
 */
function start(c: BatchCarry, f: BatchFrame, redrives: number[] = []): number[] {
  const started = takeStarts(c, f).map((pick) => ('redrive' in pick ? redrives[pick.redrive]! : pick.index));
  for (const i of started) c.inFlight[fileKey('O', `f${i}`)] = { workflowId: `wf-${i}` };
  return started;
}

function ended(i: number, state: FileResult['state'], resends = 0): FileResult {
  return { orderId: 'O', fileName: `f${i}`, state, interactionId: `i-${i}`, resends, reason: `r${i}` };
}

describe('the sliding window', () => {
  it('starts up to max concurrency, then one per file that ends, until the manifest is done', () => {
    const f = frame(5, { maxConcurrency: 2 });
    const c = newCarry(f.policy);
    expect(start(c, f)).toEqual([0, 1]);
    expect(canStart(c, f)).toBe(false);
    expect(applyFileResult(c, ended(0, 'RECORDED'), f)).toBe('done');
    expect(start(c, f)).toEqual([2]);
    for (const i of [1, 2]) applyFileResult(c, ended(i, 'RECORDED'), f);
    expect(start(c, f)).toEqual([3, 4]);
    expect(allDone(c, f)).toBe(false);
    for (const i of [3, 4]) applyFileResult(c, ended(i, 'RECORDED'), f);
    expect(allDone(c, f)).toBe(true);
    expect(c.counts).toMatchObject({ started: 5, recorded: 5 });
    expect(endState(c)).toBe('COMPLETED');
  });

  it('counts pending starts as in flight', () => {
    const f = { ...frame(10, { maxConcurrency: 3 }), pendingStarts: 2 };
    const c = newCarry(f.policy);
    expect(inFlightCount(c, f)).toBe(2);
    expect(takeStarts(c, f)).toEqual([{ index: 0 }]);
  });

  it('counts a file once: a second report of it is a duplicate', () => {
    const f = frame(1);
    const c = newCarry(f.policy);
    start(c, f);
    expect(applyFileResult(c, ended(0, 'RECORDED', 2), f)).toBe('done');
    expect(applyFileResult(c, ended(0, 'RECORDED', 2), f)).toBe('duplicate');
    expect(c.counts.recorded).toBe(1);
    expect(c.counts.resends).toBe(2);
  });

  it('takes a new maximum only when it is a whole number within bounds', () => {
    const c = newCarry(DEFAULT_POLICY);
    expect(setMaxConcurrency(c, 0)).toBe(false);
    expect(setMaxConcurrency(c, 2.5)).toBe(false);
    expect(setMaxConcurrency(c, 2001)).toBe(false);
    expect(setMaxConcurrency(c, 64)).toBe(true);
    expect(c.maxConcurrency).toBe(64);
  });
});

describe('failures, the threshold and redrives', () => {
  it('stops starting files once the tolerated failure percentage is passed, and ends FAILED', () => {
    const f = frame(10, { maxConcurrency: 2, toleratedFailurePercent: 10 });
    const c = newCarry(f.policy);
    start(c, f);
    expect(applyFileResult(c, ended(0, 'ROLLED_BACK'), f)).toBe('failed');
    expect(c.stopStarting).toBe(false); // 10% is tolerated
    applyFileResult(c, ended(1, 'ROLLBACK_FAILED'), f);
    expect(c.stopStarting).toBe(true);
    expect(canStart(c, f)).toBe(false);
    expect(allDone(c, f)).toBe(true);
    expect(endState(c)).toBe('FAILED');
    expect(c.recentFailures.map((x) => x.fileName)).toEqual(['f1', 'f0']);
  });

  it('keeps the latest failures only, however many files fail, with their reasons cut short', () => {
    const f = frame(5_000, { maxConcurrency: 50 });
    const c = newCarry(f.policy);
    const sizes: number[] = [];
    for (let done = 0; done < f.total;) {
      for (const i of start(c, f)) {
        applyFileResult(c, { ...ended(i, 'ROLLED_BACK'), reason: 'x'.repeat(2_000) }, f);
        done += 1;
      }
      sizes.push(JSON.stringify(c).length);
    }
    expect(c.counts.rolledBack).toBe(5_000);
    expect(c.recentFailures).toHaveLength(MAX_FAILURES_KEPT);
    expect(c.recentFailures[0]!.fileName).toBe('f4999');
    expect(c.recentFailures[0]!.reason).toHaveLength(MAX_REASON_KEPT);
    // The carry after 5,000 failures is the size it had after the first 100 (give or take the
    // digits of its counts and file names), where one entry per failed file would add 300 KB.
    expect(Math.max(...sizes) - sizes[1]!).toBeLessThan(1_000);
  });

  it('takes queued redrives in, first, and back under the threshold', () => {
    const f = frame(10, { maxConcurrency: 4, toleratedFailurePercent: 10 });
    const c = newCarry(f.policy);
    start(c, f);
    applyFileResult(c, ended(0, 'ROLLED_BACK'), f);
    applyFileResult(c, ended(1, 'ROLLBACK_FAILED'), f);
    applyFileResult(c, ended(2, 'RECORDED'), f);
    expect(c.failedBatch).toBe(true);
    expect(canStart(c, f)).toBe(false);
    // The ledger queued O/f1 at position 0 of the batch's redrive queue.
    noteRedrivesQueued(c, f, { end: 1, rolledBack: 0, rollbackFailed: 1 }, ['O/f1']);
    expect(c.failedBatch).toBe(false);
    expect(c.counts).toMatchObject({ rolledBack: 1, rollbackFailed: 0 });
    expect(c.recentFailures.map((x) => x.fileName)).toEqual(['f0']);
    expect(c.redrive).toEqual({ queued: 1, taken: 0 });
    // Then every other failed file, O/f0 at position 1.
    noteRedrivesQueued(c, f, { end: 2, rolledBack: 1, rollbackFailed: 0 });
    expect(c.recentFailures).toEqual([]);
    expect(c.counts.rolledBack).toBe(0);
    // Redrives start before new files, in queue order; they are not new files started.
    const started = c.counts.started;
    expect(start(c, f, [1, 0]).slice(0, 2)).toEqual([1, 0]);
    expect(c.redrive).toEqual({ queued: 2, taken: 2 });
    expect(c.counts.started).toBe(started + 1);
  });

  it('a redrive run starts the queued positions only, and counts them as its files', () => {
    const f = { ...frame(3, { maxConcurrency: 2 }), redriveRun: true };
    const c = newCarry(f.policy, { from: 5, to: 8 });
    expect(start(c, f, [0, 0, 0, 0, 0, 10, 11, 12])).toEqual([10, 11]);
    for (const i of [10, 11]) applyFileResult(c, ended(i, 'RECORDED'), f);
    expect(start(c, f, [0, 0, 0, 0, 0, 10, 11, 12])).toEqual([12]);
    applyFileResult(c, ended(12, 'RECORDED'), f);
    expect(allDone(c, f)).toBe(true);
    expect(c.counts).toMatchObject({ started: 3, recorded: 3 });
  });

  it('takes no retry once the batch is cancelled', () => {
    const f = frame(2);
    const c = newCarry(f.policy);
    start(c, f);
    applyFileResult(c, ended(0, 'ROLLED_BACK'), f);
    expect(whyNotRetry(c)).toBeUndefined();
    expect(requestCancel(c, 'stop')).toBe(true);
    expect(requestCancel(c, 'again')).toBe(false);
    expect(c.cancelReason).toBe('stop');
    expect(whyNotRetry(c)).toBe('the batch is cancelled');
    expect(endState(c)).toBe('CANCELLED');
  });
});

describe('pause, resume and the outage pause', () => {
  it('starts nothing while paused', () => {
    const f = frame(3);
    const c = newCarry(f.policy);
    expect(progressOf(c, f, 'RUNNING').pause).toBeUndefined();
    expect(pause(c)).toBe(true);
    expect(pause(c)).toBe(false);
    expect(canStart(c, f)).toBe(false);
    expect(progressOf(c, f, 'PAUSED')).toMatchObject({ paused: true, pause: { by: 'operator' } });
    expect(resume(c)).toBe(true);
    expect(resume(c)).toBe(false);
    expect(canStart(c, f)).toBe(true);
  });

  it('pauses itself after N transport faults in a row, and a recorded file resets the count', () => {
    const f = frame(10, { outagePauseAfter: 3 });
    const c = newCarry(f.policy);
    start(c, f);
    const fault = { target: 'default', error: 'Unavailable: 503' };
    expect(noteTransportFault(c, f.policy, fault, 't1')).toBe(false);
    expect(noteTransportFault(c, f.policy, fault, 't2')).toBe(false);
    applyFileResult(c, ended(0, 'RECORDED'), f);
    expect(c.consecutiveFaults).toBe(0);
    for (const t of ['t3', 't4']) noteTransportFault(c, f.policy, fault, t);
    expect(noteTransportFault(c, f.policy, fault, 't5')).toBe(true);
    expect(c.paused).toBe(true);
    expect(c.outage).toEqual({ target: 'default', since: 't5', lastError: 'Unavailable: 503' });
    expect(describeBatch(c, f, 'PAUSED')).toContain('paused automatically: recording system "default" looks down');
    // The progress query says why, for `image-sync status`.
    expect(progressOf(c, f, 'PAUSED').pause).toEqual({
      by: 'outage',
      target: 'default',
      since: 't5',
      lastError: 'Unavailable: 503',
    });
    const outage = c.outage!;
    expect(endOutage(c, { ...outage })).toBe(false); // a different outage
    expect(endOutage(c, outage)).toBe(true);
    expect(c.paused).toBe(false);
  });

  it('never pauses itself when the limit is 0', () => {
    const c = newCarry({ ...DEFAULT_POLICY, outagePauseAfter: 0 });
    for (let i = 0; i < 50; i++)
      noteTransportFault(c, { ...DEFAULT_POLICY, outagePauseAfter: 0 }, { target: 't', error: 'e' }, 'x');
    expect(c.paused).toBe(false);
  });
});

describe('the details a person reads', () => {
  it('says the state, the counts, the policy and the latest failures in words', () => {
    const f = frame(4, { maxConcurrency: 2, atomic: true });
    const c = newCarry(f.policy);
    start(c, f);
    applyFileResult(c, ended(0, 'RECORDED'), f);
    applyFileResult(c, ended(1, 'ROLLED_BACK', 3), f);
    const text = describeBatch(c, f, 'RUNNING');
    expect(text).toContain('**RUNNING** batch b1: 2 of 4 files done');
    expect(text).toContain('recorded 1 · rolled back 1 · rollback failed 0 · cancelled 0 · in flight 0 · resends 3');
    expect(text).toContain('max concurrency 2 · max resends 3 · atomic');
    expect(text).toContain('- O/f1: ROLLED_BACK, r1');
  });
});

describe("why an operator action cannot apply (the updates' validators)", () => {
  it('refuses what cannot apply, with a reason, and changes nothing', () => {
    const f = frame(4, { maxConcurrency: 2 });
    const c = newCarry(f.policy);
    start(c, f);
    const before = JSON.stringify(c);
    expect(whyNotResume(c)).toBe('the batch is not paused');
    expect(whyNotPause(c)).toBeUndefined();
    expect(whyNotRetry(c)).toBe('nothing to redrive: the batch has no failed files');
    expect(whyNotSetConcurrency(c, 0)).toContain('from 1 to 2000');
    expect(whyNotSetConcurrency(c, '8')).toContain('whole number');
    expect(whyNotSetConcurrency(c, 8)).toBeUndefined();
    expect(JSON.stringify(c)).toBe(before);

    applyFileResult(c, ended(0, 'ROLLED_BACK'), f);
    expect(whyNotRetry(c)).toBeUndefined();
    pause(c);
    expect(whyNotPause(c)).toBe('the batch is already paused');
    expect(whyNotResume(c)).toBeUndefined();
    requestCancel(c);
    for (const why of [whyNotPause(c), whyNotResume(c), whyNotRetry(c), whyNotSetConcurrency(c, 4)])
      expect(why).toBe('the batch is cancelled');
    expect(whyNotCancel(c)).toBe('the batch is already cancelled');
  });
});
