/**
 * The redrive queue on every backend: what it queues (failed files, once per failure), the
 * order and redrive counts it keeps, the files it refuses, and what clearing it drops.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type FileRef, type Ledger } from '../../src/ledger';
import { fileKey, type FileState } from '../../src/shared';
import { BACKENDS } from './backends';

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`redrive queue on ${backend.name}`, () => {
    let ledger: Ledger;

    beforeAll(async () => {
      await backend.check();
      ledger = await openLedger(await backend.freshUrl());
    });
    afterAll(async () => {
      await ledger?.close();
      await backend.cleanup();
    });

    /** A batch whose files' latest interactions end in the given statuses, one file each. */
    async function batchWith(statuses: FileState[]) {
      const batchId = `rq-${randomUUID().slice(0, 8)}`;
      const files: FileRef[] = [];
      for (const [n, status] of statuses.entries()) {
        const file = { orderId: `O-${n % 3}`, fileName: `f-${String(n).padStart(3, '0')}.png` };
        files.push(file);
        await fail(batchId, file, status);
      }
      return { batchId, files };
    }
    /** Opens a new interaction of the file that ends in `status`. */
    async function fail(batchId: string, file: FileRef, status: FileState) {
      await ledger.openInteraction({
        interactionId: `ix-${randomUUID()}`,
        batchId,
        ...file,
        target: 'default',
        sourcePath: `/data/${file.orderId}/${file.fileName}`,
        sha256: 'ab'.repeat(32),
        sizeBytes: 10,
        status,
      });
    }
    const keys = (rows: { order_id: string; file_name: string }[]) => rows.map((r) => fileKey(r.order_id, r.file_name));

    it('queues the failed files in the order they failed, once each, in chunks', async () => {
      const { batchId, files } = await batchWith([
        'ROLLED_BACK',
        'RECORDED',
        'ROLLBACK_FAILED',
        'ROLLED_BACK',
        'CANCELLED',
        'ROLLED_BACK',
      ]);
      const failed = [files[0]!, files[2]!, files[3]!, files[5]!].map((f) => fileKey(f.orderId, f.fileName));
      expect(await ledger.queueRedrive(batchId, { limit: 3 })).toBe(3);
      expect(await ledger.queueRedrive(batchId, { limit: 3 })).toBe(1);
      expect(await ledger.queueRedrive(batchId, { limit: 3 })).toBe(0);
      const rows = await ledger.queuedRedrives(batchId, { from: 0, limit: 10 });
      expect(keys(rows)).toEqual(failed);
      expect(rows.map((r) => r.position)).toEqual([0, 1, 2, 3]);
      expect(rows.map((r) => r.attempt)).toEqual([1, 1, 1, 1]);
      expect(rows[0]!.source_path).toBe(`/data/${files[0]!.orderId}/${files[0]!.fileName}`);
      expect(keys(await ledger.queuedRedrives(batchId, { from: 2, limit: 1 }))).toEqual([failed[2]]);
      expect(await ledger.redriveTally(batchId, 0)).toEqual({ end: 4, rolledBack: 3, rollbackFailed: 1 });
      expect(await ledger.redriveTally(batchId, 3)).toEqual({ end: 4, rolledBack: 1, rollbackFailed: 0 });
      expect(await ledger.redriveTally(`${batchId}-none`, 0)).toEqual({ end: 0, rolledBack: 0, rollbackFailed: 0 });
    });

    it('queues a file again after its redrive failed, with its redrive count', async () => {
      const { batchId, files } = await batchWith(['ROLLED_BACK', 'ROLLED_BACK']);
      expect(await ledger.queueRedrive(batchId)).toBe(2);
      await fail(batchId, files[1]!, 'ROLLBACK_FAILED');
      expect(await ledger.queueRedrive(batchId)).toBe(1);
      const rows = await ledger.queuedRedrives(batchId, { from: 0, limit: 10 });
      expect(rows.map((r) => [r.position, r.file_name, r.attempt, r.failed_status])).toEqual([
        [0, files[0]!.fileName, 1, 'ROLLED_BACK'],
        [1, files[1]!.fileName, 1, 'ROLLED_BACK'],
        [2, files[1]!.fileName, 2, 'ROLLBACK_FAILED'],
      ]);
    });

    it('queues only the named files, and says which cannot be queued', async () => {
      const { batchId, files } = await batchWith(['ROLLED_BACK', 'RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED']);
      const unknown = { orderId: 'O-9', fileName: 'none.png' };
      expect(await ledger.notRedrivable(batchId, [files[0]!, files[1]!, unknown, files[0]!])).toEqual([
        files[1],
        unknown,
      ]);
      expect(await ledger.queueRedrive(batchId, { files: [files[0]!, files[1]!, files[3]!] })).toBe(2);
      expect(keys(await ledger.queuedRedrives(batchId, { from: 0, limit: 10 }))).toEqual(
        [files[0]!, files[3]!].map((f) => fileKey(f.orderId, f.fileName)),
      );
      // Queued already: not again, unless queued by the caller's own request (from its position on).
      expect(await ledger.notRedrivable(batchId, [files[0]!, files[2]!])).toEqual([files[0]]);
      expect(await ledger.notRedrivable(batchId, [files[0]!, files[3]!], { queuedFrom: 1 })).toEqual([files[0]]);
      expect(await ledger.notRedrivable(batchId, [files[0]!, files[3]!], { queuedFrom: 0 })).toEqual([]);
    });

    it('clearing drops the rows that never ran, and their files can be queued again', async () => {
      const { batchId, files } = await batchWith(['ROLLED_BACK', 'ROLLED_BACK', 'ROLLED_BACK']);
      expect(await ledger.queueRedrive(batchId)).toBe(3);
      // The first file's redrive ran (and was recorded); the other two never started.
      await fail(batchId, files[0]!, 'RECORDED');
      expect(await ledger.clearRedriveQueue(batchId)).toBe(2);
      expect(keys(await ledger.queuedRedrives(batchId, { from: 0, limit: 10 }))).toEqual([
        fileKey(files[0]!.orderId, files[0]!.fileName),
      ]);
      expect(await ledger.queueRedrive(batchId)).toBe(2);
      const rows = await ledger.queuedRedrives(batchId, { from: 1, limit: 10 });
      expect(rows.map((r) => [r.position, r.attempt])).toEqual([
        [1, 1],
        [2, 1],
      ]);
    });
  });
}
