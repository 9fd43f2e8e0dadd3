/**
 * Batches that send files an earlier batch already recorded: the copy held is delivered without
 * a second upload when it has the same bytes; with --resend-recorded a new copy under the new
 * interaction's key replaces it (one PUT per file); a later batch's rollback never removes a
 * copy another batch recorded.
 */
import { describe, expect } from 'vitest';
import { it } from '../helpers/fixture';

describe('batches over files already recorded', () => {
  it('a second batch of the same files delivers the held copies unsent, and a failing third that resends removes none', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(4, 512, 4);
    const first = await h.start(items, { maxConcurrency: 4 });
    expect((await first.handle.result()).recorded).toBe(4);
    const firstKeys = new Set((await h.ledger.listInteractions(first.batchId)).map((r) => r.interaction_id));

    const second = await h.start(items, { maxConcurrency: 4, maxResends: 1 });
    const secondResult = await second.handle.result();
    expect(secondResult).toMatchObject({ state: 'COMPLETED', recorded: 4, resends: 0 });
    for (const row of await h.ledger.listInteractions(second.batchId)) {
      const events = await h.ledger.listEvents(row.interaction_id);
      expect(events.map((e) => e.kind)).not.toContain('SENT');
      const held = events.find((e) => e.kind === 'ALREADY_HELD');
      const heldBy = (JSON.parse(held!.detail!) as { heldBy: string; batchId: string }).heldBy;
      expect(firstKeys.has(heldBy)).toBe(true);
      expect(JSON.parse(held!.detail!)).toMatchObject({ batchId: first.batchId });
    }
    const uploads = [...h.simulator.uploadsByFile().values()];
    expect(uploads.map((u) => u.senders)).toEqual([1, 1, 1, 1]);

    // With --resend-recorded the bytes are sent anyway, and each file ends held under the new
    // interaction's key: one PUT per file (If-Match on the first batch's key) replaces the copy.
    const before = new Map(h.simulator.uploadsByFile());
    const resent = await h.start(items, { maxConcurrency: 4, maxResends: 0, resendRecorded: true });
    expect(await resent.handle.result()).toMatchObject({ state: 'COMPLETED', recorded: 4, resends: 0 });
    const resentKeys = new Set<string>();
    for (const row of await h.ledger.listInteractions(resent.batchId)) {
      expect(row.status).toBe('RECORDED');
      resentKeys.add(row.interaction_id);
      const events = await h.ledger.listEvents(row.interaction_id);
      expect(events.map((e) => e.kind)).not.toContain('ALREADY_HELD');
      const sent = events.filter((e) => e.kind === 'SENT');
      expect(sent).toHaveLength(1);
      expect(firstKeys.has((JSON.parse(sent[0]!.detail!) as { replaced: string }).replaced)).toBe(true);
      const verified = events.find((e) => e.kind === 'VERIFIED');
      expect(JSON.parse(verified!.detail!)).toEqual({ resend: 0 }); // its own copy, no heldBy
    }
    for (const [file, u] of h.simulator.uploadsByFile()) {
      const was = before.get(file)!;
      expect({ puts: u.received - was.received, stored: u.stored - was.stored, senders: u.senders }).toEqual({
        puts: 1,
        stored: 1,
        senders: 2,
      });
    }
    const afterResend = (await h.targets.get('default').list()).files;
    expect(afterResend).toHaveLength(4);
    expect(afterResend.every((f) => resentKeys.has(f.idempotencyKey))).toBe(true);

    h.simulator.setFaults({ rejectRate: 1 });
    const third = await h.start(items, { maxConcurrency: 4, maxResends: 0, resendRecorded: true });
    const thirdResult = await third.handle.result();
    expect(thirdResult.rolledBack).toBe(4);
    h.simulator.setFaults({ rejectRate: 0 });
    const held = (await h.targets.get('default').list()).files;
    expect(held).toHaveLength(4);
    expect(held.every((f) => resentKeys.has(f.idempotencyKey))).toBe(true); // the resent copies, untouched
    expect((await h.ledger.listRollbacks(third.batchId)).every((r) => r.status === 'DONE')).toBe(true);

    for (const batchId of [first.batchId, second.batchId, resent.batchId, third.batchId]) {
      expect((await h.consistency(batchId, 1)).drifts).toEqual([]);
    }
  });
});
