/**
 * File claims on every backend: one interaction at a time per destination file, across ledger
 * connections (two workers), free once the holder's interaction has ended, taken over from a
 * named holder only, and the "already held" look at what earlier batches recorded.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type FileClaim, type Ledger, type OpenInteraction } from '../../src/ledger';
import { ledgerMigrations } from '../../src/ledger/migrations';
import { queryLayerOf } from '../../src/ledger/sql-ledger';
import { ledgerSql } from '../../src/ledger/testing';
import type { FileState } from '../../src/shared';
import { BACKENDS } from './backends';

const SHA = 'cd'.repeat(32);

/** A destination file and claim/interaction makers unique to one test. */
function fileOf(label: string) {
  const tag = `${label}-${randomUUID().slice(0, 8)}`;
  const file = { target: 'default', orderId: `order-${tag}`, fileName: 'scan.png' };
  const claim = (n: number, batch = `batch-${tag}-${n}`): FileClaim => ({
    ...file,
    interactionId: `ix-${tag}-${n}`,
    batchId: batch,
    workflowId: `sync-batch/${batch}/${file.orderId}/${file.fileName}`,
    runId: `run-${n}`,
  });
  const opened = (c: FileClaim, status: FileState = 'SENDING', more: Partial<OpenInteraction> = {}) => ({
    interactionId: c.interactionId,
    batchId: c.batchId,
    orderId: c.orderId,
    fileName: c.fileName,
    target: c.target,
    sourcePath: `/data/${c.orderId}/scan.png`,
    sha256: SHA,
    sizeBytes: 100,
    status,
    ...more,
  });
  return { file, claim, opened };
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`file claims on ${backend.name}`, () => {
    let a: Ledger;
    let b: Ledger;
    beforeAll(async () => {
      await backend.check();
      const url = await backend.freshUrl();
      a = await openLedger(url);
      b = await openLedger(url);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend.cleanup();
    });

    it('one of many interactions racing from two connections takes the claim; the rest see it held', async () => {
      const { claim, opened, file } = fileOf('race');
      const claims = Array.from({ length: 12 }, (_, n) => claim(n));
      for (const c of claims) await a.openInteraction(opened(c));
      const outcomes = await Promise.all(claims.map((c, n) => (n % 2 ? a : b).claimFile(c)));
      const winners = claims.filter((_, n) => outcomes[n]!.taken);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      for (const o of outcomes) {
        if (!o.taken) expect(o.holder).toMatchObject({ interactionId: winner.interactionId, status: 'SENDING' });
      }
      expect(await b.claimOf(file)).toMatchObject({
        interactionId: winner.interactionId,
        batchId: winner.batchId,
        workflowId: winner.workflowId,
        runId: 'run-' + winner.interactionId.split('-').pop(),
      });
      // Claiming again is harmless for the holder and still refused to the others.
      expect(await a.claimFile(winner)).toEqual({ taken: true });
      const other = claims.find((c) => c !== winner)!;
      expect((await b.claimFile(other)).taken).toBe(false);
    });

    it('openClaimed opens, writes OPENED and claims in one go; firstClaim only where the file had no claim row', async () => {
      const { claim, opened, file } = fileOf('first');
      const first = claim(1);
      const second = claim(2);
      const done = await a.openClaimed(opened(first), first, { redrive: 0 });
      expect(done.firstClaim).toBe(true);
      expect((await a.getInteraction(first.interactionId))?.seq).toBe(done.seq);
      expect((await a.listEvents(first.interactionId)).map((e) => [e.kind, JSON.parse(e.detail!)])).toEqual([
        ['OPENED', { seq: done.seq, redrive: 0 }],
      ]);
      expect(await a.claimOf(file)).toMatchObject({ interactionId: first.interactionId, status: 'SENDING' });
      // Again (a retry after a lost answer): nothing written twice, and no longer a first claim.
      expect(await b.openClaimed(opened(first), first, { redrive: 0 })).toEqual({ seq: done.seq, firstClaim: false });
      expect(await a.listEvents(first.interactionId)).toHaveLength(1);
      // Another interaction of the file: opened, not a first claim, and the claim stays the first's.
      expect((await b.openClaimed(opened(second), second, { redrive: 0 })).firstClaim).toBe(false);
      expect(await a.claimOf(file)).toMatchObject({ interactionId: first.interactionId });
      expect(await b.claimFile(second)).toMatchObject({ taken: false, holder: { interactionId: first.interactionId } });
    });

    it('migration 0006 gives every file an interaction recorded a free claim row, and leaves claimed files alone', async () => {
      const recorded = fileOf('backfill');
      const older = recorded.claim(1);
      const newer = recorded.claim(2);
      await a.openInteraction(recorded.opened(older, 'RECORDED'));
      await a.openInteraction(recorded.opened(newer, 'RECORDED'));
      const failed = fileOf('backfill-failed');
      await a.openInteraction(failed.opened(failed.claim(1), 'ROLLED_BACK'));
      const claimed = fileOf('backfill-claimed');
      const holder = claimed.claim(1);
      await a.openInteraction(claimed.opened(claimed.claim(2), 'RECORDED'));
      await a.openInteraction(claimed.opened(holder));
      expect((await a.claimFile(holder)).taken).toBe(true);
      await ledgerSql(a).query`delete from file_claims where order_id = ${recorded.file.orderId}`;
      await ledgerMigrations(a.dialect)['0006_claims_of_recorded']!.up(queryLayerOf(a));
      expect(await a.claimOf(recorded.file)).toMatchObject({ interactionId: newer.interactionId, status: 'RECORDED' });
      expect(await a.claimOf(failed.file)).toBeUndefined();
      expect(await a.claimOf(claimed.file)).toMatchObject({ interactionId: holder.interactionId, status: 'SENDING' });
      // The row is free: the next interaction of the file takes it.
      const next = recorded.claim(3);
      await a.openInteraction(recorded.opened(next));
      expect(await b.claimFile(next)).toMatchObject({ taken: true, from: { interactionId: newer.interactionId } });
    });

    it('a claim is free once its interaction has ended, whatever the end; and while it runs again, held', async () => {
      const { claim, opened } = fileOf('ended');
      for (const end of ['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'CANCELLED'] as const) {
        const first = claim(1, `b-${end}-1`);
        const second = claim(2, `b-${end}-2`);
        const f = { ...first, orderId: `${first.orderId}-${end}` };
        const s = { ...second, orderId: f.orderId };
        await a.openInteraction(opened(f));
        await a.openInteraction(opened(s));
        expect((await a.claimFile(f)).taken).toBe(true);
        expect(await b.claimFile(s)).toMatchObject({ taken: false, holder: { interactionId: f.interactionId } });
        await a.updateInteraction(f.interactionId, { status: 'RESENDING' });
        expect((await b.claimFile(s)).taken).toBe(false);
        await a.updateInteraction(f.interactionId, { status: end });
        const taken = await b.claimFile(s);
        expect(taken).toMatchObject({ taken: true, from: { interactionId: f.interactionId, status: end } });
        // The first, should it run again (an atomic rollback), now waits for the second.
        await a.updateInteraction(f.interactionId, { status: 'ROLLING_BACK' });
        expect(await a.claimFile(f)).toMatchObject({ taken: false, holder: { interactionId: s.interactionId } });
      }
    });

    it('a claim whose interaction is not in the ledger is free; a live one is taken over only by name', async () => {
      const { claim, opened } = fileOf('over');
      const ghost = claim(1);
      const live = claim(2);
      const next = claim(3);
      expect((await a.claimFile(ghost)).taken).toBe(true); // never opened in the ledger
      await a.openInteraction(opened(live));
      await a.openInteraction(opened(next));
      expect(await b.claimFile(live)).toMatchObject({ taken: true, from: { interactionId: ghost.interactionId } });
      expect((await a.claimFile(next, { over: 'someone-else' })).taken).toBe(false);
      // Two callers naming the same live holder to take over: exactly one of them gets it.
      const rival = claim(4);
      await a.openInteraction(opened(rival));
      const both = await Promise.all([
        a.claimFile(next, { over: live.interactionId }),
        b.claimFile(rival, { over: live.interactionId }),
      ]);
      expect(both.filter((o) => o.taken)).toHaveLength(1);
    });

    it('recordedWithBytes finds the newest batch still RECORDED with the same bytes, and skips what a redrive replaced', async () => {
      const { claim, opened, file } = fileOf('held');
      const bytes = { ...file, sha256: SHA, size: 100 };
      expect(await a.recordedWithBytes(bytes)).toBeUndefined();
      const one = claim(1, 'held-batch-1');
      const two = claim(2, 'held-batch-2');
      await a.openInteraction(opened(one, 'RECORDED'));
      await a.openInteraction(opened(two, 'RECORDED'));
      expect((await a.recordedWithBytes(bytes))?.interaction_id).toBe(two.interactionId);
      expect((await a.recordedWithBytes(bytes, { excludingBatch: 'held-batch-2' }))?.interaction_id).toBe(
        one.interactionId,
      );
      expect((await a.recordedWithBytes(bytes, { excludingInteraction: two.interactionId }))?.interaction_id).toBe(
        one.interactionId,
      );
      // Other bytes, size, target or file: not held.
      expect(await a.recordedWithBytes({ ...bytes, sha256: 'ef'.repeat(32) })).toBeUndefined();
      expect(await a.recordedWithBytes({ ...bytes, size: 101 })).toBeUndefined();
      expect(await a.recordedWithBytes({ ...bytes, target: 'east' })).toBeUndefined();
      expect(await a.recordedWithBytes({ ...bytes, fileName: 'other.png' })).toBeUndefined();
      // A redrive in batch 2 that rolled back speaks for batch 2 now; batch 1 still holds it.
      await a.openInteraction(opened({ ...two, interactionId: `${two.interactionId}-redrive` }, 'ROLLED_BACK'));
      expect((await a.recordedWithBytes(bytes))?.interaction_id).toBe(one.interactionId);
    });
  });
}
