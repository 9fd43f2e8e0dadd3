/**
 * The read-only queries behind `list`, `start --dry-run` and `report --export`, on every
 * backend: SQLite in a temporary file and PostgreSQL in a fresh schema.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileWithChecksumKey, openLedger, type Ledger, type OpenInteraction } from '../../src/ledger';
import { BACKENDS } from './backends';

const SHA_A = 'aa'.repeat(32);
const SHA_B = 'bb'.repeat(32);

function ix(batchId: string, interactionId: string, o: Partial<OpenInteraction> = {}): OpenInteraction {
  return {
    interactionId,
    batchId,
    orderId: 'O1',
    fileName: 'a.png',
    target: 'default',
    sourcePath: '/src/O1/a.png',
    sha256: SHA_A,
    sizeBytes: 10,
    status: 'SENDING',
    ...o,
  };
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`operator queries on ${backend.name}`, () => {
    let ledger: Ledger;

    beforeAll(async () => {
      await backend.check();
      ledger = await openLedger(await backend.freshUrl());
    });

    afterAll(async () => {
      await ledger?.close();
      await backend.cleanup();
    });

    it('listBatches: newest first, filtered by state, limited', async () => {
      const tag = randomUUID().slice(0, 8);
      const names = [`l-${tag}-1`, `l-${tag}-2`, `l-${tag}-3`];
      for (const [i, batchId] of names.entries()) {
        await ledger.ensureBatch({ batchId, workflowId: `sync-batch/${batchId}`, total: i + 1, state: 'RUNNING' });
        // Distinct creation times, so "newest" is well defined.
        await new Promise((r) => setTimeout(r, 5));
      }
      await ledger.updateBatch(names[0]!, { state: 'COMPLETED', recorded: 1, finished: true });
      await ledger.updateBatch(names[2]!, { state: 'COMPLETED_WITH_FAILURES', failed: 2, finished: true });

      const all = (await ledger.listBatches()).filter((b) => b.batch_id.includes(tag));
      expect(all.map((b) => b.batch_id)).toEqual([names[2], names[1], names[0]]);
      expect(all[0]).toMatchObject({ state: 'COMPLETED_WITH_FAILURES', total: 3, failed: 2 });
      expect(all[0]!.finished_at).not.toBeNull();
      expect(all[1]!.finished_at).toBeNull();

      const completed = (await ledger.listBatches({ state: 'COMPLETED' })).filter((b) => b.batch_id.includes(tag));
      expect(completed.map((b) => b.batch_id)).toEqual([names[0]]);
      expect(await ledger.listBatches({ limit: 1 })).toHaveLength(1);
      expect(await ledger.listBatches({ state: 'PAUSED' })).toEqual([]);
    });

    it('recordedWithSameChecksum: only a RECORDED latest interaction with the same sha256, target, order and file', async () => {
      const tag = randomUUID().slice(0, 8);
      const b1 = `r-${tag}-1`;
      const b2 = `r-${tag}-2`;
      const o = `O-${tag}`;
      // a.png recorded with SHA_A; b.png recorded, then a later interaction of the same batch rolled it back;
      // c.png recorded at target "east"; d.png still sending.
      await ledger.openInteraction(ix(b1, `${tag}-a`, { orderId: o, fileName: 'a.png', status: 'RECORDED' }));
      await ledger.openInteraction(ix(b1, `${tag}-b1`, { orderId: o, fileName: 'b.png', status: 'RECORDED' }));
      await ledger.openInteraction(ix(b1, `${tag}-b2`, { orderId: o, fileName: 'b.png', status: 'ROLLED_BACK' }));
      await ledger.openInteraction(
        ix(b2, `${tag}-c`, { orderId: o, fileName: 'c.png', target: 'east', status: 'RECORDED' }),
      );
      await ledger.openInteraction(ix(b2, `${tag}-d`, { orderId: o, fileName: 'd.png', status: 'SENDING' }));

      const file = (fileName: string, sha256 = SHA_A, target = 'default') => ({ target, orderId: o, fileName, sha256 });
      const asked = [
        file('a.png'),
        file('a.png', SHA_B),
        file('b.png'),
        file('c.png'),
        file('c.png', SHA_A, 'east'),
        file('d.png'),
      ];
      const found = await ledger.recordedWithSameChecksum(asked);
      expect([...found].sort()).toEqual(
        [fileWithChecksumKey(file('a.png')), fileWithChecksumKey(file('c.png', SHA_A, 'east'))].sort(),
      );
      expect(await ledger.recordedWithSameChecksum([])).toEqual(new Set());
    });

    it('recordedWithSameChecksum: more files than one query takes', async () => {
      const tag = randomUUID().slice(0, 8);
      const batchId = `many-${tag}`;
      const files = Array.from({ length: 1200 }, (_, n) => ({
        target: 'default',
        orderId: `O-${tag}`,
        fileName: `f${n}.png`,
        sha256: n.toString(16).padStart(64, '0'),
      }));
      for (const f of files.filter((_, n) => n % 2 === 0)) {
        await ledger.openInteraction(
          ix(batchId, `${tag}-${f.fileName}`, { ...f, fileName: f.fileName, status: 'RECORDED' }),
        );
      }
      // By checksum, three queries; and in one pass over the ledger, 250 rows a page.
      for (const opts of [{}, { scanAbove: 100, pageSize: 250 }]) {
        const found = await ledger.recordedWithSameChecksum(files, opts);
        expect(found.size).toBe(600);
        expect(found.has(fileWithChecksumKey(files[1198]!))).toBe(true);
        expect(found.has(fileWithChecksumKey(files[1199]!))).toBe(false);
      }
    });

    it('recordedFilesAfter: pages through the RECORDED latest interactions in seq order, each once', async () => {
      const tag = randomUUID().slice(0, 8);
      const batchId = `pages-${tag}`;
      const o = `O-${tag}`;
      for (let n = 0; n < 7; n++) {
        await ledger.openInteraction(
          ix(batchId, `${tag}-${n}`, { orderId: o, fileName: `f${n}.png`, status: n === 3 ? 'SENDING' : 'RECORDED' }),
        );
      }
      // f5.png redriven: its latest interaction is rolled back, so it is not RECORDED any more.
      await ledger.openInteraction(ix(batchId, `${tag}-5b`, { orderId: o, fileName: 'f5.png', status: 'ROLLED_BACK' }));
      const seen: string[] = [];
      let after = 0;
      let pages = 0;
      for (;;) {
        const page = await ledger.recordedFilesAfter(after, 2);
        pages += 1;
        for (const r of page) {
          expect(r.seq).toBeGreaterThan(after);
          if (r.orderId === o) seen.push(`${r.fileName}:${r.target}:${r.sha256 === SHA_A}`);
        }
        if (page.length < 2) break;
        after = page[page.length - 1]!.seq;
      }
      expect(seen).toEqual(['f0.png', 'f1.png', 'f2.png', 'f4.png', 'f6.png'].map((f) => `${f}:default:true`));
      expect(pages).toBeGreaterThanOrEqual(3);
    });

    it('interactionTrails: the last rule that failed, the first send and the last event of each interaction', async () => {
      const tag = randomUUID().slice(0, 8);
      const batchId = `t-${tag}`;
      const verified = `${tag}-v`;
      const failed = `${tag}-f`;
      const rejected = `${tag}-x`;
      const plain = `${tag}-p`;
      await ledger.openInteraction(ix(batchId, verified, { fileName: 'v.png' }));
      await ledger.openInteraction(ix(batchId, failed, { fileName: 'f.png' }));
      await ledger.openInteraction(ix(batchId, rejected, { fileName: 'x.png' }));
      await ledger.openInteraction(ix(batchId, plain, { fileName: 'p.png' }));
      await ledger.openInteraction(ix(`other-${tag}`, `${tag}-other`));
      const log: [interactionId: string, eventKey: string, kind: string, detail?: unknown][] = [
        [verified, 'OPENED', 'OPENED'],
        [verified, 'SENT:0', 'SENT', { resend: 0 }],
        [verified, 'VERIFY_FAILED:0', 'VERIFY_FAILED', { resend: 0, rule: 'size', detail: 'holds 3 bytes' }],
        [verified, 'SENT:1', 'SENT', { resend: 1 }],
        [verified, 'VERIFIED:1', 'VERIFIED'],
        [failed, 'SENT:0', 'SENT'],
        [failed, 'VERIFY_FAILED:0', 'VERIFY_FAILED', { resend: 0, rule: 'checksum', detail: 'holds sha256 ...' }],
        [rejected, 'SEND_FAILED:0:1', 'SEND_FAILED'],
        [plain, 'SENT:0', 'SENT'],
        [plain, 'VERIFY_FAILED:0', 'VERIFY_FAILED', 'no rule'],
        [`${tag}-other`, 'SENT:0', 'SENT'],
      ];
      for (const [interactionId, eventKey, kind, detail] of log) {
        await ledger.appendEvent({ interactionId, eventKey, kind, detail });
      }

      const trails = await ledger.interactionTrails(batchId);
      expect([...trails.keys()].sort()).toEqual([failed, plain, rejected, verified].sort());
      const events = await ledger.listEvents(verified);
      expect(trails.get(verified)).toEqual({
        failedRule: 'size',
        firstSentAt: events.find((e) => e.kind === 'SENT')!.at,
        lastEventAt: events.at(-1)!.at,
      });
      expect(trails.get(failed)?.failedRule).toBe('checksum');
      expect(trails.get(rejected)?.failedRule).toBe('send');
      expect(trails.get(rejected)).toMatchObject({ firstSentAt: expect.stringMatching(/Z$/) });
      expect(trails.get(plain)?.failedRule).toBe('verify');
      expect(await ledger.interactionTrails(`none-${tag}`)).toEqual(new Map());
    });
  });
}
