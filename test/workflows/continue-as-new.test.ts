/**
 * A batch that continues as new many times while files are in flight and their reports are
 * arriving: nothing is lost, counted twice or left waiting.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import { startBatch } from '../../src/batch/start';
import { progressQuery } from '../../src/shared';
import { it } from '../helpers/fixture';

describe('continue-as-new', () => {
  it('carries the window, the counts and the reports of files in flight across runs', async ({ harness }) => {
    const h = await harness({ simulator: { dropRate: 0.1, rejectRate: 0.05, latencyMs: 20, seed: 9 } });
    const items = await h.makeFiles(80, 512, 10);
    const { batchId, handle } = await startBatch(h.client, items, {
      taskQueue: h.taskQueue,
      batchId: `can-${randomUUID().slice(0, 8)}`,
      stateDir: h.workDir,
      policy: { maxConcurrency: 12, maxResends: 6, resendBackoffMs: 20 },
      continueAsNewAfterEvents: 60,
    });
    const result = await handle.result();
    expect(result.recorded + result.rolledBack + result.rollbackFailed).toBe(80);
    expect(result.rolledBack).toBeGreaterThan(0);

    let runs = 0;
    let largest = 0;
    let asked = 0;
    for await (const run of h.client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) {
      runs += 1;
      const events = (await h.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
      largest = Math.max(largest, events.length);
      asked += events.filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'awaitFileResults',
      ).length;
    }
    expect(runs).toBeGreaterThan(3); // it did continue as new, several times
    // Files in flight at a continue-as-new ended after their run had closed: a later run asked.
    expect(asked).toBeGreaterThan(0);
    expect(largest).toBeLessThan(60 + 12 * 8); // bounded by the threshold plus one window of reports

    const p = await handle.query(progressQuery);
    expect(p).toMatchObject({ total: 80, started: 80, inFlight: 0, recorded: result.recorded, state: result.state });
    const latest = await h.ledger.latestInteractions(batchId);
    expect(latest).toHaveLength(80);
    expect(latest.filter((r) => r.status === 'RECORDED')).toHaveLength(result.recorded);
    expect((await h.consistency(batchId, 6)).drifts).toEqual([]);
  }, 240_000);
});
