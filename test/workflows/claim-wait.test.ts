/**
 * What a file workflow does when its file is claimed by another live interaction, with stub
 * activities: it looks again with a bounded, growing wait and sends nothing meanwhile; a file
 * whose bytes are already held ends RECORDED with no send; a cancel while waiting rolls back.
 * The claims themselves run against real ledgers in test/ledger/claims.test.ts and end to end
 * in test/workflows/one-truth.test.ts.
 */
import { tsToMs } from '@temporalio/common/lib/time';
import { describe, expect } from 'vitest';
import type { Delivery } from '../../src/activities';
import { cancelSignal } from '../../src/shared';
import { CLAIM_FIRST_WAIT_MS } from '../../src/workflows/sync-file';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

const digest = { sha256: 'cd'.repeat(32), size: 1 };
const delivered: Delivery = { kind: 'sent', ...digest, verdict: { ok: true } };
const busy: Delivery = {
  kind: 'busy',
  holder: { interactionId: 'ix-other', batchId: 'other-batch', workflowId: 'sync-batch/other-batch/o/f' },
};

describe('a file claimed by another interaction', () => {
  it('waits with a growing wait while the file is busy, then delivers it, counting no resend', async ({
    stubWorker,
  }) => {
    let looks = 0;
    const w = await stubWorker({ deliverFile: async () => (++looks <= 3 ? busy : delivered) });
    const handle = await w.startFile(w.items(1)[0]!, { maxResends: 0, resendBackoffMs: 10 });
    expect(await handle.result()).toMatchObject({ state: 'RECORDED', resends: 0 });
    const calls = w.callsOf('deliverFile');
    expect(calls).toHaveLength(4);
    // The interaction is opened by the first look only, and the same interaction looks each time.
    expect(calls.map((c) => c.args.open)).toEqual([true, false, false, false]);
    expect(new Set(calls.map((c) => c.args.interactionId)).size).toBe(1);
    const timers = ((await handle.fetchHistory()).events ?? []).flatMap((e) =>
      e.timerStartedEventAttributes ? [tsToMs(e.timerStartedEventAttributes.startToFireTimeout)] : [],
    );
    expect(timers).toEqual([CLAIM_FIRST_WAIT_MS, 2 * CLAIM_FIRST_WAIT_MS, 4 * CLAIM_FIRST_WAIT_MS]);
    expect(w.callsOf('noteResend')).toEqual([]);
    expect(w.callsOf('compensate')).toEqual([]);
  });

  it('ends RECORDED with one look and no send when the bytes are already held; resendRecorded is passed on', async ({
    stubWorker,
  }) => {
    const w = await stubWorker({
      deliverFile: async () => ({ kind: 'held', heldBy: 'ix-earlier', batchId: 'earlier' }),
    });
    const handle = await w.startFile(w.items(1)[0]!);
    expect(await handle.result()).toMatchObject({ state: 'RECORDED', resends: 0 });
    expect(w.callsOf('deliverFile')).toHaveLength(1);
    expect(w.callsOf('deliverFile')[0]!.args.resendRecorded).toBeUndefined();
    expect(w.callsOf('sendFile')).toEqual([]);

    const again = await w.startFile(w.items(1)[0]!, { resendRecorded: true });
    await again.result();
    expect(w.callsOf('deliverFile')[1]!.args.resendRecorded).toBe(true);
  });

  it('gives up when the wait reaches claimPatienceMs: the file is rolled back unsent, with the reason', async ({
    stubWorker,
  }) => {
    const w = await stubWorker({ deliverFile: async () => busy });
    const handle = await w.startFile(w.items(1)[0]!, { maxResends: 3, claimPatienceMs: 1_000 });
    const result = await handle.result();
    const reason = 'interaction ix-other of batch other-batch is delivering this file; gave up waiting after 1000 ms';
    expect(result).toMatchObject({ state: 'ROLLED_BACK', resends: 0, reason });
    // Looks at 0, 250, 750 and 1000 ms: the last wait is cut to the patience left.
    const timers = ((await handle.fetchHistory()).events ?? []).flatMap((e) =>
      e.timerStartedEventAttributes ? [tsToMs(e.timerStartedEventAttributes.startToFireTimeout)] : [],
    );
    expect(timers).toEqual([CLAIM_FIRST_WAIT_MS, 2 * CLAIM_FIRST_WAIT_MS, 1_000 - 3 * CLAIM_FIRST_WAIT_MS]);
    expect(w.callsOf('deliverFile')).toHaveLength(4);
    expect(w.callsOf('sendFile')).toEqual([]);
    expect(w.callsOf('noteResend')).toEqual([]);
    expect(w.callsOf('compensate').map((c) => [c.args.finalState, c.args.reason])).toEqual([['ROLLED_BACK', reason]]);

    // A patience of 0 gives up at the first busy look.
    const now = await w.startFile(w.items(1)[0]!, { claimPatienceMs: 0 });
    expect(await now.result()).toMatchObject({ state: 'ROLLED_BACK', reason: expect.stringContaining('after 0 ms') });
  });

  it('a cancel while it waits rolls the file back (its own copy only) and ends CANCELLED', async ({ stubWorker }) => {
    const w = await stubWorker({ deliverFile: async () => busy });
    const handle = await w.startFile(w.items(1)[0]!);
    await waitFor('a few looks at the claim', () => w.callsOf('deliverFile').length >= 3);
    await handle.signal(cancelSignal, 'operator test');
    expect(await handle.result()).toMatchObject({ state: 'CANCELLED' });
    expect(w.callsOf('compensate').map((c) => c.args.finalState)).toEqual(['CANCELLED']);
  });
});
