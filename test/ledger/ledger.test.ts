/**
 * The same ledger suite against every backend: SQLite in a temporary file and PostgreSQL in a
 * fresh schema. PostgreSQL must be reachable unless IMAGE_SYNC_SKIP_PG=1.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LEDGER_TEXT, openLedger } from '../../src/ledger';
import type { Ledger, OpenInteraction } from '../../src/ledger';
import { ledgerSql } from '../../src/ledger/testing';
import type { FileState } from '../../src/shared';
import { BACKENDS } from './backends';

const execFileAsync = promisify(execFile);
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const WRITER = path.join(__dirname, 'fixtures', 'concurrent-writer.ts');

/** Ids unique to one test, so tests sharing a ledger never see each other's rows. */
function ids(label: string) {
  const tag = `${label}-${randomUUID().slice(0, 8)}`;
  return { batchId: `batch-${tag}`, interaction: (n: number | string) => `ix-${tag}-${n}` };
}

function interaction(
  batchId: string,
  interactionId: string,
  overrides: Partial<OpenInteraction> = {},
): OpenInteraction {
  return {
    interactionId,
    batchId,
    orderId: 'order-1',
    fileName: 'scan.png',
    target: 'default',
    sourcePath: '/data/order-1/scan.png',
    sha256: 'ab'.repeat(32),
    sizeBytes: 1234,
    status: 'SENDING',
    ...overrides,
  };
}

function expectStrictlyIncreasing(values: number[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`ledger on ${backend.name}`, () => {
    let url: string;
    let ledger: Ledger;

    beforeAll(async () => {
      await backend.check();
      url = await backend.freshUrl();
      ledger = await openLedger(url);
    });

    afterAll(async () => {
      await ledger?.close();
      await backend.cleanup();
    });

    it('reports its dialect', () => {
      expect(ledger.dialect).toBe(backend.name);
    });

    describe('migrations', () => {
      it('running migrate again, and reopening, is harmless and keeps the data', async () => {
        const { batchId, interaction: ix } = ids('migrate');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        await ledger.migrate();
        await ledger.migrate();
        const again = await openLedger(url);
        try {
          await again.migrate();
          expect((await again.getInteraction(ix(1)))?.batch_id).toBe(batchId);
        } finally {
          await again.close();
        }
        const applied = await ledgerSql(ledger).query<{
          name: string;
        }>`select name from ledger_migration order by name`;
        expect(applied.map((r) => r.name)).toEqual([
          '0001_initial',
          '0002_reconcile_findings',
          '0003_limits_and_notifications',
          '0004_redrive_queue',
          '0005_file_claims',
          '0006_claims_of_recorded',
          '0007_intake_submissions',
          '0008_intake_not_started',
        ]);
      });

      it('several ledgers opening a fresh database at once all migrate it once', async () => {
        const freshUrl = await backend.freshUrl();
        const ledgers = await Promise.all([1, 2, 3, 4].map(() => openLedger(freshUrl)));
        try {
          const { batchId, interaction: ix } = ids('first-start');
          const seqs = await Promise.all(ledgers.map((l, n) => l.openInteraction(interaction(batchId, ix(n)))));
          expect(new Set(seqs.map((s) => s.seq)).size).toBe(4);
          const applied = await ledgerSql(ledgers[0]!).query<{ name: string }>`select name from ledger_migration`;
          expect(applied.map((r) => r.name)).toEqual([
            '0001_initial',
            '0002_reconcile_findings',
            '0003_limits_and_notifications',
            '0004_redrive_queue',
            '0005_file_claims',
            '0006_claims_of_recorded',
            '0007_intake_submissions',
            '0008_intake_not_started',
          ]);
        } finally {
          await Promise.all(ledgers.map((l) => l.close()));
        }
      });

      it('uses the connection’s current schema when the URL names none', async () => {
        const other = await openLedger(await backend.freshUrlWithoutSchemaParam());
        try {
          const { batchId, interaction: ix } = ids('current-schema');
          await other.openInteraction(interaction(batchId, ix(1)));
          expect(await other.listInteractions(batchId)).toHaveLength(1);
          expect(await ledger.listInteractions(batchId)).toHaveLength(0);
        } finally {
          await other.close();
        }
      });
    });

    describe('batches', () => {
      it('ensureBatch creates once and leaves an existing batch as it is', async () => {
        const { batchId } = ids('ensure');
        await ledger.ensureBatch({ batchId, workflowId: `sync-batch/${batchId}`, total: 3, state: 'RUNNING' });
        await ledger.ensureBatch({ batchId, workflowId: 'other', total: 99, state: 'PAUSED' });
        const batch = await ledger.getBatch(batchId);
        expect(batch).toEqual({
          batch_id: batchId,
          workflow_id: `sync-batch/${batchId}`,
          state: 'RUNNING',
          total: 3,
          recorded: 0,
          rolled_back: 0,
          failed: 0,
          created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          finished_at: null,
        });
        expect(await ledger.getBatch(`${batchId}-missing`)).toBeUndefined();
      });

      it('updateBatch sets fields; finished stamps finished_at once; finished: false clears it', async () => {
        const { batchId } = ids('update-batch');
        await ledger.ensureBatch({ batchId, workflowId: `sync-batch/${batchId}`, total: 3, state: 'RUNNING' });
        await ledger.updateBatch(batchId, { recorded: 2, rolledBack: 1, failed: 1 });
        let batch = await ledger.getBatch(batchId);
        expect(batch).toMatchObject({ state: 'RUNNING', recorded: 2, rolled_back: 1, failed: 1, finished_at: null });

        await ledger.updateBatch(batchId, { state: 'COMPLETED_WITH_FAILURES', finished: true });
        batch = await ledger.getBatch(batchId);
        expect(batch?.state).toBe('COMPLETED_WITH_FAILURES');
        const finishedAt = batch?.finished_at;
        expect(finishedAt).toMatch(/Z$/);

        await new Promise((resolve) => setTimeout(resolve, 5));
        await ledger.updateBatch(batchId, { state: 'COMPLETED', finished: true, total: 4 });
        batch = await ledger.getBatch(batchId);
        expect(batch).toMatchObject({ state: 'COMPLETED', total: 4, finished_at: finishedAt });

        const [updated] = await ledgerSql(ledger).query<{ created_at: string; updated_at: string }>`
          select created_at, updated_at from sync_batches where batch_id = ${batchId}`;
        expect(updated!.updated_at > updated!.created_at).toBe(true);

        await ledger.updateBatch(batchId, { state: 'RUNNING', finished: false });
        expect((await ledger.getBatch(batchId))?.finished_at).toBeNull();
      });
    });

    describe('interactions', () => {
      it('assigns increasing sequence numbers, as numbers', async () => {
        const { batchId, interaction: ix } = ids('seq');
        const seqs: number[] = [];
        for (let n = 0; n < 5; n++) seqs.push((await ledger.openInteraction(interaction(batchId, ix(n)))).seq);
        for (const seq of seqs) expect(Number.isSafeInteger(seq)).toBe(true);
        expectStrictlyIncreasing(seqs);
        const rows = await ledger.listInteractions(batchId);
        expect(rows.map((r) => r.seq)).toEqual(seqs);
        expect(typeof rows[0]!.size_bytes).toBe('number');
      });

      it('openInteraction twice with the same id returns the same seq and writes one row', async () => {
        const { batchId, interaction: ix } = ids('open-twice');
        const first = await ledger.openInteraction(interaction(batchId, ix(1)));
        const second = await ledger.openInteraction(interaction(batchId, ix(1), { status: 'RESENDING', sizeBytes: 1 }));
        expect(second).toEqual(first);
        const rows = await ledger.listInteractions(batchId);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({
          seq: first.seq,
          status: 'SENDING',
          size_bytes: 1234,
          resends: 0,
          last_error: null,
        });
      });

      it('parallel opens of the same id write one row and agree on its seq', async () => {
        const { batchId, interaction: ix } = ids('open-same-parallel');
        const results = await Promise.all(
          Array.from({ length: 20 }, () => ledger.openInteraction(interaction(batchId, ix(1)))),
        );
        expect(new Set(results.map((r) => r.seq)).size).toBe(1);
        expect(await ledger.listInteractions(batchId)).toHaveLength(1);
      });

      it('50 parallel openInteraction calls produce 50 distinct increasing seqs', async () => {
        const { batchId, interaction: ix } = ids('parallel');
        const before = (await ledger.openInteraction(interaction(batchId, ix('before')))).seq;
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, n) =>
            ledger.openInteraction(interaction(batchId, ix(n), { fileName: `file-${n}.png` })),
          ),
        );
        const seqs = results.map((r) => r.seq);
        expect(new Set(seqs).size).toBe(50);
        for (const seq of seqs) expect(seq).toBeGreaterThan(before);
        const after = (await ledger.openInteraction(interaction(batchId, ix('after')))).seq;
        expect(after).toBeGreaterThan(Math.max(...seqs));

        const rows = await ledger.listInteractions(batchId);
        expect(rows).toHaveLength(52);
        expectStrictlyIncreasing(rows.map((r) => r.seq));
        expect(new Set(rows.map((r) => r.seq))).toEqual(new Set([before, ...seqs, after]));
      });

      it('two ledger instances on the same database write concurrently without clashing', async () => {
        const second = await openLedger(url);
        try {
          const { batchId, interaction: ix } = ids('two-instances');
          const results = await Promise.all(
            Array.from({ length: 40 }, (_, n) =>
              (n % 2 ? ledger : second).openInteraction(interaction(batchId, ix(n), { fileName: `f-${n}.png` })),
            ),
          );
          expect(new Set(results.map((r) => r.seq)).size).toBe(40);
          expect(await second.listInteractions(batchId)).toHaveLength(40);
        } finally {
          await second.close();
        }
      });

      it('separate processes migrate and write to one fresh database at once', async () => {
        const sharedUrl = await backend.freshUrl();
        const { batchId } = ids('processes');
        const outputs = await Promise.all(
          ['p1', 'p2', 'p3'].map((prefix) =>
            execFileAsync(TSX, [WRITER, sharedUrl, batchId, `${batchId}-${prefix}`, '15'], {
              cwd: PROJECT_ROOT,
              timeout: 60_000,
            }),
          ),
        );
        const seqs = outputs.flatMap((o) => JSON.parse(o.stdout) as number[]);
        expect(new Set(seqs).size).toBe(45);
        const reader = await openLedger(sharedUrl);
        try {
          const rows = await reader.listInteractions(batchId);
          expect(rows).toHaveLength(45);
          expect(new Set(rows.map((r) => r.seq))).toEqual(new Set(seqs));
        } finally {
          await reader.close();
        }
      }, 90_000);

      it('updateInteraction sets fields and updated_at; unknown ids read as undefined', async () => {
        const { batchId, interaction: ix } = ids('update-ix');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        const opened = await ledger.getInteraction(ix(1));
        await new Promise((resolve) => setTimeout(resolve, 5));
        await ledger.updateInteraction(ix(1), {
          status: 'RESENDING',
          resends: 2,
          lastError: 'VERIFY_FAILED: checksum differs',
          sha256: 'cd'.repeat(32),
          sizeBytes: 5_000_000_000,
        });
        const updated = await ledger.getInteraction(ix(1));
        expect(updated).toMatchObject({
          status: 'RESENDING',
          resends: 2,
          last_error: 'VERIFY_FAILED: checksum differs',
          sha256: 'cd'.repeat(32),
          size_bytes: 5_000_000_000,
          created_at: opened?.created_at,
        });
        expect(updated!.updated_at > opened!.updated_at).toBe(true);

        await ledger.updateInteraction(ix(1), { lastError: null });
        expect((await ledger.getInteraction(ix(1)))?.last_error).toBeNull();
        expect(await ledger.getInteraction(ix('missing'))).toBeUndefined();
      });

      it('caps last_error and masks credentials in it', async () => {
        const { batchId, interaction: ix } = ids('safe-error');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        await ledger.updateInteraction(ix(1), {
          lastError: `401 with Authorization: Bearer s3cr3t-token ${'x'.repeat(5000)}`,
        });
        const lastError = (await ledger.getInteraction(ix(1)))?.last_error ?? '';
        expect(lastError.length).toBeLessThanOrEqual(MAX_LEDGER_TEXT);
        expect(lastError).not.toContain('s3cr3t-token');
        expect(lastError).toContain('Bearer [redacted]');
      });

      it('latestInteractions picks the newest interaction per file across redrives', async () => {
        const { batchId, interaction: ix } = ids('latest');
        const other = ids('latest-other');
        const a1 = await ledger.openInteraction(interaction(batchId, ix('a1'), { fileName: 'a.png' }));
        const b1 = await ledger.openInteraction(interaction(batchId, ix('b1'), { fileName: 'b.png' }));
        const c1 = await ledger.openInteraction(
          interaction(batchId, ix('c1'), { orderId: 'order-2', fileName: 'a.png' }),
        );
        await ledger.openInteraction(interaction(other.batchId, other.interaction('x'), { fileName: 'a.png' }));
        await ledger.updateInteraction(ix('a1'), { status: 'ROLLED_BACK' });
        await ledger.updateInteraction(ix('b1'), { status: 'ROLLBACK_FAILED' });
        await ledger.updateInteraction(ix('c1'), { status: 'RECORDED' });
        // Redrive of a.png (twice) and b.png.
        await ledger.openInteraction(interaction(batchId, ix('a2'), { fileName: 'a.png' }));
        await ledger.updateInteraction(ix('a2'), { status: 'ROLLED_BACK' });
        const a3 = await ledger.openInteraction(interaction(batchId, ix('a3'), { fileName: 'a.png' }));
        await ledger.updateInteraction(ix('a3'), { status: 'RECORDED' });
        const b2 = await ledger.openInteraction(interaction(batchId, ix('b2'), { fileName: 'b.png' }));

        const latest = await ledger.latestInteractions(batchId);
        expect(latest.map((r) => r.interaction_id)).toEqual([ix('c1'), ix('a3'), ix('b2')]);
        expect(latest.map((r) => r.seq)).toEqual([c1.seq, a3.seq, b2.seq]);
        expect(a1.seq).toBeLessThan(a3.seq);
        expect(b1.seq).toBeLessThan(b2.seq);
        expect(await ledger.listInteractions(batchId)).toHaveLength(6);

        const recorded = await ledger.latestInteractions(batchId, { status: 'RECORDED' });
        expect(recorded.map((r) => r.interaction_id)).toEqual([ix('c1'), ix('a3')]);
        const attention: FileState[] = ['ROLLBACK_FAILED', 'SENDING'];
        expect((await ledger.latestInteractions(batchId, { status: attention })).map((r) => r.interaction_id)).toEqual([
          ix('b2'),
        ]);
        expect(await ledger.latestInteractions(batchId, { status: 'ROLLED_BACK' })).toEqual([]);
        expect(await ledger.latestInteractions(batchId, { status: [] })).toEqual([]);
        expect(await ledger.latestInteractions(`${batchId}-none`)).toEqual([]);

        expect(await ledger.batchCounts(batchId)).toEqual({
          interactions: 6,
          files: { SENDING: 1, RECORDED: 2 },
        });
        expect(await ledger.batchCounts(`${batchId}-none`)).toEqual({ interactions: 0, files: {} });
      });
    });

    describe('events', () => {
      it('appendEvent with the same key writes once; details are stored as text', async () => {
        const { batchId, interaction: ix } = ids('events');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        await ledger.appendEvent({ interactionId: ix(1), eventKey: 'sent-0', kind: 'SENT', detail: { status: 201 } });
        await ledger.appendEvent({ interactionId: ix(1), eventKey: 'sent-0', kind: 'SENT', detail: { status: 500 } });
        await ledger.appendEvent({
          interactionId: ix(1),
          eventKey: 'verify-0',
          kind: 'VERIFY_FAILED',
          detail: 'size differs',
        });
        await ledger.appendEvent({ interactionId: ix(1), eventKey: 'verified', kind: 'VERIFIED' });
        await ledger.appendEvent({ interactionId: ix(2), eventKey: 'sent-0', kind: 'SENT' });

        const events = await ledger.listEvents(ix(1));
        expect(events.map((e) => [e.kind, e.detail])).toEqual([
          ['SENT', '{"status":201}'],
          ['VERIFY_FAILED', 'size differs'],
          ['VERIFIED', null],
        ]);
        expectStrictlyIncreasing(events.map((e) => e.id));
        expect(events[0]!.interaction_id).toBe(ix(1));
        expect(events[0]!.at).toMatch(/Z$/);
        expect(await ledger.listEvents(ix(2))).toHaveLength(1);
      });

      it('parallel appends of one key write once', async () => {
        const { interaction: ix } = ids('events-parallel');
        await Promise.all(
          Array.from({ length: 20 }, () =>
            ledger.appendEvent({ interactionId: ix(1), eventKey: 'k', kind: 'RESEND_QUEUED' }),
          ),
        );
        expect(await ledger.listEvents(ix(1))).toHaveLength(1);
      });

      it('recordStep writes its events in order with the patch, once however often it is retried', async () => {
        const { batchId, interaction: ix } = ids('step');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        const sentAt = '2026-01-02T03:04:05.678Z';
        const step = () =>
          ledger.recordStep(
            ix(1),
            [
              { eventKey: 'SENT:0', kind: 'SENT', detail: { size: 1234 }, at: sentAt },
              { eventKey: 'VERIFIED:0', kind: 'VERIFIED', detail: { resend: 0 } },
            ],
            { status: 'RECORDED', lastError: null },
          );
        await step();
        await step();
        const events = await ledger.listEvents(ix(1));
        expect(events.map((e) => [e.kind, e.detail])).toEqual([
          ['SENT', '{"size":1234}'],
          ['VERIFIED', '{"resend":0}'],
        ]);
        expect(events[0]!.at).toBe(sentAt);
        expect(events[1]!.at).not.toBe(sentAt);
        expect(await ledger.getInteraction(ix(1))).toMatchObject({ status: 'RECORDED', last_error: null });

        // Events alone, and a patch alone.
        await ledger.recordStep(ix(1), [{ eventKey: 'NOTE', kind: 'NOTE' }]);
        await ledger.recordStep(ix(1), [], { lastError: 'late' });
        expect((await ledger.listEvents(ix(1))).map((e) => e.kind)).toEqual(['SENT', 'VERIFIED', 'NOTE']);
        expect((await ledger.getInteraction(ix(1)))!.last_error).toBe('late');
      });

      it('recordStep writes nothing when its update fails: the events and the status go together', async () => {
        const { batchId, interaction: ix } = ids('step-atomic');
        await ledger.openInteraction(interaction(batchId, ix(1)));
        // A trigger refuses updates of this interaction's row, as a failing write would.
        const db = ledgerSql(ledger);
        const trigger = `refuse_${randomUUID().replace(/-/g, '')}`;
        if (backend.name === 'postgres') {
          await db.raw(
            `create function ${trigger}() returns trigger language plpgsql as $$ begin raise exception 'refused'; end $$`,
          );
          await db.raw(
            `create trigger ${trigger} before update on interactions for each row when (new.interaction_id = '${ix(1)}') execute function ${trigger}()`,
          );
        } else {
          await db.raw(
            `create trigger ${trigger} before update on interactions when new.interaction_id = '${ix(1)}' begin select raise(abort, 'refused'); end`,
          );
        }
        try {
          await expect(
            ledger.recordStep(ix(1), [{ eventKey: 'VERIFIED:0', kind: 'VERIFIED' }], { status: 'RECORDED' }),
          ).rejects.toThrow(/refused/);
        } finally {
          await db.raw(`drop trigger ${trigger}${backend.name === 'postgres' ? ' on interactions' : ''}`);
          if (backend.name === 'postgres') await db.raw(`drop function ${trigger}()`);
        }
        expect(await ledger.listEvents(ix(1))).toEqual([]);
        expect((await ledger.getInteraction(ix(1)))!.status).toBe('SENDING');
      });

      it('caps long details and masks tokens in them', async () => {
        const { interaction: ix } = ids('events-safe');
        await ledger.appendEvent({
          interactionId: ix(1),
          eventKey: 'k',
          kind: 'SENT',
          detail: { headers: { authorization: 'Bearer abc.def' }, token: 'hunter2', body: 'y'.repeat(3000) },
        });
        const [event] = await ledger.listEvents(ix(1));
        expect(event!.detail!.length).toBeLessThanOrEqual(MAX_LEDGER_TEXT);
        expect(event!.detail).not.toContain('abc.def');
        expect(event!.detail).not.toContain('hunter2');
      });
    });

    describe('rollbacks', () => {
      it('recordRollback upserts: DONE after FAILED updates the one row', async () => {
        const { batchId, interaction: ix } = ids('rollback');
        const base = { batchId, orderId: 'order-1', fileName: 'scan.png' };
        await ledger.recordRollback({
          ...base,
          interactionId: ix(1),
          reason: 'DELETE answered 503',
          status: 'FAILED',
          attempts: 1,
        });
        const [failed] = await ledger.listRollbacks(batchId);
        expect(failed).toMatchObject({
          interaction_id: ix(1),
          status: 'FAILED',
          attempts: 1,
          reason: 'DELETE answered 503',
        });
        expect(failed!.finished_at).toMatch(/Z$/);

        await new Promise((resolve) => setTimeout(resolve, 5));
        await ledger.recordRollback({
          ...base,
          interactionId: ix(1),
          reason: 'verification failed',
          status: 'DONE',
          attempts: 2,
        });
        await ledger.recordRollback({
          ...base,
          interactionId: ix(1),
          reason: 'verification failed',
          status: 'DONE',
          attempts: 2,
        });
        await ledger.recordRollback({
          ...base,
          interactionId: ix(2),
          fileName: 'b.png',
          reason: 'cancelled',
          status: 'DONE',
          attempts: 1,
        });

        const rows = await ledger.listRollbacks(batchId);
        expect(rows).toHaveLength(2);
        expect(rows[0]).toMatchObject({
          id: failed!.id,
          interaction_id: ix(1),
          batch_id: batchId,
          order_id: 'order-1',
          file_name: 'scan.png',
          reason: 'verification failed',
          status: 'DONE',
          attempts: 2,
          created_at: failed!.created_at,
        });
        expect(rows[0]!.finished_at! > failed!.finished_at!).toBe(true);
        expect(rows[1]).toMatchObject({ interaction_id: ix(2), status: 'DONE' });
        expect(await ledger.listRollbacks(`${batchId}-none`)).toEqual([]);
      });

      it('rejects a status other than DONE or FAILED', async () => {
        const { batchId, interaction: ix } = ids('rollback-bad');
        await expect(
          ledger.recordRollback({
            interactionId: ix(1),
            batchId,
            orderId: 'o',
            fileName: 'f',
            reason: 'r',
            status: 'MAYBE' as 'DONE',
            attempts: 1,
          }),
        ).rejects.toThrow();
      });
    });

    describe('paged reads for reconcile', () => {
      it('latestInteractions with a page walks the latest interaction of every file in order and file order, page by page', async () => {
        const { batchId, interaction: ix } = ids('paged');
        // 3 orders x 4 files, opened out of order; two files have a newer interaction.
        const names: [string, string][] = [];
        for (const o of ['o-3', 'o-1', 'o-2']) for (const f of ['d.png', 'b.png', 'a.png', 'c.png']) names.push([o, f]);
        for (const [n, [o, f]] of names.entries()) {
          await ledger.openInteraction(interaction(batchId, ix(n), { orderId: o, fileName: f, status: 'ROLLED_BACK' }));
        }
        await ledger.openInteraction(
          interaction(batchId, ix('new-1'), { orderId: 'o-1', fileName: 'c.png', status: 'RECORDED' }),
        );
        await ledger.openInteraction(
          interaction(batchId, ix('new-2'), { orderId: 'o-3', fileName: 'a.png', status: 'RECORDED' }),
        );
        // Another batch's rows are never part of the page.
        await ledger.openInteraction(
          interaction(`${batchId}-other`, ix('other'), { orderId: 'o-1', fileName: 'a0.png' }),
        );

        const seen: InteractionRowLike[] = [];
        let after: { orderId: string; fileName: string } | null = null;
        let pages = 0;
        for (;;) {
          const page = await ledger.latestInteractions(batchId, { page: { after, limit: 5 } });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(5);
          pages += 1;
          seen.push(...page);
          const last = page.at(-1)!;
          after = { orderId: last.order_id, fileName: last.file_name };
        }
        expect(pages).toBe(3);
        expect(seen.map((r) => `${r.order_id}/${r.file_name}`)).toEqual(
          ['o-1', 'o-2', 'o-3'].flatMap((o) => ['a.png', 'b.png', 'c.png', 'd.png'].map((f) => `${o}/${f}`)),
        );
        const byKey = new Map(seen.map((r) => [`${r.order_id}/${r.file_name}`, r]));
        expect(byKey.get('o-1/c.png')).toMatchObject({ interaction_id: ix('new-1'), status: 'RECORDED' });
        expect(byKey.get('o-3/a.png')).toMatchObject({ interaction_id: ix('new-2'), status: 'RECORDED' });
        expect(byKey.get('o-2/a.png')).toMatchObject({ status: 'ROLLED_BACK' });
        expect(await ledger.latestInteractions(`${batchId}-none`, { page: { after: null, limit: 5 } })).toEqual([]);
        const recordedPage = await ledger.latestInteractions(batchId, {
          status: 'RECORDED',
          page: { after: { orderId: 'o-1', fileName: 'c.png' }, limit: 5 },
        });
        expect(recordedPage.map((r) => r.interaction_id)).toEqual([ix('new-2')]);
      });

      it('rollbacksOf returns the rollback rows of the given interactions only', async () => {
        const { batchId, interaction: ix } = ids('rollbacks-of');
        for (const n of [1, 2, 3]) {
          await ledger.recordRollback({
            interactionId: ix(n),
            batchId,
            orderId: 'o',
            fileName: `f${n}`,
            reason: 'r',
            status: n === 2 ? 'FAILED' : 'DONE',
            attempts: 1,
          });
        }
        const rows = await ledger.rollbacksOf([ix(2), ix(3), ix('none')]);
        expect(rows.map((r) => [r.interaction_id, r.status]).sort()).toEqual([
          [ix(2), 'FAILED'],
          [ix(3), 'DONE'],
        ]);
        expect(await ledger.rollbacksOf([])).toEqual([]);
      });

      it('batchIdsWithSourcesUnder lists the batches whose sources lie under a folder, oldest first', async () => {
        const { batchId, interaction: ix } = ids('under');
        const root = `/data/${batchId}`;
        await ledger.openInteraction(interaction(`${batchId}-b`, ix(1), { sourcePath: `${root}/in/o/a.png` }));
        await ledger.openInteraction(interaction(`${batchId}-a`, ix(2), { sourcePath: `${root}/in/o/b.png` }));
        await ledger.openInteraction(interaction(`${batchId}-b`, ix(3), { sourcePath: `${root}/in/o/c.png` }));
        await ledger.openInteraction(interaction(`${batchId}-c`, ix(4), { sourcePath: `${root}/inbox/o/a.png` }));
        await ledger.openInteraction(interaction(`${batchId}-d`, ix(5), { sourcePath: `${root}/i%/o/a.png` }));
        await ledger.openInteraction(interaction(`${batchId}-e`, ix(6), { sourcePath: `${root}/IN/o/a.png` }));
        await ledger.openInteraction(interaction(`${batchId}-f`, ix(7), { sourcePath: `${root}/ü😀/o/a.png` }));
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/in`)).toEqual([`${batchId}-b`, `${batchId}-a`]);
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/in/`)).toEqual([`${batchId}-b`, `${batchId}-a`]);
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/i%`)).toEqual([`${batchId}-d`]);
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/IN`)).toEqual([`${batchId}-e`]);
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/ü😀`)).toEqual([`${batchId}-f`]);
        expect(await ledger.batchIdsWithSourcesUnder(`${root}/none`)).toEqual([]);
      });

      it('recordReconcileFindings writes each finding of a run once and lists them by batch', async () => {
        const { batchId, interaction: ix } = ids('findings');
        const findings = [
          { kind: 'missing', orderId: 'o', fileName: 'a.png', target: 'default', interactionId: ix(1), detail: 'gone' },
          {
            kind: 'foreign-file',
            orderId: 'o',
            fileName: 'x.png',
            target: 'default',
            interactionId: null,
            detail: 'x',
          },
        ];
        await ledger.recordReconcileFindings({ runId: 'run-1', batchId, findings });
        await ledger.recordReconcileFindings({ runId: 'run-1', batchId, findings });
        await ledger.recordReconcileFindings({ runId: 'run-2', batchId, findings: findings.slice(0, 1) });
        const rows = await ledger.listReconcileFindings(batchId);
        expect(rows.map((r) => [r.run_id, r.kind, r.file_name, r.interaction_id])).toEqual([
          ['run-1', 'missing', 'a.png', ix(1)],
          ['run-1', 'foreign-file', 'x.png', null],
          ['run-2', 'missing', 'a.png', ix(1)],
        ]);
        expect(await ledger.listReconcileFindings(`${batchId}-none`)).toEqual([]);
      });
    });
  });
}

type InteractionRowLike = { order_id: string; file_name: string };
