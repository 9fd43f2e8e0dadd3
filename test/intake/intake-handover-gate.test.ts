/**
 * The intake backend keeps at most `maxHandOvers` submissions in flight to one target's intake
 * (Temporal admits only a few updates in flight per workflow, and a crowd of retried updates
 * against one workflow starves its own progress); the others wait their turn, and one that cannot
 * get a turn before its submit timeout is answered saturated (429), with its key released.
 * On the real dev server, worker, ledger and simulator.
 */
import { describe, expect } from 'vitest';
import type { SyncItem } from '../../src/shared';
import { it } from '../helpers/fixture';
import type { Harness } from '../helpers/harness';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn, submission } from './intake-backend-helpers';

/** The harness's client, counting the hand-overs (Update-with-Start calls) in flight; `hold` delays each. */
function countingClient(h: Harness) {
  const seen = { inFlight: 0, most: 0, calls: 0 };
  let hold: Promise<void> | undefined;
  const workflow = new Proxy(h.client.workflow, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop === 'executeUpdateWithStart' && typeof value === 'function') {
        return async (...args: unknown[]) => {
          seen.calls += 1;
          seen.inFlight += 1;
          seen.most = Math.max(seen.most, seen.inFlight);
          try {
            if (hold) await hold;
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            seen.inFlight -= 1;
          }
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const client = new Proxy(h.client, {
    get(target, prop, receiver) {
      if (prop === 'workflow') return workflow;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    client,
    seen,
    setHold(p: Promise<void> | undefined) {
      hold = p;
    },
  };
}

function oneFileEach(items: SyncItem[]) {
  return items.map((item, i) => submission(`gate-${i}`, [{ ...item, orderId: `gate-${i}` }]));
}

describe('intake hand-over gate', () => {
  it('at most maxHandOvers submissions reach the intake at once; the others wait and are all delivered', async ({
    harness,
  }) => {
    const h = await harness();
    const counting = countingClient(h);
    const { backend, batchId } = intakeOn(h, { client: counting.client, maxHandOvers: 2 });
    try {
      const made = await h.makeFiles(16, 1024, 1);
      const submissions = oneFileEach(made);
      const outcomes = await Promise.all(submissions.map((s) => backend.submit(s)));
      for (const o of outcomes) expect(o).toMatchObject({ kind: 'accepted', replayed: false });
      expect(counting.seen.calls).toBe(16);
      // Sixteen at once, two at a time: without the gate all sixteen would be in flight.
      expect(counting.seen.most).toBe(2);

      const items = submissions.map((s, i) => ({ ...made[i]!, orderId: s.orderId }));
      await waitFor(
        'the 16 files RECORDED',
        async () => {
          const rows = await h.ledger.latestInteractions(batchId, { status: 'RECORDED' });
          return rows.length === 16 ? rows : undefined;
        },
        180_000,
      );
      await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
    } finally {
      await backend.close();
    }
  }, 300_000);

  it('a submission that cannot get a turn before its submit timeout is saturated, and its key is free again', async ({
    harness,
  }) => {
    const h = await harness();
    const counting = countingClient(h);
    const { backend } = intakeOn(h, { client: counting.client, maxHandOvers: 1, submitTimeoutMs: 3_000 });
    try {
      const [first, second] = oneFileEach(await h.makeFiles(2, 1024, 1));
      let release!: () => void;
      counting.setHold(new Promise<void>((resolve) => (release = resolve)));
      const firstOutcome = backend.submit(first!);
      await waitFor(
        'the first hand-over in flight',
        async () => (counting.seen.inFlight === 1 ? true : undefined),
        30_000,
      );
      // The one slot is held: the second waits its turn until its timeout.
      const secondOutcome = await backend.submit(second!);
      expect(secondOutcome).toMatchObject({ kind: 'saturated', reason: expect.stringContaining('queue past') });
      expect(counting.seen.calls).toBe(1);
      counting.setHold(undefined);
      release();
      // The first was held past its own timeout too: accepted, or unavailable with its key released.
      expect(['accepted', 'unavailable']).toContain((await firstOutcome).kind);
      // The second's key was released: the platform's retry takes it afresh, and so for the first.
      expect(await backend.submit(second!)).toMatchObject({ kind: 'accepted', replayed: false });
      expect(await backend.submit(first!)).toMatchObject({ kind: 'accepted' });
    } finally {
      await backend.close();
    }
  }, 300_000);
});
