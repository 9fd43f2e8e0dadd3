/**
 * What the workflows decide, with stub activities (test/helpers/stub-worker.ts) on the shared
 * dev server: the resend backoff and threshold, the batch's failure threshold, the outage pause
 * and cancellation. Quick beside the end-to-end files, which check the same behaviour through
 * the simulator, the HTTP adapter and a real ledger.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { describe, expect } from 'vitest';
import type { Delivery } from '../../src/activities';
import { cancelSignal, progressQuery, SA_STATE } from '../../src/shared';
import { it } from '../helpers/fixture';
import { rejected, unavailable } from '../helpers/stub-worker';
import { waitFor } from '../helpers/wait';

const digest = { sha256: 'cd'.repeat(32), size: 1 };
const delivered: Delivery = { kind: 'sent', ...digest, verdict: { ok: true } };
const missing: Delivery = {
  kind: 'sent',
  ...digest,
  verdict: { ok: false, rule: 'missing', detail: 'the recording system holds no such file' },
};

describe('resends', () => {
  it('waits the backoff before the first resend and doubles it for the next', async ({ stubWorker }) => {
    let sends = 0;
    const w = await stubWorker({ deliverFile: async () => (++sends <= 2 ? missing : delivered) });
    const handle = await w.startFile(w.items(1)[0]!, { maxResends: 5, resendBackoffMs: 40 });
    expect(await handle.result()).toMatchObject({ state: 'RECORDED', resends: 2 });
    expect(w.callsOf('deliverFile')).toHaveLength(3);
    expect(w.callsOf('noteResend').map((c) => c.args.resends)).toEqual([1, 2]);
    // The waits as the workflow asked for them: its timers.
    const timers = ((await handle.fetchHistory()).events ?? []).flatMap((e) =>
      e.timerStartedEventAttributes ? [tsToMs(e.timerStartedEventAttributes.startToFireTimeout)] : [],
    );
    expect(timers).toEqual([40, 80]);
    expect(w.callsOf('compensate')).toEqual([]);
  });

  it('rolls a file back once its resends reach the threshold', async ({ stubWorker }) => {
    const w = await stubWorker({ deliverFile: async () => missing });
    const handle = await w.startFile(w.items(1)[0]!, { maxResends: 1, resendBackoffMs: 10 });
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'ROLLED_BACK', resends: 1 });
    expect(result.reason).toMatch(/^gave up after 1 resends: verification failed \(missing\)/);
    expect(w.callsOf('deliverFile')).toHaveLength(2);
    const [rollback, ...more] = w.callsOf('compensate');
    expect(more).toEqual([]);
    expect(rollback?.args).toMatchObject({ finalState: 'ROLLED_BACK', reason: result.reason });
  });

  it('never resends what no resend can fix', async ({ stubWorker }) => {
    const w = await stubWorker({
      deliverFile: async () => {
        throw rejected();
      },
    });
    const handle = await w.startFile(w.items(1)[0]!, { maxResends: 3, resendBackoffMs: 10 });
    expect(await handle.result()).toMatchObject({ state: 'ROLLED_BACK', resends: 0 });
    expect(w.callsOf('deliverFile')).toHaveLength(1);
    expect(w.callsOf('compensate')).toHaveLength(1);
  });
});

describe("the batch's failure threshold", () => {
  it('past the tolerated failure percentage the batch starts no more files and ends FAILED', async ({ stubWorker }) => {
    const w = await stubWorker({
      deliverFile: async () => {
        throw rejected();
      },
    });
    const handle = await w.startBatch(w.items(20), { maxConcurrency: 2, maxResends: 0, toleratedFailurePercent: 10 });
    const result = await handle.result();
    expect(result.state).toBe('FAILED');
    // 3 of 20 failed files pass 10%; at most one more window was in flight by then.
    expect(result.rolledBack).toBeGreaterThanOrEqual(3);
    expect(result.rolledBack).toBeLessThanOrEqual(4);
    expect(w.callsOf('deliverFile')).toHaveLength(result.rolledBack);
  });

  it('up to the tolerated failure percentage every file is started and the batch completes', async ({ stubWorker }) => {
    let sends = 0;
    const w = await stubWorker({
      deliverFile: async () => {
        if (++sends % 5 === 0) throw rejected(); // one file in five
        return delivered;
      },
    });
    const handle = await w.startBatch(w.items(20), { maxConcurrency: 10, maxResends: 0, toleratedFailurePercent: 20 });
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'COMPLETED_WITH_FAILURES', recorded: 16, rolledBack: 4 });
    expect(w.callsOf('deliverFile')).toHaveLength(20);
  });
});

describe('the outage pause', () => {
  it('pauses after N transport faults in a row, probes while paused, and resumes when a probe succeeds', async ({
    stubWorker,
  }) => {
    let down = true;
    const w = await stubWorker({
      deliverFile: async () => {
        if (down) throw unavailable();
        return delivered;
      },
      probeRecordingSystem: async () => {
        if (down) throw unavailable();
      },
    });
    const handle = await w.startBatch(w.items(6), {
      maxConcurrency: 2,
      maxResends: 20,
      resendBackoffMs: 10,
      outagePauseAfter: 2,
      probeIntervalMs: 100,
    });
    const paused = await waitFor(
      'the automatic pause',
      async () => {
        const p = await handle.query(progressQuery);
        return p.paused && p;
      },
      20_000,
    );
    expect(paused.state).toBe('PAUSED');
    expect((await handle.describe()).typedSearchAttributes.get(SA_STATE)).toBe('PAUSED');
    await waitFor('a failed probe', () => w.callsOf('probeRecordingSystem').length >= 1);
    expect((await handle.query(progressQuery)).started).toBe(paused.started); // still paused

    down = false;
    await waitFor('the batch to resume', async () => !(await handle.query(progressQuery)).paused, 20_000);
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'COMPLETED', recorded: 6 });
  });

  it('never pauses when the limit is 0', async ({ stubWorker }) => {
    let sends = 0;
    const w = await stubWorker({
      deliverFile: async () => {
        if (++sends <= 8) throw unavailable();
        return delivered;
      },
    });
    const handle = await w.startBatch(w.items(4), {
      maxConcurrency: 2,
      maxResends: 20,
      resendBackoffMs: 10,
      outagePauseAfter: 0,
      probeIntervalMs: 100,
    });
    expect(await handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 4 });
    expect(w.callsOf('probeRecordingSystem')).toEqual([]);
  });
});

describe('cancellation', () => {
  // Every file misses its first send and waits a minute to resend: in flight until cancelled.
  const waitingFiles = { deliverFile: async () => missing };
  const policy = { resendBackoffMs: 60_000 };

  it('the cancel signal starts no more files and rolls back the files in flight', async ({ stubWorker }) => {
    const w = await stubWorker(waitingFiles);
    const handle = await w.startBatch(w.items(6), { ...policy, maxConcurrency: 3 });
    await waitFor('three files waiting to resend', () => w.callsOf('noteResend').length >= 3);
    await handle.signal(cancelSignal, 'operator test');
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'CANCELLED', cancelled: 3, recorded: 0 });
    expect(w.callsOf('deliverFile')).toHaveLength(3); // the other three never started
    const rollbacks = w.callsOf('compensate').map((c) => c.args);
    expect(rollbacks).toHaveLength(3);
    for (const r of rollbacks) expect(r).toMatchObject({ reason: 'operator test', finalState: 'CANCELLED' });
  });

  it('a cancellation request ends the batch cancelled, its files in flight rolled back', async ({ stubWorker }) => {
    const w = await stubWorker(waitingFiles);
    const handle = await w.startBatch(w.items(4), { ...policy, maxConcurrency: 2 });
    await waitFor('two files waiting to resend', () => w.callsOf('noteResend').length >= 2);
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(w.callsOf('compensate').map((c) => c.args.finalState)).toEqual(['CANCELLED', 'CANCELLED']);
  });

  it('a file cancelled before its first send ends CANCELLED with no rollback', async ({ stubWorker }) => {
    const w = await stubWorker();
    const handle = await w.startFile(w.items(1)[0]!, {}, { cancelFirst: 'before start' });
    expect(await handle.result()).toMatchObject({ state: 'CANCELLED', reason: 'before start' });
    expect(w.callsOf('deliverFile')).toEqual([]);
    expect(w.callsOf('markCancelled').map((c) => c.args.reason)).toEqual(['before start']);
    expect(w.callsOf('compensate')).toEqual([]);
  });
});
