/**
 * The intake's workflow side against the real dev server, ledger and simulator: submissions go
 * through the backend (Update-with-Start into the target's intake workflow), and each file is
 * delivered once, whatever the caller repeats, with design.md's invariant for every file.
 */
import { Client, Connection } from '@temporalio/client';
import { describe, expect } from 'vitest';
import type { IntakeBackend } from '../../src/intake/backend';
import { createIntakeBackend } from '../../src/intake/temporal-backend';
import { intakeWorkflowIdOf } from '../../src/intake/workflow-api';
import { pauseUpdate, progressQuery, type SyncItem } from '../../src/shared';
import { it } from '../helpers/fixture';
import type { Harness } from '../helpers/harness';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn, submission } from './intake-backend-helpers';

/** The items of one order as submitted: every item under the order id given. */
function asOrder(orderId: string, items: SyncItem[]): SyncItem[] {
  return items.map((i) => ({ ...i, orderId }));
}

async function allRecorded(backend: IntakeBackend, orderId: string, count: number) {
  return waitFor(
    `${count} files of ${orderId} RECORDED`,
    async () => {
      const status = await backend.orderStatus(orderId);
      const recorded = status?.files.filter((f) => f.state === 'RECORDED') ?? [];
      return recorded.length === count ? status : undefined;
    },
    180_000,
  );
}

describe('intake workflow', () => {
  it('delivers a submission, and the same key again delivers nothing new', async ({ harness }) => {
    const h = await harness();
    const { backend, batchId } = intakeOn(h);
    const items = asOrder('ord-1', await h.makeFiles(6, 4096, 6));
    const first = submission('ord-1', items);

    const accepted = await backend.submit(first);
    expect(accepted).toEqual({ kind: 'accepted', submissionId: first.idempotencyKey, replayed: false });
    const status = await allRecorded(backend, 'ord-1', 6);
    expect(status.files.every((f) => f.interactionId !== null && f.target === 'default')).toBe(true);

    // The same key and body again: accepted as a replay, nothing sent again.
    expect(await backend.submit(first)).toEqual({
      kind: 'accepted',
      submissionId: first.idempotencyKey,
      replayed: true,
    });
    // The same key with another body: refused.
    const other = submission('ord-1', items.slice(0, 2), first.idempotencyKey);
    expect(await backend.submit(other)).toEqual({ kind: 'key_reused' });
    // The same key for another order: refused too.
    expect(await backend.submit({ ...first, orderId: 'ord-2' })).toEqual({ kind: 'key_reused' });

    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    // The intake hears of each file from its child's completion, just after the ledger says RECORDED.
    const progress = await waitFor('the intake to count six files', async () => {
      const p = await handle.query(progressQuery);
      return p.recorded === 6 ? p : undefined;
    });
    expect(progress).toMatchObject({ started: 6, recorded: 6, inFlight: 0, state: 'RUNNING' });
    const uploads = h.simulator.uploadsByFile();
    for (const item of items) expect(uploads.get(`ord-1/${item.fileName}`)?.received).toBe(1);
    expect(await h.ledger.listInteractions(batchId)).toHaveLength(6);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 300_000);

  it('two requests with the same key at once: one takes it, the files are delivered once', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 100 } });
    const { backend, batchId } = intakeOn(h);
    const items = asOrder('ord-c', await h.makeFiles(5, 4096, 5));
    const sub = submission('ord-c', items);

    const outcomes = await Promise.all([backend.submit(sub), backend.submit(sub), backend.submit(sub)]);
    const taken = outcomes.filter((o) => o.kind === 'accepted' && !o.replayed);
    expect(taken).toHaveLength(1);
    for (const o of outcomes) {
      expect(o.kind === 'in_progress' || (o.kind === 'accepted' && o.submissionId === sub.idempotencyKey)).toBe(true);
    }
    // A retry of a request that was told in_progress is accepted once the first has ended.
    expect(await backend.submit(sub)).toMatchObject({ kind: 'accepted', replayed: true });

    await allRecorded(backend, 'ord-c', 5);
    const uploads = h.simulator.uploadsByFile();
    for (const item of items) expect(uploads.get(`ord-c/${item.fileName}`)?.received).toBe(1);
    expect(await h.ledger.listInteractions(batchId)).toHaveLength(5);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 300_000);

  it('under faults, several orders submitted while files are under way each end consistent', async ({ harness }) => {
    const h = await harness({ simulator: { failRate: 0.15, dropRate: 0.1, seed: 21 } });
    const { backend, batchId } = intakeOn(h, {
      policy: { resendBackoffMs: 50, maxResends: MAX_RESENDS, maxConcurrency: 4 },
    });
    const all: SyncItem[] = [];
    for (const order of ['ord-a', 'ord-b', 'ord-c']) {
      const items = asOrder(order, await h.makeFiles(8, 2048, 8));
      all.push(...items);
      expect(await backend.submit(submission(order, items))).toMatchObject({ kind: 'accepted', replayed: false });
    }
    for (const order of ['ord-a', 'ord-b', 'ord-c']) {
      await waitFor(
        `every file of ${order} ended`,
        async () => {
          const s = await backend.orderStatus(order);
          return s?.files.every((f) => ['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED'].includes(f.state))
            ? s
            : undefined;
        },
        240_000,
      );
    }
    await expectOneTruth(h, [batchId], all, { maxResends: MAX_RESENDS });
  }, 360_000);

  /**
   * A submission of `items` past a bound is refused as saturated with `reason`, and nothing is
   * taken: the same key with the first `fits` of them is a first submission, delivered alone.
   */
  async function refusedThenFewerTaken(
    h: Harness,
    intake: ReturnType<typeof intakeOn>,
    items: SyncItem[],
    fits: number,
    reason: RegExp,
  ) {
    const { backend, batchId } = intake;
    const orderId = items[0]!.orderId;
    const tooMany = submission(orderId, items);
    const refused = await backend.submit(tooMany);
    expect(refused).toMatchObject({ kind: 'saturated', retryAfterSeconds: 7 });
    expect(refused.kind === 'saturated' && refused.reason).toMatch(reason);
    expect(await backend.orderStatus(orderId)).toBeUndefined();

    const fewer = submission(orderId, items.slice(0, fits), tooMany.idempotencyKey);
    expect(await backend.submit(fewer)).toMatchObject({ kind: 'accepted', replayed: false });
    await allRecorded(backend, orderId, fits);
    for (const left of items.slice(fits)) {
      expect(h.simulator.uploadsByFile().has(`${orderId}/${left.fileName}`)).toBe(false);
    }
    await expectOneTruth(h, [batchId], items.slice(0, fits), { maxResends: MAX_RESENDS });
  }

  it('a submission past the intake’s bound is refused as saturated, and its key is free again', async ({ harness }) => {
    const h = await harness();
    const items = asOrder('ord-s', await h.makeFiles(4, 2048, 4));
    await refusedThenFewerTaken(h, intakeOn(h, { maxWaiting: 3, retryAfterSeconds: 7 }), items, 3, /bound of 3/);
  }, 300_000);

  it('a submission whose files would pass the bound in bytes the intake carries is refused as saturated', async ({
    harness,
  }) => {
    const h = await harness();
    const items = asOrder('ord-b', await h.makeFiles(3, 2048, 3));
    // What the intake carries of each waiting file: its JSON, as the workflow holds it.
    const carried = (i: SyncItem) =>
      Buffer.byteLength(
        JSON.stringify({ orderId: i.orderId, fileName: i.fileName, sourcePath: i.sourcePath, target: 'default' }),
      );
    // Two of them fit exactly.
    const bound = carried(items[0]!) + carried(items[1]!);
    const reason = new RegExp(
      `take 0 bytes .* bring them to ${bound + carried(items[2]!)}, past the intake's bound of ${bound} bytes`,
    );
    await refusedThenFewerTaken(h, intakeOn(h, { maxWaitingBytes: bound, retryAfterSeconds: 7 }), items, 2, reason);
  }, 300_000);

  it("a server's bounds apply to an intake already running, from its next submission on", async ({ harness }) => {
    const h = await harness();
    const started = intakeOn(h, { maxWaiting: 1_000 });
    const items = asOrder('ord-n', await h.makeFiles(4, 2048, 4));
    expect(await started.backend.submit(submission('ord-n', items.slice(0, 1)))).toMatchObject({ kind: 'accepted' });

    // Another intake server, set to a lower bound, hands over to the same running intake.
    const lower = intakeOn(h, { maxWaiting: 2, retryAfterSeconds: 7, batchIdFor: () => started.batchId });
    const refused = await lower.backend.submit(submission('ord-n', items.slice(1)));
    expect(refused).toMatchObject({ kind: 'saturated' });
    expect(refused.kind === 'saturated' && refused.reason).toMatch(/3 more would pass the intake's bound of 2/);
    expect(await lower.backend.submit(submission('ord-n', items.slice(1, 3)))).toMatchObject({ kind: 'accepted' });
    await allRecorded(started.backend, 'ord-n', 3);
    await expectOneTruth(h, [started.batchId], items.slice(0, 3), { maxResends: MAX_RESENDS });
  }, 300_000);

  it('files wait while the intake is paused, past its bound it says saturated, and resume sends them', async ({
    harness,
  }) => {
    const h = await harness();
    const { backend, batchId } = intakeOn(h, { maxWaiting: 4 });
    const items = asOrder('ord-p', await h.makeFiles(6, 2048, 6));
    expect(await backend.submit(submission('ord-p', items.slice(0, 1)))).toMatchObject({ kind: 'accepted' });
    await allRecorded(backend, 'ord-p', 1);
    const handle = h.client.workflow.getHandle(intakeWorkflowIdOf(batchId));
    expect(await handle.executeUpdate(pauseUpdate)).toEqual({ batchId, state: 'PAUSED' });

    expect(await backend.submit(submission('ord-p', items.slice(1, 4)))).toMatchObject({ kind: 'accepted' });
    const status = await backend.orderStatus('ord-p');
    expect(status!.files.filter((f) => f.state === 'ACCEPTED')).toHaveLength(3);
    expect(await backend.submit(submission('ord-p', items.slice(4, 6)))).toMatchObject({ kind: 'saturated' });
    expect(await handle.query(progressQuery)).toMatchObject({ paused: true, started: 1 });

    await handle.signal('resume');
    await allRecorded(backend, 'ord-p', 4);
    await expectOneTruth(h, [batchId], items.slice(0, 4), { maxResends: MAX_RESENDS });
  }, 300_000);

  it('Temporal out of reach: unavailable, the key is released, and a later submission is taken', async ({
    harness,
  }) => {
    const h = await harness();
    const items = asOrder('ord-u', await h.makeFiles(2, 2048, 2));
    const sub = submission('ord-u', items);
    // A port nothing listens on.
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const away = createIntakeBackend({
      client: new Client({ connection }),
      ledger: h.ledger,
      taskQueue: h.taskQueue,
      submitTimeoutMs: 3_000,
    });
    try {
      const outcome = await away.submit(sub);
      expect(outcome.kind).toBe('unavailable');
      expect((await away.ready()).ok).toBe(false);
    } finally {
      await connection.close();
    }
    const { backend, batchId } = intakeOn(h);
    expect(await backend.ready()).toEqual({ ok: true });
    expect(await backend.submit(sub)).toMatchObject({ kind: 'accepted', replayed: false });
    await allRecorded(backend, 'ord-u', 2);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  }, 300_000);
});
