/**
 * Priority of the intake over bulk batches (issue 21, item 3), on the real dev server (which runs
 * the matcher that honours task-queue priority keys) with the simulator and ledger.
 *
 * A large batch keeps the target busy: its concurrency (60 files) is twenty times what the worker's
 * 3 activity slots run at once, so its files' activity tasks queue on the server, and the
 * simulator's latency keeps each send in a slot. Then a few files are submitted to the intake of
 * the same target. The bound, measured in the test rather than a wall time: every submitted file
 * is RECORDED, counted from before its submission, in less time than the median batch file that
 * was in flight over the same period took from its ledger row's opening to RECORDED (a batch file
 * measured from later than it started queueing, the intake's from earlier: the comparison leans
 * against the intake). In FIFO order an intake file queues behind the same tasks as a batch file
 * and takes about the median; with priority 1 against the batch's default 3 it goes ahead of them.
 * And batch files opened before the submission are still not RECORDED when the intake's are.
 */
import { describe, expect } from 'vitest';
import { INTAKE_PRIORITY_KEY } from '../../src/intake/workflow-api';
import type { SyncItem } from '../../src/shared';
import { it } from '../helpers/fixture';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn, submission } from './intake-backend-helpers';

const BATCH_FILES = 240;
const BATCH_CONCURRENCY = 60;
const ACTIVITY_SLOTS = 3;
const INTAKE_FILES = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('intake priority', () => {
  it('with a large batch in flight to the same target, submitted files are recorded ahead of it', async ({
    harness,
  }) => {
    expect(INTAKE_PRIORITY_KEY).toBeLessThan(3);
    const h = await harness({
      simulator: { latencyMs: 150 },
      workerTuning: { maxConcurrentActivityTaskExecutions: ACTIVITY_SLOTS },
    });
    // Every send is a regular activity, so it queues on the server's task queue with the others.
    const policy = { localSendMaxBytes: 0, maxResends: MAX_RESENDS };
    const bulk = await h.makeFiles(BATCH_FILES, 2048, 20);
    const { batchId, handle } = await h.start(bulk, { ...policy, maxConcurrency: BATCH_CONCURRENCY });

    // The batch at its steady state: some files recorded, its concurrency's worth under way.
    await waitFor(
      'the batch to record 20 files',
      async () => {
        const rows = await h.ledger.listInteractions(batchId);
        return rows.filter((r) => r.status === 'RECORDED').length >= 20 ? rows : undefined;
      },
      240_000,
    );

    const { backend, batchId: intakeBatchId } = intakeOn(h, {
      policy: { resendBackoffMs: 50, ...policy, maxConcurrency: 8 },
    });
    const rush: SyncItem[] = (await h.makeFiles(INTAKE_FILES, 2048, INTAKE_FILES)).map((i) => ({
      ...i,
      orderId: 'rush-1',
    }));
    const submittedAt = Date.now();
    expect(await backend.submit(submission('rush-1', rush))).toMatchObject({ kind: 'accepted', replayed: false });
    const intakeRows = await waitFor(
      'the submitted files RECORDED',
      async () => {
        const rows = await h.ledger.listInteractions(intakeBatchId);
        const recorded = rows.filter((r) => r.status === 'RECORDED');
        return recorded.length === INTAKE_FILES ? recorded : undefined;
      },
      240_000,
    );
    const batchAtThatTime = await h.ledger.listInteractions(batchId);
    const intakeDone = Math.max(...intakeRows.map((r) => Date.parse(r.updated_at)));
    const intakeTimes = intakeRows.map((r) => Date.parse(r.updated_at) - submittedAt);

    // Batch files opened before the submission and still not recorded once the intake's were.
    const overtaken = batchAtThatTime.filter(
      (r) => Date.parse(r.created_at) < submittedAt && r.status !== 'RECORDED',
    ).length;

    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(BATCH_FILES);
    // The batch files in flight over the intake's period: opened before it ended, recorded after it began.
    const batchRows = await h.ledger.listInteractions(batchId);
    const concurrent = batchRows
      .filter((r) => Date.parse(r.created_at) <= intakeDone && Date.parse(r.updated_at) >= submittedAt)
      .map((r) => Date.parse(r.updated_at) - Date.parse(r.created_at));
    const batchMedian = median(concurrent);
    const report = { intakeTimes, batchMedian, concurrentBatchFiles: concurrent.length, overtaken };
    console.log('intake priority', JSON.stringify(report));

    expect(concurrent.length, JSON.stringify(report)).toBeGreaterThanOrEqual(BATCH_CONCURRENCY);
    for (const t of intakeTimes) expect(t, JSON.stringify(report)).toBeLessThan(batchMedian);
    expect(overtaken, JSON.stringify(report)).toBeGreaterThanOrEqual(ACTIVITY_SLOTS);

    await expectOneTruth(h, [batchId], bulk, { maxResends: MAX_RESENDS });
    await expectOneTruth(h, [intakeBatchId], rush, { maxResends: MAX_RESENDS });
  }, 600_000);
});
