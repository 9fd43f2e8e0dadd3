/**
 * The intake's submissions in the ledger, on every backend: of many requests racing for one key
 * from two connections exactly one takes it; the same key with another body or order is
 * key_reused; an accepted key answers accepted; a released key is free again; a lapsed take is
 * taken over by one request only; and an order's files read back at their latest submission.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/ledger';
import type { IntakeSubmissionRecord } from '../../src/ledger/port';
import { ledgerSql } from '../../src/ledger/testing';
import { BACKENDS } from '../ledger/backends';

function submissionOf(label: string, files = ['a.png', 'b.png']) {
  const orderId = `order-${label}-${randomUUID().slice(0, 8)}`;
  const record = (taker: string, more: Partial<IntakeSubmissionRecord> = {}): IntakeSubmissionRecord => ({
    idempotencyKey: `key-${orderId}`,
    orderId,
    bodySha256: 'ab'.repeat(32),
    taker,
    files: files.map((fileName) => ({ fileName, target: 'default', sourcePath: `/in/${orderId}/${fileName}` })),
    ...more,
  });
  return { orderId, record };
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`intake submissions on ${backend.name}`, () => {
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

    it('one of many requests racing for a key takes it; the others are told it is in progress', async () => {
      const { record, orderId } = submissionOf('race');
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, n) => (n % 2 ? a : b).takeSubmission(record(`taker-${n}`), 60_000)),
      );
      expect(outcomes.filter((o) => o.kind === 'taken')).toEqual([{ kind: 'taken', takeover: false }]);
      expect(outcomes.filter((o) => o.kind === 'in_progress')).toHaveLength(9);
      // Not accepted yet: the order shows nothing.
      expect(await a.submittedFiles(orderId)).toEqual([]);
    });

    it('accepted: the same body is accepted again, another body or order is key_reused', async () => {
      const { record, orderId } = submissionOf('accept');
      expect(await a.takeSubmission(record('t1'), 60_000)).toEqual({ kind: 'taken', takeover: false });
      await a.acceptSubmission(record('t1'));
      expect(await b.takeSubmission(record('t2'), 60_000)).toEqual({ kind: 'accepted' });
      expect(await b.takeSubmission(record('t2', { bodySha256: 'cd'.repeat(32) }), 60_000)).toEqual({
        kind: 'key_reused',
      });
      expect(await b.takeSubmission(record('t2', { orderId: 'another' }), 60_000)).toEqual({ kind: 'key_reused' });
      const files = await b.submittedFiles(orderId);
      expect(files.map((f) => f.fileName).sort()).toEqual(['a.png', 'b.png']);
      expect(files.every((f) => f.target === 'default' && f.droppedAt === null)).toBe(true);

      await a.dropSubmittedFiles([{ orderId, fileName: 'a.png', target: 'default' }]);
      const after = await b.submittedFiles(orderId);
      expect(after.find((f) => f.fileName === 'a.png')?.droppedAt).toBeTruthy();
      expect(after.find((f) => f.fileName === 'b.png')?.droppedAt).toBeNull();
    });

    it('a released key is free again, even for another body; only its taker releases it', async () => {
      const { record, orderId } = submissionOf('release');
      expect(await a.takeSubmission(record('t1'), 60_000)).toMatchObject({ kind: 'taken' });
      await a.releaseSubmission(record('t1').idempotencyKey, 'someone-else');
      expect(await b.takeSubmission(record('t2'), 60_000)).toEqual({ kind: 'in_progress' });
      await a.releaseSubmission(record('t1').idempotencyKey, 't1');
      const other = record('t3', { bodySha256: 'ef'.repeat(32), files: [record('t3').files[0]!] });
      expect(await b.takeSubmission(other, 60_000)).toEqual({ kind: 'taken', takeover: false });
      await b.acceptSubmission(other);
      expect((await a.submittedFiles(orderId)).map((f) => f.fileName)).toEqual(['a.png']);
    });

    it('a take whose lease ran out is taken over by exactly one request', async () => {
      const { record } = submissionOf('lease');
      expect(await a.takeSubmission(record('t0'), 60_000)).toMatchObject({ kind: 'taken' });
      expect(await b.takeSubmission(record('t1'), 60_000)).toEqual({ kind: 'in_progress' });
      // The first request died long ago.
      const key = record('t0').idempotencyKey;
      await ledgerSql(a)
        .query`update intake_submissions set taken_at = '2000-01-01T00:00:00.000Z' where idempotency_key = ${key}`;
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, n) => (n % 2 ? a : b).takeSubmission(record(`t${n + 1}`), 60_000)),
      );
      expect(outcomes.filter((o) => o.kind === 'taken')).toEqual([{ kind: 'taken', takeover: true }]);
    });
  });
}
