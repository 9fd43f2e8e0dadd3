/**
 * The claim wait's bound, end to end: a batch whose file another live batch is delivering waits
 * for the policy's claimPatienceMs, then gives up without sending: the file ends ROLLED_BACK
 * (its rollback removes nothing), its events say whom it waited for and why it gave up, and the
 * report shows the reason. The batch that held the claim delivers the file as if nothing happened.
 */
import { describe, expect } from 'vitest';
import { buildReport, formatReport } from '../../src/batch/report';
import { it } from '../helpers/fixture';
import { eventDetail, eventKinds, expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';

describe('the claim wait gives up after claimPatienceMs', () => {
  it('a file claimed by a live batch past the patience ends ROLLED_BACK unsent, with the reason in its events and report', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(1, 1024, 1);
    const item = items[0]!;
    const key = `${item.orderId}/${item.fileName}`;
    const file = { target: 'default', orderId: item.orderId, fileName: item.fileName };
    // B's uploads time out for now: it holds the file's claim, live, and nothing is held.
    h.simulator.setFaults({ timeoutRate: 1, faultMethods: ['PUT'] });
    const b = await h.start(items, { maxResends: 20 });
    await waitFor('batch B to claim the file', async () => (await h.ledger.claimOf(file))?.batchId === b.batchId);
    const holder = (await h.ledger.claimOf(file))!;

    const c = await h.start(items, { maxResends: 3, claimPatienceMs: 1_500 });
    const rc = await c.handle.result();
    expect(rc).toMatchObject({ rolledBack: 1, recorded: 0, resends: 0 });
    const [row] = await h.ledger.listInteractions(c.batchId);
    expect(row!.status).toBe('ROLLED_BACK');
    const kinds = await eventKinds(h, row!.interaction_id);
    expect(kinds).toContain('CLAIM_WAIT');
    expect(kinds).not.toContain('SENT');
    expect(kinds).not.toContain('SEND_FAILED');
    expect(await eventDetail(h, row!.interaction_id, 'CLAIM_WAIT')).toMatchObject({
      holder: holder.interactionId,
      batchId: b.batchId,
    });
    const reason = `interaction ${holder.interactionId} of batch ${b.batchId} is delivering this file; gave up waiting after 1500 ms`;
    const [rollback] = await h.ledger.listRollbacks(c.batchId);
    expect(rollback).toMatchObject({ status: 'DONE', reason });

    const report = (await buildReport(h.ledger, c.batchId))!;
    expect(report.counts).toEqual({ ROLLED_BACK: 1 });
    expect(report.files[0]!.rollback).toMatchObject({ status: 'DONE', reason });
    expect(formatReport(report)).toContain(`ROLLED_BACK       ${key}  resends 0  ${reason}`);

    // B still holds the claim, and delivers the file once its uploads go through.
    expect((await h.ledger.claimOf(file))?.interactionId).toBe(holder.interactionId);
    h.simulator.setFaults({ timeoutRate: 0 });
    expect(await b.handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 1 });
    expect(h.simulator.uploadsByFile().get(key)).toMatchObject({ received: 1, stored: 1, senders: 1 });
    await expectOneTruth(h, [b.batchId, c.batchId], items, { maxResends: 20 });
  });
});
