/**
 * A schedule's folder scan (prepareScheduledBatch), on both ledgers: the folder read as a stream
 * and the ledger asked about its files a page at a time, over more files than one page holds.
 * Only the files no earlier run of the schedule recorded, settled, and readable go in the manifest.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatchActivities } from '../../src/activities/batch';
import type { Targets } from '../../src/config/targets';
import { openLedger, type Ledger, type OpenInteraction } from '../../src/ledger';
import { scheduleBatchPrefix, type SyncItem } from '../../src/shared';
import { BACKENDS } from '../ledger/backends';

/** More files than one look at the ledger (1,000) and one statement's slice (250) take. */
const ORDERS = 6;
const FILES_PER_ORDER = 230;

function recorded(batchId: string, orderId: string, fileName: string, n: number): OpenInteraction {
  return {
    interactionId: `${batchId}-${n}`,
    batchId,
    orderId,
    fileName,
    target: 'default',
    sourcePath: `/elsewhere/${orderId}/${fileName}`,
    sha256: 'aa'.repeat(32),
    sizeBytes: 1,
    status: 'RECORDED',
  };
}

type PrepareScheduledBatch = ReturnType<typeof createBatchActivities>['prepareScheduledBatch'];
type ScanArgs = Parameters<PrepareScheduledBatch>[0];
type Prepared = Awaited<ReturnType<PrepareScheduledBatch>>;

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`a schedule's folder scan on ${backend.name}`, () => {
    let ledger: Ledger;
    let work: string;

    beforeAll(async () => {
      await backend.check();
      ledger = await openLedger(await backend.freshUrl());
      work = await mkdtemp(path.join(os.tmpdir(), 'image-sync-scan-'));
    });

    afterAll(async () => {
      await ledger?.close();
      await backend.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('lists the settled files no earlier run recorded, page by page, and counts what it cannot read', async () => {
      const dir = path.join(work, 'inbox');
      const scheduleId = 'nightly';
      const all: string[] = [];
      for (let o = 0; o < ORDERS; o++) {
        const orderId = `ORD-${o}`;
        await mkdir(path.join(dir, orderId), { recursive: true });
        for (let f = 0; f < FILES_PER_ORDER; f++) {
          const fileName = `f${String(f).padStart(4, '0')}.png`;
          await writeFile(path.join(dir, orderId, fileName), `${orderId}/${fileName}`);
          all.push(`${orderId}/${fileName}`);
        }
      }
      // Two entries the scan does not read: a file directly in the folder, a folder in an order folder.
      await writeFile(path.join(dir, 'stray.png'), 'x');
      await mkdir(path.join(dir, 'ORD-2', 'nested'));
      // A file still being written (modified a minute from now): left for the next run.
      const future = new Date(Date.now() + 60_000);
      await utimes(path.join(dir, 'ORD-5', 'f0007.png'), future, future);

      // Earlier runs of the schedule recorded every third file; one of them was then rolled back (its latest interaction).
      const runA = `${scheduleBatchPrefix(scheduleId)}20260101T000000Z-aaaaaaaa`;
      const runB = `${scheduleBatchPrefix(scheduleId)}20260102T000000Z-bbbbbbbb`;
      const done = new Set<string>();
      for (const [n, key] of all.entries()) {
        if (n % 3 !== 0) continue;
        const [orderId, fileName] = key.split('/') as [string, string];
        await ledger.openInteraction(recorded(n % 2 === 0 ? runA : runB, orderId, fileName, n));
        done.add(key);
      }
      await ledger.openInteraction({
        ...recorded(runA, 'ORD-0', 'f0000.png', -1),
        interactionId: `${runA}-rolled-back`,
        status: 'ROLLED_BACK',
      });
      done.delete('ORD-0/f0000.png');
      // Another schedule's run, and a pair made of one recorded file's order and another's name: neither counts.
      await ledger.openInteraction(recorded(`${scheduleBatchPrefix('other')}x`, 'ORD-1', 'f0001.png', -2));
      await ledger.openInteraction(recorded(runA, 'ORD-9', 'f0001.png', -3));

      const activities = createBatchActivities({ ledger, targets: {} as Targets });
      const prepared = await new MockActivityEnvironment().run<
        [ScanArgs],
        Prepared,
        typeof activities.prepareScheduledBatch
      >(activities.prepareScheduledBatch, {
        scheduleId,
        dir,
        stateDir: work,
        batchId: `${scheduleBatchPrefix(scheduleId)}20260103T000000Z-cccccccc`,
        settleMs: 0,
      });

      const expected = all.filter((k) => !done.has(k) && k !== 'ORD-5/f0007.png');
      expect(prepared.total).toBe(expected.length);
      expect(prepared.total).toBeGreaterThan(900);
      expect(prepared.skippedInvalid).toBe(2);
      const lines = (await readFile(prepared.manifestPath, 'utf8')).trim().split('\n');
      const items = lines.map((l) => JSON.parse(l) as SyncItem);
      expect(items.map((i) => `${i.orderId}/${i.fileName}`)).toEqual(expected);
      expect(items[0]).toEqual({
        orderId: 'ORD-0',
        fileName: 'f0000.png',
        sourcePath: path.join(dir, 'ORD-0', 'f0000.png'),
        contentType: 'image/png',
      });

      // Once all of them are recorded, a run finds nothing and writes no manifest.
      const runC = `${scheduleBatchPrefix(scheduleId)}20260103T000000Z-cccccccc`;
      for (const [n, item] of items.entries()) {
        await ledger.openInteraction(recorded(runC, item.orderId, item.fileName, n));
      }
      const again = await new MockActivityEnvironment().run<
        [ScanArgs],
        Prepared,
        typeof activities.prepareScheduledBatch
      >(activities.prepareScheduledBatch, {
        scheduleId,
        dir,
        stateDir: work,
        batchId: `${scheduleBatchPrefix(scheduleId)}20260104T000000Z-dddddddd`,
        settleMs: 0,
      });
      expect(again).toMatchObject({ total: 0, skippedInvalid: 2 });
      await expect(stat(again.manifestPath)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('refuses a folder it cannot read, leaving no manifest behind', async () => {
      const activities = createBatchActivities({ ledger, targets: {} as Targets });
      const stateDir = path.join(work, 'state-missing');
      await expect(
        new MockActivityEnvironment().run(activities.prepareScheduledBatch, {
          scheduleId: 'gone',
          dir: path.join(work, 'no-such-folder'),
          stateDir,
          batchId: `${scheduleBatchPrefix('gone')}20260101T000000Z-eeeeeeee`,
          settleMs: 0,
        }),
      ).rejects.toThrow(/no-such-folder/);
      expect(await readdir(path.join(stateDir, 'manifests'))).toEqual([]);
    });
  });
}
