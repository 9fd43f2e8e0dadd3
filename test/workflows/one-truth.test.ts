/**
 * One file, one truth: batches over the same files at once (two batches, a batch and a
 * schedule's run, a redrive and a new batch) against the simulator with faults. Each file is
 * stored once at the recording system, the later interaction of a file delivers the copy held
 * (ALREADY_HELD, naming the interaction that wrote it), and the invariant holds for every batch
 * and across them.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect } from 'vitest';
import { createActivities } from '../../src/activities';
import { redriveBatch } from '../../src/batch/redrive';
import { buildReport, formatReport } from '../../src/batch/report';
import { batchWorkflowId, DEFAULT_POLICY, type ScheduledSyncInput, type ScheduledSyncResult } from '../../src/shared';
import { sha256File } from '../../src/source/files';
import { scanDirectory } from '../../src/source/scan';
import { it } from '../helpers/fixture';
import type { Harness } from '../helpers/harness';
import { eventDetail, eventKinds, expectOneTruth, latestByFile } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';

/** For each file: one batch sent it, every other batch's latest interaction names that copy's writer as holder. */
async function expectOneSenderPerFile(h: Harness, batchIds: string[]): Promise<{ waits: number }> {
  let waits = 0;
  for (const [key, rows] of await latestByFile(h, batchIds)) {
    expect(rows, key).toHaveLength(batchIds.length);
    const held: string[] = [];
    let heldBy = new Set<string>();
    for (const row of rows) {
      const kinds = await eventKinds(h, row.interaction_id);
      waits += kinds.filter((k) => k === 'CLAIM_WAIT').length;
      if (kinds.includes('ALREADY_HELD')) {
        held.push(row.interaction_id);
        heldBy.add(String((await eventDetail(h, row.interaction_id, 'ALREADY_HELD'))!.heldBy));
        expect(kinds, `${key}: held, so not sent`).not.toContain('SENT');
      }
    }
    expect(held, `${key}: the interactions that found it held`).toHaveLength(batchIds.length - 1);
    const senders = rows.filter((r) => !held.includes(r.interaction_id)).map((r) => r.interaction_id);
    expect([...heldBy], key).toEqual(senders);
    heldBy = new Set();
  }
  return { waits };
}

describe('one file, one truth', () => {
  it('two batches over the same files at once: each file is sent once, the other batch delivers the held copy', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { failRate: 0.1, dropRate: 0.05, seed: 19 } });
    const items = await h.makeFiles(60, 1024, 6);
    const policy = { maxConcurrency: 12, maxResends: 4 };
    const [a, b] = await Promise.all([h.start(items, policy), h.start(items, policy)]);
    const [ra, rb] = await Promise.all([a.handle.result(), b.handle.result()]);
    expect(ra).toMatchObject({ state: 'COMPLETED', recorded: 60 });
    expect(rb).toMatchObject({ state: 'COMPLETED', recorded: 60 });
    await expectOneTruth(h, [a.batchId, b.batchId], items, policy);
    const { waits } = await expectOneSenderPerFile(h, [a.batchId, b.batchId]);
    expect(waits, 'files one batch waited for while the other delivered them').toBeGreaterThan(0);
    for (const [file, u] of h.simulator.uploadsByFile())
      expect({ file, ...u }).toMatchObject({ stored: 1, senders: 1 });
    // The reports show the files delivered without a second upload: 60 between the two batches.
    const reports = [(await buildReport(h.ledger, a.batchId))!, (await buildReport(h.ledger, b.batchId))!];
    expect(reports[0]!.alreadyHeld + reports[1]!.alreadyHeld).toBe(60);
    const fuller = reports.find((r) => r.alreadyHeld > 0)!;
    expect(formatReport(fuller)).toContain(`of them already held  ${fuller.alreadyHeld}`);
    expect(fuller.files.filter((f) => f.heldBy !== null)).toHaveLength(fuller.alreadyHeld);
  });

  it('a batch and a schedule run over the same folder at once store each file once', async ({ harness }) => {
    const h = await harness({ simulator: { failRate: 0.1, seed: 23 } });
    const items = await h.makeFiles(50, 1024, 5);
    const dir = path.dirname(path.dirname(items[0]!.sourcePath));
    const scanned = await scanDirectory(dir);
    expect(scanned.items).toHaveLength(50);
    const scheduleId = `sched-${Date.now().toString(36)}`;
    const input: ScheduledSyncInput = {
      scheduleId,
      dir,
      stateDir: h.workDir,
      policy: { ...DEFAULT_POLICY, maxConcurrency: 10, resendBackoffMs: 50 },
      settleMs: 0,
    };
    const [run, batch] = await Promise.all([
      h.client.workflow.start('scheduledSync', {
        workflowId: `schedule-run-${scheduleId}`,
        taskQueue: h.taskQueue,
        args: [input],
      }),
      h.start(scanned.items, { maxConcurrency: 10 }),
    ]);
    const [ran, done] = await Promise.all([run.result() as Promise<ScheduledSyncResult>, batch.handle.result()]);
    expect(ran.result).toMatchObject({ state: 'COMPLETED', recorded: 50 });
    expect(done).toMatchObject({ state: 'COMPLETED', recorded: 50 });
    await expectOneTruth(h, [ran.batchId!, batch.batchId], scanned.items, { maxResends: DEFAULT_POLICY.maxResends });
    await expectOneSenderPerFile(h, [ran.batchId!, batch.batchId]);
  });

  it('a redrive concurrent with a new batch over the same files stores each file once', async ({ harness }) => {
    const h = await harness({ simulator: { rejectRate: 0.3, seed: 29, faultMethods: ['PUT'] } });
    const items = await h.makeFiles(40, 1024, 5);
    const first = await h.start(items, { maxConcurrency: 10, maxResends: 0 });
    const firstResult = await first.handle.result();
    expect(firstResult.rolledBack).toBeGreaterThan(0);
    h.simulator.setFaults({ rejectRate: 0, failRate: 0.1 });

    const [redriven, fresh] = await Promise.all([
      redriveBatch(h.client, h.ledger, first.batchId, h.taskQueue),
      h.start(items, { maxConcurrency: 10, maxResends: 3 }),
    ]);
    expect(redriven.files).toHaveLength(firstResult.rolledBack);
    const [, freshResult] = await Promise.all([
      h.client.workflow.getHandle(batchWorkflowId(first.batchId)).result(),
      fresh.handle.result(),
    ]);
    expect((await h.ledger.batchCounts(first.batchId)).files).toEqual({ RECORDED: 40 });
    expect(freshResult).toMatchObject({ state: 'COMPLETED', recorded: 40 });
    await expectOneTruth(h, [first.batchId, fresh.batchId], items, { maxResends: 3 });
    await expectOneSenderPerFile(h, [first.batchId, fresh.batchId]);
  });
});

describe('reconcile across batches', () => {
  it('a copy held for a batch that rolled the file back is no drift when another batch recorded those bytes', async ({
    harness,
  }) => {
    const h = await harness();
    const [item] = await h.makeFiles(1, 512, 1);
    const digest = await sha256File(item!.sourcePath);
    const open = (batchId: string, interactionId: string, status: 'RECORDED' | 'ROLLED_BACK') =>
      h.ledger.openInteraction({
        interactionId,
        batchId,
        orderId: item!.orderId,
        fileName: item!.fileName,
        target: 'default',
        sourcePath: item!.sourcePath,
        sha256: digest.sha256,
        sizeBytes: digest.size,
        status,
      });
    // Batch A wrote the copy and rolled back (leaving it in place); batch B holds it RECORDED.
    await open('recon-a', 'ix-a', 'ROLLED_BACK');
    await h.ledger.recordRollback({
      interactionId: 'ix-a',
      batchId: 'recon-a',
      orderId: item!.orderId,
      fileName: item!.fileName,
      reason: 'test',
      status: 'DONE',
      attempts: 1,
    });
    await h.targets.get('default').put({
      orderId: item!.orderId,
      fileName: item!.fileName,
      sourcePath: item!.sourcePath,
      ...digest,
      contentType: 'application/octet-stream',
      idempotencyKey: 'ix-a',
    });
    expect((await h.consistency('recon-a')).drifts.map((d) => d.kind)).toEqual(['held-not-recorded']);
    await open('recon-b', 'ix-b', 'RECORDED');
    expect((await h.consistency('recon-a')).drifts).toEqual([]);
    expect((await h.consistency('recon-b')).drifts).toEqual([]);
  });
});

describe('a rollback and a claim', () => {
  it('an atomic rollback waits for the interaction holding the file, and leaves the copy it recorded as held', async ({
    harness,
  }) => {
    const h = await harness();
    const [item] = await h.makeFiles(1, 512, 1);
    const first = await h.start([item!], { maxConcurrency: 1 });
    expect(await first.handle.result()).toMatchObject({ recorded: 1 });
    const [mine] = await h.ledger.listInteractions(first.batchId);
    // Another interaction claims the file (the first has ended) and is deciding that the copy
    // held is the one it needs.
    const file = { target: 'default', orderId: item!.orderId, fileName: item!.fileName };
    const other = { ...file, interactionId: `ix-other-${randomUUID().slice(0, 8)}`, batchId: 'other-batch' };
    await h.ledger.openInteraction({
      ...other,
      sourcePath: item!.sourcePath,
      sha256: mine!.sha256,
      sizeBytes: mine!.size_bytes,
      status: 'SENDING',
    });
    expect(await h.ledger.claimFile({ ...other, workflowId: 'sync-batch/other-batch/x' })).toMatchObject({
      taken: true,
    });

    const activities = createActivities({ ledger: h.ledger, targets: h.targets, heartbeatEveryMs: 500 });
    const rolling = new MockActivityEnvironment().run(activities.rollbackRecordedFiles, {
      batchId: first.batchId,
      reason: 'atomic batch ended FAILED',
    });
    await waitFor('the rollback to wait for the claim', async () =>
      (await eventKinds(h, mine!.interaction_id)).includes('CLAIM_WAIT'),
    );
    expect(await h.targets.get('default').stat(file.orderId, file.fileName)).not.toBeNull();
    await h.ledger.updateInteraction(other.interactionId, { status: 'RECORDED' });

    expect(await rolling).toEqual({ rolledBack: 1, failed: 0 });
    expect((await h.targets.get('default').stat(file.orderId, file.fileName))?.idempotencyKey).toBe(
      mine!.interaction_id,
    );
    expect(await eventDetail(h, mine!.interaction_id, 'ROLLED_BACK')).toMatchObject({
      leftInPlace: expect.any(String),
    });
    expect((await h.consistency(first.batchId)).drifts).toEqual([]);
  });
});
