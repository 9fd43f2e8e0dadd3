import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness';

describe('syncBatch against the real dev server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records every file, verified, with one interaction each', async () => {
    const items = await h.makeFiles(30, 4096, 10);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 8 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(30);
    expect(result.ledger).toEqual({ recorded: 30, rolledBack: 0, failed: 0 });

    const held = await h.targets.get('default').list({ limit: 1000 });
    expect(held.files).toHaveLength(30);
    const rows = await h.ledger.listInteractions(batchId);
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.interaction_id)).size).toBe(30);
    for (const row of rows) {
      expect(row.status).toBe('RECORDED');
      const receipt = held.files.find((f) => f.orderId === row.order_id && f.fileName === row.file_name);
      expect(receipt?.idempotencyKey).toBe(row.interaction_id);
      expect(receipt?.sha256).toBe(row.sha256);
    }
    const batch = await h.ledger.getBatch(batchId);
    expect(batch?.state).toBe('COMPLETED');
    expect(batch?.finished_at).toBeTruthy();

    // Every file reported to the batch by signal (the path that survives continue-as-new).
    const history = await handle.fetchHistory();
    const reports = (history.events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'fileDone',
    );
    expect(reports).toHaveLength(30);

    const report = await h.consistency(batchId, 3);
    expect(report.drifts).toEqual([]);
  });
});
